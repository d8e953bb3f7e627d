/*-------------------------------------------------------------------------
 *
 * refresh.c
 *		  What kabsd_refresh() needs beside the refresh itself (snapshot.c):
 *		  a stat-only fingerprint of the tree that tells when nothing
 *		  changed, each file's stamp and the table that keeps them, and the
 *		  table catalogue the SQL layer builds the snapshot tables from.
 *
 * src/refresh.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(kabsd_table_columns);
PG_FUNCTION_INFO_V1(kabsd_fingerprint);

/*
 * kabsd_table_columns(): every column of the data model with its type and
 * comment, so that the SQL layer never repeats the catalogue.
 */
Datum
kabsd_table_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int t = 0; t < KT_COUNT; t++)
	{
		const KabsdTableDef *def = &kabsd_tables[t];

		for (int c = 0; c < def->ncols; c++)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(def->name);
			values[1] = Int32GetDatum(c + 1);
			values[2] = CStringGetTextDatum(def->cols[c].name);
			values[3] = CStringGetTextDatum(def->cols[c].sqltype);
			values[4] = CStringGetTextDatum(def->cols[c].comment);
			values[5] = CStringGetTextDatum(def->comment);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* The server named, with the caller's right to read it checked. */
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

/* FNV-1a, 64 bits: enough to tell that a stat of the tree changed. */
static uint64
fnv_add(uint64 h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * UINT64CONST(1099511628211);
	return h;
}

uint64
kabsd_fingerprint_entry(uint64 h, const KbEntry *e)
{
	h = fnv_add(h, e->relpath, e->relpath_len + 1);
	h = fnv_add(h, &e->size, sizeof(e->size));
	h = fnv_add(h, &e->mtime_sec, sizeof(e->mtime_sec));
	h = fnv_add(h, &e->mtime_nsec, sizeof(e->mtime_nsec));
	h = fnv_add(h, &e->ctime_sec, sizeof(e->ctime_sec));
	h = fnv_add(h, &e->ctime_nsec, sizeof(e->ctime_nsec));
	h = fnv_add(h, &e->ino, sizeof(e->ino));
	return fnv_add(h, &e->dev, sizeof(e->dev));
}

/*
 * The options and the parsing rules are part of what the snapshot was built
 * from: a new version of the rules makes every file count as changed.
 */
uint64
kabsd_fingerprint_start(const KabsdOptions *opts)
{
	uint64		h = UINT64CONST(14695981039346656037);

	h = fnv_add(h, KABSD_PARSER_VERSION, sizeof(KABSD_PARSER_VERSION));
	h = fnv_add(h, opts->root, strlen(opts->root) + 1);
	return fnv_add(h, &opts->max_file_size, sizeof(opts->max_file_size));
}

Datum
kabsd_fingerprint_text(uint64 h, int64 nfiles)
{
	char		buf[64];

	snprintf(buf, sizeof(buf), "%016llx:" INT64_FORMAT,
			 (unsigned long long) h, nfiles);
	return CStringGetTextDatum(buf);
}

/*
 * kabsd_fingerprint(server): a hash of path, size, times, inode and device
 * of every file, from the walk alone (nothing is opened).
 */
Datum
kabsd_fingerprint(PG_FUNCTION_ARGS)
{
	KabsdOptions opts;
	KabsdScan  *scan;
	KbEntry    *entry;
	uint64		h;
	int64		n = 0;

	kabsd_server_options(PG_GETARG_NAME(0), &opts);
	h = kabsd_fingerprint_start(&opts);
	scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL, NULL,
							0, CurrentMemoryContext);
	while (kabsd_scan_next_entry(scan, &entry))
	{
		h = kabsd_fingerprint_entry(h, entry);
		n++;
	}
	kabsd_scan_end(scan);
	PG_RETURN_DATUM(kabsd_fingerprint_text(h, n));
}

/*
 * The seven tables of a refresh argument, in the order of the data model's
 * tables.
 */
Datum *
kabsd_seven_relations(ArrayType *arr)
{
	Datum	   *relids;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &relids, &nulls, &n);
	if (n != KT_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("array of snapshot tables must have %d elements", KT_COUNT)));
	for (int i = 0; i < n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("array of snapshot tables must not contain nulls")));
	return relids;
}

/*
 * The stamp of one file: what says, without opening it, that it is the
 * same file as at the last refresh.
 */
int64
kabsd_file_stamp(uint64 salt, const KbEntry *e)
{
	return (int64) kabsd_fingerprint_entry(salt, e);
}

/*
 * Opens kabsd.file_stamps, the stamps of every backlog's files, for
 * writing.  It is the extension's own table, written only here, so it is
 * found by name and never taken from the caller.  Rows go in and out by
 * their TIDs: the table has no index to keep.
 */
Relation
kabsd_open_stamps(void)
{
	Oid			nsp = get_namespace_oid("kabsd", false);
	Oid			relid = get_relname_relid("file_stamps", nsp);
	Relation	rel;
	TupleDesc	desc;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"kabsd.file_stamps\" does not exist"),
				 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION || desc->natts != 3 ||
		TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 1)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 2)->atttypid != INT8OID ||
		RelationGetForm(rel)->relhasindex || rel->trigdesc != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"kabsd.file_stamps\" was altered"),
				 errdetail("The refresh writes rows of (backlog text, path text, stamp bigint) by their TIDs: the table must have those columns and no index or trigger.")));
	return rel;
}

/*
 * kabsd_stage_load() was the rebuild of 0.1.0.  Its SQL definition stays
 * in a database whose extension was not updated yet: say what to do.
 */
PG_FUNCTION_INFO_V1(kabsd_stage_load);

Datum
kabsd_stage_load(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the SQL objects of kabsd_fdw are older than its library"),
			 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
