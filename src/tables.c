/*-------------------------------------------------------------------------
 *
 * tables.c
 *		  The seven tables of the data model: their columns and types, what
 *		  each column costs to compute, the binding of a foreign table's
 *		  attributes to them, IMPORT FOREIGN SCHEMA, and the catalogue the
 *		  SQL layer builds the snapshot tables from.
 *
 * src/tables.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* What computing a column costs, on top of the table's row need. */
#define WALK	0				/* known from the walk alone */
#define READ	KB_NEED_READ
#define FIELDS	(KB_NEED_READ | KB_NEED_FIELDS)

#define PATH_COLS \
	{"path", KF_PATH, TEXTOID, "text", WALK, "Path of the file, relative to the backlog root."}, \
	{"product", KF_PRODUCT, TEXTOID, "text", WALK, "<product> when the path starts with products/<product>/."}

static const KabsdColumnDef files_cols[] = {
	PATH_COLS,
	{"kind", KF_FILE_KIND, TEXTOID, "text", WALK, "item, decision, index or other."},
	{"size", KF_FILE_SIZE, INT8OID, "bigint", WALK, "Size in bytes."},
	{"mtime", KF_MTIME, TIMESTAMPTZOID, "timestamptz", WALK, "Last modification time."},
	{"has_frontmatter", KF_FILE_HAS_FRONTMATTER, BOOLOID, "boolean", READ, "The file opens with a --- frontmatter fence."},
	{"error", KF_FILE_ERROR, TEXTOID, "text", FIELDS, "Why the file could not be read or parsed, or which values had the wrong shape; NULL when all is well."},
};

static const KabsdColumnDef items_cols[] = {
	{"uid", KF_ITEM_UID, UUIDOID, "uuid", FIELDS, "Stable identity of the item."},
	{"id", KF_ITEM_ID, TEXTOID, "text", FIELDS, "Display id, as written."},
	{"type", KF_ITEM_TYPE, TEXTOID, "text", FIELDS, "Item type, as written."},
	{"state", KF_ITEM_STATE, TEXTOID, "text", FIELDS, "Workflow state, as written."},
	{"title", KF_ITEM_TITLE, TEXTOID, "text", FIELDS, "Title."},
	{"priority", KF_ITEM_PRIORITY, TEXTOID, "text", FIELDS, "Priority, as written."},
	{"parent", KF_ITEM_PARENT, TEXTOID, "text", FIELDS, "Display id of the parent item."},
	{"area", KF_ITEM_AREA, TEXTOID, "text", FIELDS, "Area."},
	{"iteration", KF_ITEM_ITERATION, TEXTOID, "text", FIELDS, "Iteration."},
	{"owner", KF_ITEM_OWNER, TEXTOID, "text", FIELDS, "Owner."},
	{"tags", KF_ITEM_TAGS, TEXTARRAYOID, "text[]", FIELDS, "Tags."},
	{"decisions", KF_ITEM_DECISIONS, TEXTARRAYOID, "text[]", FIELDS, "Ids of related decisions."},
	{"created", KF_ITEM_CREATED, DATEOID, "date", FIELDS, "Creation date (the date part of a date and time)."},
	{"updated", KF_ITEM_UPDATED, DATEOID, "date", FIELDS, "Last update date (the date part of a date and time)."},
	PATH_COLS,
	{"mtime", KF_MTIME, TIMESTAMPTZOID, "timestamptz", WALK, "Last modification time of the file."},
	{"frontmatter", KF_FRONTMATTER, JSONBOID, "jsonb", READ, "The whole frontmatter, unknown keys included."},
	{"body", KF_BODY, TEXTOID, "text", READ, "Markdown after the frontmatter, verbatim."},
};

static const KabsdColumnDef decisions_cols[] = {
	{"uid", KF_DECISION_UID, UUIDOID, "uuid", FIELDS, "Stable identity of the decision."},
	{"id", KF_DECISION_ID, TEXTOID, "text", FIELDS, "Display id, as written."},
	{"title", KF_DECISION_TITLE, TEXTOID, "text", FIELDS, "Title."},
	{"status", KF_DECISION_STATUS, TEXTOID, "text", FIELDS, "status, else state, as written."},
	{"date", KF_DECISION_DATE, DATEOID, "date", FIELDS, "date, else decision_date, else created."},
	{"deciders", KF_DECISION_DECIDERS, TEXTARRAYOID, "text[]", FIELDS, "Who decided."},
	{"related_items", KF_DECISION_RELATED_ITEMS, TEXTARRAYOID, "text[]", FIELDS, "Ids of related items."},
	{"supersedes", KF_DECISION_SUPERSEDES, TEXTOID, "text", FIELDS, "Id of the decision this one replaces."},
	{"superseded_by", KF_DECISION_SUPERSEDED_BY, TEXTOID, "text", FIELDS, "Id of the decision that replaces this one."},
	{"tags", KF_DECISION_TAGS, TEXTARRAYOID, "text[]", FIELDS, "Tags."},
	PATH_COLS,
	{"mtime", KF_MTIME, TIMESTAMPTZOID, "timestamptz", WALK, "Last modification time of the file."},
	{"frontmatter", KF_FRONTMATTER, JSONBOID, "jsonb", READ, "The whole frontmatter, unknown keys included."},
	{"body", KF_BODY, TEXTOID, "text", READ, "Markdown after the frontmatter, verbatim."},
};

