/*-------------------------------------------------------------------------
 *
 * refresh.c
 *		  The C half of kabsd_refresh(), for the rebuild: one walk that reads
 *		  and parses each file once and writes the rows of all seven tables
 *		  into the staging tables the materialized views are built from, so
 *		  that every view of a snapshot sees each file as it was at one read,
 *		  and each file's stamp; a stat-only fingerprint of the tree that
 *		  tells when nothing changed; and the table catalogue the SQL layer
 *		  builds its objects from.  The refresh in place is snapshot.c.
 *
 * The staging tables are unlogged heaps without indexes, created by
 * kabsd_attach() and truncated by the caller just before the load, so rows
 * go in with heap_insert and a bulk-insert state and nothing else to keep.
 *
 * src/refresh.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(kabsd_table_columns);
PG_FUNCTION_INFO_V1(kabsd_fingerprint);
PG_FUNCTION_INFO_V1(kabsd_stage_load);

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
 * The seven relations of a refresh argument, in the order of the data
 * model's tables.
 */
Datum *
kabsd_seven_relations(ArrayType *arr, const char *func, const char *what)
{
	Datum	   *relids;
	int			n;

	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &relids, NULL, &n);
	if (n != KT_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs %d %s, got %d", func, KT_COUNT, what, n)));
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

/* Checks that rel is the (path text, stamp bigint) table of a backlog. */
void
kabsd_check_stamps(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (rel->rd_rel->relkind != RELKIND_RELATION || desc->natts != 2 ||
		TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 1)->atttypid != INT8OID ||
		RelationGetForm(rel)->relhasindex || rel->trigdesc != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kabsd stamps table",
						RelationGetRelationName(rel)),
				 errdetail("A stamps table has the columns (path text, stamp bigint) and no indexes or triggers.")));
	if (!pg_class_ownercheck(RelationGetRelid(rel), GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
}

/* One staging table being written. */
typedef struct StageTable
{
	Relation	rel;
	KabsdBinding *binding;
	bool	   *wanted;
	Datum	   *values;
	bool	   *nulls;
	BulkInsertState bistate;
	int64		rows;
} StageTable;

static void
stage_open(StageTable *st, Oid relid, KabsdTable table)
{
	Relation	rel = table_open(relid, RowExclusiveLock);

	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		RelationGetForm(rel)->relhasindex || rel->trigdesc != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a kabsd staging table",
						RelationGetRelationName(rel)),
				 errdetail("A staging table is a plain table without indexes or triggers.")));
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	st->rel = rel;
	st->binding = kabsd_bind_columns(rel, table);
	st->wanted = palloc(sizeof(bool) * Max(1, st->binding->natts));
	for (int i = 0; i < st->binding->natts; i++)
		st->wanted[i] = true;
	st->values = palloc(sizeof(Datum) * Max(1, st->binding->natts));
	st->nulls = palloc(sizeof(bool) * Max(1, st->binding->natts));
	st->bistate = GetBulkInsertState();
	st->rows = 0;
}

/*
 * kabsd_stage_load(server, stage regclass[7], stamps regclass): fills the
 * staging tables (in the order files, items, decisions, links, worklog,
 * sections, checklist) from one read of each file, and the stamps table
 * with each file's stamp.  This is the rebuild of a snapshot whose views
 * are not populated; a populated one is refreshed in place (snapshot.c).
 * Returns the row counts, the number of files with an error, and the
 * fingerprint of what was read.
 */
Datum
kabsd_stage_load(PG_FUNCTION_ARGS)
{
	ArrayType  *stage = PG_GETARG_ARRAYTYPE_P(1);
	KabsdOptions opts;
	StageTable	st[KT_COUNT];
	Relation	stamps;
	BulkInsertState stamps_bistate;
	Datum	   *relids;
	KabsdScan  *scan;
	KbEntry    *entry;
	KbFile	   *file;
	MemoryContext rowcxt;
	CommandId	cid = GetCurrentCommandId(true);
	TupleDesc	resdesc;
	Datum		result[KT_COUNT + 2];
	bool		resnull[KT_COUNT + 2];
	uint64		salt,
				h;
	int64		nfiles = 0,
				errors = 0;

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kabsd_server_options(PG_GETARG_NAME(0), &opts);
	relids = kabsd_seven_relations(stage, "kabsd_stage_load", "staging tables");

	for (int t = 0; t < KT_COUNT; t++)
		stage_open(&st[t], DatumGetObjectId(relids[t]), (KabsdTable) t);
	stamps = table_open(PG_GETARG_OID(2), RowExclusiveLock);
	kabsd_check_stamps(stamps);
	stamps_bistate = GetBulkInsertState();

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw load row",
								   ALLOCSET_DEFAULT_SIZES);
	salt = h = kabsd_fingerprint_start(&opts);
	scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL, NULL,
							KABSD_ALL_NEEDS, CurrentMemoryContext);
	while (kabsd_scan_next_file(scan, &entry, &file))
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		Datum		stamp[2];
		bool		stamp_null[2] = {false, false};

		h = kabsd_fingerprint_entry(h, entry);
		nfiles++;
		if (kb_file_error(file) != NULL)
			errors++;
		for (int t = 0; t < KT_COUNT; t++)
		{
			int			n = kabsd_file_rows((KabsdTable) t, file);

			for (int r = 0; r < n; r++)
			{
				kabsd_fill_row(st[t].binding, st[t].wanted, entry, file, r,
							   st[t].values, st[t].nulls);
				heap_insert(st[t].rel,
							heap_form_tuple(RelationGetDescr(st[t].rel),
											st[t].values, st[t].nulls),
							cid, 0, st[t].bistate);
				MemoryContextReset(rowcxt);
				st[t].rows++;
			}
		}
		stamp[0] = PointerGetDatum(cstring_to_text_with_len(entry->relpath,
															entry->relpath_len));
		stamp[1] = Int64GetDatum(kabsd_file_stamp(salt, entry));
		heap_insert(stamps, heap_form_tuple(RelationGetDescr(stamps), stamp, stamp_null),
					cid, 0, stamps_bistate);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	kabsd_scan_end(scan);
	MemoryContextDelete(rowcxt);

	FreeBulkInsertState(stamps_bistate);
	table_close(stamps, NoLock);
	for (int t = 0; t < KT_COUNT; t++)
	{
		FreeBulkInsertState(st[t].bistate);
		table_close(st[t].rel, NoLock);
		result[t] = Int64GetDatum(st[t].rows);
		resnull[t] = false;
	}
	result[KT_COUNT] = Int64GetDatum(errors);
	resnull[KT_COUNT] = false;
	result[KT_COUNT + 1] = kabsd_fingerprint_text(h, nfiles);
	resnull[KT_COUNT + 1] = false;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc),
													  result, resnull)));
}
