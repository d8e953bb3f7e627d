/*-------------------------------------------------------------------------
 *
 * options.c
 *		  Options of kabsd_fdw servers, foreign tables and columns: the
 *		  validator and the getter share one parse function per option.
 *
 * src/options.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include <sys/stat.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

/* Every option and the catalog it belongs to (file_fdw's layout). */
typedef struct KabsdOption
{
	const char *name;
	Oid			context;
} KabsdOption;

static const KabsdOption valid_options[] = {
	{"root", ForeignServerRelationId},
	{"max_file_size", ForeignServerRelationId},
	{"table", ForeignTableRelationId},
	{"key", AttributeRelationId},
	{NULL, InvalidOid}
};

PG_FUNCTION_INFO_V1(kabsd_fdw_validator);

/*
 * Only superusers and members of pg_read_server_files may point a server
 * at a directory, as file_fdw requires for its filename option.
 */
void
kabsd_check_root_privilege(void)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"root\""),
				 errdetail("Only roles with privileges of the \"%s\" role may read a backlog directory.",
						   "pg_read_server_files")));
}

static char *
parse_root(const char *value)
{
	struct stat st;

	if (!is_absolute_path(value))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"root\" must be an absolute path"),
				 errdetail("The value given is \"%s\".", value)));
	if (stat(value, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not access backlog root \"%s\": %m", value)));
	if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("backlog root \"%s\" is not a directory", value)));
	return pstrdup(value);
}

/* A byte count with an optional unit: 1048576, 512kB, 64MB, 1GB. */
static int64
parse_max_file_size(const char *value)
{
	char	   *end;
	int64		n;
	int64		mult = 1;

	errno = 0;
	n = strtoll(value, &end, 10);
	while (*end == ' ')
		end++;
	if (strcmp(end, "kB") == 0)
		mult = 1024;
	else if (strcmp(end, "MB") == 0)
		mult = 1024 * 1024;
	else if (strcmp(end, "GB") == 0)
		mult = INT64CONST(1024) * 1024 * 1024;
	else if (*end != '\0' && strcmp(end, "B") != 0)
		n = -1;
	if (errno != 0 || end == value || n <= 0 || n > PG_INT64_MAX / mult ||
		n * mult > (int64) MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"max_file_size\": \"%s\"", value),
				 errhint("Give a positive size in bytes, optionally with a unit: B, kB, MB or GB.")));
	return n * mult;
}

bool
kabsd_parse_table_name(const char *name, KabsdTable *out)
{
	for (int t = 0; t < KT_COUNT; t++)
	{
		if (strcmp(kabsd_tables[t].name, name) == 0)
		{
			*out = (KabsdTable) t;
			return true;
		}
	}
	return false;
}

static KabsdTable
parse_table(const char *value)
{
	KabsdTable	t;

	if (!kabsd_parse_table_name(value, &t))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"table\": \"%s\"", value),
				 errhint("Valid tables are files, items, decisions, links, worklog, sections and checklist.")));
	return t;
}

static void
parse_key(const char *value)
{
	size_t		len = strlen(value);

	if (len == 0 || value[0] == '.' || value[len - 1] == '.' ||
		strstr(value, "..") != NULL || len > 255)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"key\": \"%s\"", value),
				 errhint("Give a frontmatter key, or a dotted path of keys such as \"external.jira_key\".")));
}

/* The valid option closest to a misspelt one, for the hint. */
static const char *
closest_option(const char *name, Oid context)
{
	const char *best = NULL;
	int			best_dist = 4;	/* farther than this is no suggestion */

	for (const KabsdOption *o = valid_options; o->name; o++)
	{
		int			d;

		if (o->context != context)
			continue;
		d = varstr_levenshtein_less_equal(name, strlen(name), o->name,
										  strlen(o->name), 1, 1, 1,
										  best_dist, true);
		if (d < best_dist)
		{
			best_dist = d;
			best = o->name;
		}
	}
	return best;
}

static void
reject_option(const char *name, Oid context)
{
	const char *hint = closest_option(name, context);
	bool		any = false;

	for (const KabsdOption *o = valid_options; o->name; o++)
		any |= o->context == context;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 hint ? errhint("Perhaps you meant the option \"%s\".", hint)
			 : any ? 0 : errhint("There are no valid options in this context.")));
}

/*
 * Validates the options of a CREATE or ALTER for a server, user mapping,
 * foreign table or column.  PostgreSQL passes the complete resulting list,
 * so a required option can be checked here.
 */
Datum
kabsd_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;
	bool		has_root = false;

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);
		const KabsdOption *o;

		for (o = valid_options; o->name; o++)
			if (o->context == catalog && strcmp(o->name, def->defname) == 0)
				break;
		if (o->name == NULL)
			reject_option(def->defname, catalog);

		if (strcmp(def->defname, "root") == 0)
		{
			kabsd_check_root_privilege();
			parse_root(defGetString(def));
			has_root = true;
		}
		else if (strcmp(def->defname, "max_file_size") == 0)
			parse_max_file_size(defGetString(def));
		else if (strcmp(def->defname, "table") == 0)
			parse_table(defGetString(def));
		else if (strcmp(def->defname, "key") == 0)
			parse_key(defGetString(def));
	}
	if (catalog == ForeignServerRelationId && !has_root)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"root\" is required for a kabsd_fdw server"),
				 errhint("Name the backlog directory: OPTIONS (root '/path/to/_kano/backlog').")));
	PG_RETURN_VOID();
}

/* Options of a server: root and max_file_size. */
void
kabsd_get_server_options(ForeignServer *server, KabsdOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(*opts));
	opts->max_file_size = KABSD_DEFAULT_MAX_FILE_SIZE;
	opts->servername = server->servername;
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "root") == 0)
			opts->root = defGetString(def);
		else if (strcmp(def->defname, "max_file_size") == 0)
			opts->max_file_size = parse_max_file_size(defGetString(def));
	}
	if (opts->root == NULL)
		elog(ERROR, "kabsd_fdw server \"%s\" has no root", server->servername);
}

/*
 * Options of a foreign table and its server.  The table option defaults to
 * the foreign table's own name.
 */
void
kabsd_get_options(Oid foreigntableid, KabsdOptions *opts)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	ListCell   *lc;
	bool		has_table = false;

	kabsd_get_server_options(GetForeignServer(table->serverid), opts);
	foreach(lc, table->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "table") == 0)
		{
			opts->table = parse_table(defGetString(def));
			has_table = true;
		}
	}
	if (!has_table)
	{
		char	   *relname = get_rel_name(foreigntableid);

		if (relname == NULL || !kabsd_parse_table_name(relname, &opts->table))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("foreign table \"%s\" does not say which backlog table it is",
							relname ? relname : "?"),
					 errhint("Add OPTIONS (table 'items'), or name the foreign table after one of files, items, decisions, links, worklog, sections and checklist.")));
	}
}

/* The server named, with the caller's right to use it checked. */
void
kabsd_server_options(Name servername, KabsdOptions *opts)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*servername), false);
	AclResult	aclresult;

	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	kabsd_get_server_options(server, opts);
}