static const KabsdColumnDef links_cols[] = {
	{"source_uid", KF_OWNER_UID, UUIDOID, "uuid", FIELDS, "uid of the item that writes the edge."},
	{"source_id", KF_OWNER_ID, TEXTOID, "text", FIELDS, "id of the item that writes the edge."},
	{"ordinal", KF_ORDINAL, INT4OID, "integer", WALK, "1-based position among the item's edges."},
	{"type", KF_LINK_TYPE, TEXTOID, "text", WALK, "parent, relates, blocks, blocked_by, decision or wikilink."},
	{"target_id", KF_LINK_TARGET_ID, TEXTOID, "text", WALK, "The target, as written."},
	PATH_COLS,
};

static const KabsdColumnDef worklog_cols[] = {
	{"item_uid", KF_OWNER_UID, UUIDOID, "uuid", FIELDS, "uid of the item."},
	{"item_id", KF_OWNER_ID, TEXTOID, "text", FIELDS, "id of the item."},
	{"ordinal", KF_ORDINAL, INT4OID, "integer", WALK, "1-based position in the item's worklog."},
	{"at", KF_WORKLOG_AT, TIMESTAMPOID, "timestamp", WALK, "When; NULL when the written time is no real date and time."},
	{"agent", KF_WORKLOG_AGENT, TEXTOID, "text", WALK, "The [agent=NAME] tag."},
	{"model", KF_WORKLOG_MODEL, TEXTOID, "text", WALK, "The [model=NAME] tag."},
	{"message", KF_WORKLOG_MESSAGE, TEXTOID, "text", WALK, "The message, continuation lines joined with newlines."},
	{"new_state", KF_WORKLOG_NEW_STATE, TEXTOID, "text", WALK, "X when the message says State -> X."},
	PATH_COLS,
};

static const KabsdColumnDef sections_cols[] = {
	{"item_uid", KF_OWNER_UID, UUIDOID, "uuid", FIELDS, "uid of the item or decision."},
	{"item_id", KF_OWNER_ID, TEXTOID, "text", FIELDS, "id of the item or decision."},
	{"ordinal", KF_ORDINAL, INT4OID, "integer", WALK, "1-based position among the body's headings."},
	{"level", KF_SECTION_LEVEL, INT4OID, "integer", WALK, "Heading level, 1 to 6."},
	{"heading", KF_SECTION_HEADING, TEXTOID, "text", WALK, "Heading text, as written."},
	{"content", KF_SECTION_CONTENT, TEXTOID, "text", WALK, "Markdown source up to the next heading, trimmed."},
	PATH_COLS,
};

static const KabsdColumnDef checklist_cols[] = {
	{"item_uid", KF_OWNER_UID, UUIDOID, "uuid", FIELDS, "uid of the item."},
	{"item_id", KF_OWNER_ID, TEXTOID, "text", FIELDS, "id of the item."},
	{"section", KF_CHECK_SECTION, TEXTOID, "text", WALK, "The nearest heading above the entry."},
	{"ordinal", KF_ORDINAL, INT4OID, "integer", WALK, "1-based position among the item's entries."},
	{"checked", KF_CHECK_CHECKED, BOOLOID, "boolean", WALK, "[x] or [X]."},
	{"text", KF_CHECK_TEXT, TEXTOID, "text", WALK, "The entry's text, as written."},
	PATH_COLS,
};

#define NCOLS(a) ((int) lengthof(a))

const KabsdTableDef kabsd_tables[KT_COUNT] = {
	{"files", files_cols, NCOLS(files_cols), KB_SCOPE_ALL, 0,
	"Every Markdown file under the backlog root."},
	{"items", items_cols, NCOLS(items_cols), KB_SCOPE_ITEMS, KB_NEED_READ,
	"One row per work item file with a non-null id or uid."},
	{"decisions", decisions_cols, NCOLS(decisions_cols), KB_SCOPE_DECISIONS,
		KB_NEED_READ,
	"One row per decision (ADR) file with frontmatter."},
	{"links", links_cols, NCOLS(links_cols), KB_SCOPE_ITEMS,
		KB_NEED_READ | KB_NEED_LINKS | KB_NEED_WIKILINKS,
	"One row per edge that an item writes."},
	{"worklog", worklog_cols, NCOLS(worklog_cols), KB_SCOPE_ITEMS,
		KB_NEED_READ | KB_NEED_WORKLOG,
	"One row per entry of an item's Worklog sections."},
	{"sections", sections_cols, NCOLS(sections_cols), KB_SCOPE_ITEMS_DECISIONS,
		KB_NEED_READ | KB_NEED_MARKDOWN,
	"One row per heading of an item's or decision's body."},
	{"checklist", checklist_cols, NCOLS(checklist_cols), KB_SCOPE_ITEMS,
		KB_NEED_READ | KB_NEED_CHECKLIST,
	"One row per task-list entry of an item's body."},
};

/* Types an attribute mapped to a frontmatter key may have. */
static bool
key_type_allowed(Oid type)
{
	switch (type)
	{
		case TEXTOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case BOOLOID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case UUIDOID:
		case TEXTARRAYOID:
		case JSONBOID:
			return true;
		default:
			return false;
	}
}

/*
 * Matches a foreign table's attributes to the data model by name, or to a
 * frontmatter key by the column option "key".  Everything that does not
 * fit is an error here, so that it fails when the table is created (the
 * extension's event trigger calls this) rather than in a query.
 */
KabsdBinding *
kabsd_bind_columns(Relation rel, KabsdTable table)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	const KabsdTableDef *def = &kabsd_tables[table];
	KabsdBinding *b = palloc0(sizeof(KabsdBinding));

	b->table = table;
	b->natts = tupdesc->natts;
	b->cols = palloc0(sizeof(KabsdColumn) * Max(1, tupdesc->natts));
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		KabsdColumn *col = &b->cols[i];
		List	   *options;
		ListCell   *lc;
		const char *attname = NameStr(att->attname);

		col->type = att->atttypid;
		col->colid = KABSD_COL_DROPPED;
		if (att->attisdropped)
			continue;
		options = GetForeignColumnOptions(RelationGetRelid(rel), att->attnum);
		foreach(lc, options)
		{
			DefElem    *d = lfirst(lc);

			if (strcmp(d->defname, "key") == 0)
				col->key = defGetString(d);
		}
		if (col->key)
		{
			if (!key_type_allowed(att->atttypid))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
						 errmsg("column \"%s\" of foreign table \"%s\" cannot map a frontmatter key to type %s",
								attname, RelationGetRelationName(rel),
								format_type_be(att->atttypid)),
						 errhint("Use text, smallint, integer, bigint, numeric, boolean, date, timestamp, timestamptz, uuid, text[] or jsonb.")));
			col->colid = KABSD_COL_KEY;
			continue;
		}
		/* the snapshot's links table adds target_uid, which no file gives */
		if (rel->rd_rel->relkind == RELKIND_RELATION && table == KT_LINKS &&
			strcmp(attname, "target_uid") == 0 && att->atttypid == UUIDOID)
		{
			col->colid = KABSD_COL_DERIVED;
			continue;
		}
		for (int c = 0; c < def->ncols; c++)
		{
			if (strcmp(def->cols[c].name, attname) == 0)
			{
				col->colid = c;
				break;
			}
		}
		if (col->colid < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("column \"%s\" of foreign table \"%s\" is not a column of backlog table \"%s\"",
							attname, RelationGetRelationName(rel), def->name),
					 errhint("Name a column of \"%s\", or map the column to a frontmatter key with OPTIONS (key 'name').",
							 def->name)));
		if (def->cols[col->colid].type != att->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("column \"%s\" of foreign table \"%s\" has type %s, but backlog table \"%s\" gives %s",
							attname, RelationGetRelationName(rel),
							format_type_be(att->atttypid), def->name,
							def->cols[col->colid].sqltype)));
	}
	return b;
}

/* KB_NEED_* flags to compute attribute attno (1-based). */
int
kabsd_column_need(const KabsdBinding *b, int attno)
{
	const KabsdColumn *col = &b->cols[attno - 1];

	if (col->colid == KABSD_COL_KEY)
		return KB_NEED_READ;
	if (col->colid < 0)
		return 0;
	return kabsd_tables[b->table].cols[col->colid].need;
}

/*
 * CREATE FOREIGN TABLE statements for IMPORT FOREIGN SCHEMA, honouring
 * LIMIT TO and EXCEPT.
 */
List *
kabsd_import_statements(const char *server, const char *schema,
						List *table_list, int list_type)
{
	List	   *cmds = NIL;

	for (int t = 0; t < KT_COUNT; t++)
	{
		const KabsdTableDef *def = &kabsd_tables[t];
		bool		listed = false;
		ListCell   *lc;
		StringInfoData buf;

		foreach(lc, table_list)
		{
			RangeVar   *rv = lfirst(lc);

			if (strcmp(rv->relname, def->name) == 0)
				listed = true;
		}
		if ((list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && !listed) ||
			(list_type == FDW_IMPORT_SCHEMA_EXCEPT && listed))
			continue;

		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s.%s (",
						 quote_identifier(schema), quote_identifier(def->name));
		for (int c = 0; c < def->ncols; c++)
			appendStringInfo(&buf, "%s%s %s", c ? ", " : "",
							 quote_identifier(def->cols[c].name),
							 def->cols[c].sqltype);
		appendStringInfo(&buf, ") SERVER %s OPTIONS (\"table\" %s)",
						 quote_identifier(server),
						 quote_literal_cstr(def->name));
		cmds = lappend(cmds, buf.data);
	}
	return cmds;
}

PG_FUNCTION_INFO_V1(kabsd_table_columns);

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
