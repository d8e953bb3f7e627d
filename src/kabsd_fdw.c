/*-------------------------------------------------------------------------
 *
 * kabsd_fdw.c
 *		  Foreign-data wrapper for a Markdown backlog directory: the handler,
 *		  planning, the executor's scan, EXPLAIN, ANALYZE, and the refusal of
 *		  every write (the files are the source of truth).
 *
 * src/kabsd_fdw.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_operator.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("kabsd_fdw.min_parallel_refresh_files",
							"Sets the number of files a refresh must read before it shares the reading with parallel workers.",
							"max_parallel_maintenance_workers sets how many workers; 0 disables the threshold.",
							&kabsd_min_parallel_refresh_files,
							1000, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	kabsd_watch_init();
	MarkGUCPrefixReserved("kabsd_fdw");
}

/* Rows assumed for a table that was never analysed. */
#define KABSD_DEFAULT_ROWS	1000

/* Planner state, in baserel->fdw_private. */
typedef struct KabsdPlanState
{
	KabsdOptions opts;
	List	   *wanted;			/* 1-based attnos the query reads */
	char	   *product;		/* from a "product = const" clause, or NULL */
} KabsdPlanState;

/* Executor state. */
typedef struct KabsdExecState
{
	KabsdOptions opts;
	KabsdBinding *binding;
	bool	   *wanted;			/* per attribute */
	int			need;			/* KB_NEED_* for the wanted columns */
	char	   *product;
	KabsdScan  *scan;			/* NULL under EXPLAIN without ANALYZE */
	MemoryContext row_cxt;		/* reset for each row */
	KbEntry    *entry;
	KbFile	   *file;
	int			nrows;			/* rows of the current file */
	int			row;			/* next row of the current file */
	int64		walked;			/* counters kept across rescans */
	int64		read;
	int64		errors;
} KabsdExecState;

PG_FUNCTION_INFO_V1(kabsd_fdw_handler);
PG_FUNCTION_INFO_V1(kabsd_check_foreign_table);

static void kabsdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								   Oid foreigntableid);
static void kabsdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								 Oid foreigntableid);
static ForeignScan *kabsdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										Oid foreigntableid, ForeignPath *best_path,
										List *tlist, List *scan_clauses,
										Plan *outer_plan);
static void kabsdBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *kabsdIterateForeignScan(ForeignScanState *node);
static void kabsdReScanForeignScan(ForeignScanState *node);
static void kabsdEndForeignScan(ForeignScanState *node);
static void kabsdExplainForeignScan(ForeignScanState *node, ExplainState *es);
static bool kabsdAnalyzeForeignTable(Relation relation,
									 AcquireSampleRowsFunc *func,
									 BlockNumber *totalpages);
static List *kabsdPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
									Index resultRelation, int subplan_index);
static void kabsdExecForeignTruncate(List *rels, DropBehavior behavior,
									 bool restart_seqs);
static List *kabsdImportForeignSchema(ImportForeignSchemaStmt *stmt,
									  Oid serverOid);

static int	kabsd_acquire_sample_rows(Relation onerel, int elevel,
									  HeapTuple *rows, int targrows,
									  double *totalrows,
									  double *totaldeadrows);

Datum
kabsd_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = kabsdGetForeignRelSize;
	routine->GetForeignPaths = kabsdGetForeignPaths;
	routine->GetForeignPlan = kabsdGetForeignPlan;
	routine->BeginForeignScan = kabsdBeginForeignScan;
	routine->IterateForeignScan = kabsdIterateForeignScan;
	routine->ReScanForeignScan = kabsdReScanForeignScan;
	routine->EndForeignScan = kabsdEndForeignScan;
	routine->ExplainForeignScan = kabsdExplainForeignScan;
	routine->AnalyzeForeignTable = kabsdAnalyzeForeignTable;
	routine->PlanForeignModify = kabsdPlanForeignModify;
	routine->ExecForeignTruncate = kabsdExecForeignTruncate;
	routine->ImportForeignSchema = kabsdImportForeignSchema;
	PG_RETURN_POINTER(routine);
}

/* The binding of a foreign table, checked; the relation is opened here. */
static KabsdBinding *
bind_relation(Oid relid, KabsdOptions *opts)
{
	Relation	rel = table_open(relid, AccessShareLock);
	KabsdBinding *b;

	kabsd_get_options(relid, opts);
	b = kabsd_bind_columns(rel, opts->table);
	table_close(rel, AccessShareLock);
	return b;
}

/* KB_NEED_* flags for a table read with these attributes. */
static int
need_for(const KabsdBinding *b, const bool *wanted)
{
	int			need = kabsd_tables[b->table].row_need;

	for (int i = 0; i < b->natts; i++)
		if (wanted[i])
			need |= kabsd_column_need(b, i + 1);
	return kb_need_closure(need);
}

/*
 * A "product = 'x'" restriction lets the walk skip every other product's
 * folder; the clause is still checked by the executor.
 */
static char *
product_restriction(RelOptInfo *baserel, const KabsdBinding *b)
{
	int			product_attno = 0;
	ListCell   *lc;

	for (int i = 0; i < b->natts; i++)
		if (b->cols[i].colid >= 0 &&
			kabsd_tables[b->table].cols[b->cols[i].colid].field == KF_PRODUCT)
			product_attno = i + 1;
	if (product_attno == 0)
		return NULL;
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);
		OpExpr	   *op = (OpExpr *) ri->clause;
		Node	   *l,
				   *r;

		if (!IsA(op, OpExpr) || op->opno != TextEqualOperator ||
			list_length(op->args) != 2)
			continue;
		l = linitial(op->args);
		r = lsecond(op->args);
		if (IsA(r, Var))
		{
			Node	   *t = l;

			l = r;
			r = t;
		}
		if (IsA(l, Var) && ((Var *) l)->varno == baserel->relid &&
			((Var *) l)->varattno == product_attno && IsA(r, Const) &&
			!((Const *) r)->constisnull)
			return TextDatumGetCString(((Const *) r)->constvalue);
	}
	return NULL;
}

static void
kabsdGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid)
{
	KabsdPlanState *ps = palloc0(sizeof(KabsdPlanState));
	KabsdBinding *b = bind_relation(foreigntableid, &ps->opts);
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	double		tuples;
	int			attno;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) ((RestrictInfo *) lfirst(lc))->clause,
					   baserel->relid, &attrs);
	attno = -1;
	while ((attno = bms_next_member(attrs, attno)) >= 0)
	{
		AttrNumber	a = attno + FirstLowInvalidHeapAttributeNumber;

		if (a == InvalidAttrNumber)
		{
			/* a whole-row reference reads every column */
			ps->wanted = NIL;
			for (int i = 1; i <= b->natts; i++)
				ps->wanted = lappend_int(ps->wanted, i);
			break;
		}
		if (a > 0)
			ps->wanted = lappend_int(ps->wanted, a);
	}
	ps->product = product_restriction(baserel, b);

	tuples = baserel->tuples >= 0 ? baserel->tuples : KABSD_DEFAULT_ROWS;
	baserel->tuples = tuples;
	baserel->rows = clamp_row_est(tuples *
								  clauselist_selectivity(root,
														 baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
	baserel->fdw_private = ps;
}

/*
 * One path.  A row costs a little CPU; reading and parsing files is the
 * real cost, charged per tuple as ten operators.
 */
static void
kabsdGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					 Oid foreigntableid)
{
	Cost		startup = 10.0;
	Cost		total = startup + baserel->tuples *
		(cpu_tuple_cost + 10 * cpu_operator_cost);

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL, NULL, NULL, NIL));
}

static ForeignScan *
kabsdGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					ForeignPath *best_path, List *tlist, List *scan_clauses,
					Plan *outer_plan)
{
	KabsdPlanState *ps = baserel->fdw_private;
	List	   *fdw_private;

	scan_clauses = extract_actual_clauses(scan_clauses, false);
	fdw_private = list_make2(ps->wanted,
							 makeString(ps->product ? ps->product : pstrdup("")));
	return make_foreignscan(tlist, scan_clauses, baserel->relid, NIL,
							fdw_private, NIL, NIL, outer_plan);
}

static void
start_scan(KabsdExecState *st, MemoryContext cxt)
{
	st->scan = kabsd_scan_begin(st->opts.root, st->opts.max_file_size,
								kabsd_tables[st->opts.table].scope,
								st->product, st->need, cxt);
	st->nrows = 0;
	st->row = 0;
}

static void
stop_scan(KabsdExecState *st)
{
	int64		w,
				r,
				e;

	if (st->scan == NULL)
		return;
	kabsd_scan_counts(st->scan, &w, &r, &e);
	st->walked += w;
	st->read += r;
	st->errors += e;
	kabsd_scan_end(st->scan);
	st->scan = NULL;
}

static void
kabsdBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	KabsdExecState *st = palloc0(sizeof(KabsdExecState));
	List	   *wanted = linitial(plan->fdw_private);
	char	   *product = strVal(lsecond(plan->fdw_private));
	ListCell   *lc;

	kabsd_get_options(RelationGetRelid(rel), &st->opts);
	st->binding = kabsd_bind_columns(rel, st->opts.table);
	st->wanted = palloc0(sizeof(bool) * Max(1, st->binding->natts));
	foreach(lc, wanted)
		st->wanted[lfirst_int(lc) - 1] = true;
	st->need = need_for(st->binding, st->wanted);
	st->product = product[0] ? product : NULL;
	node->fdw_state = st;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	st->row_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
										"kabsd_fdw row", ALLOCSET_DEFAULT_SIZES);
	start_scan(st, node->ss.ps.state->es_query_cxt);
}

static TupleTableSlot *
kabsdIterateForeignScan(ForeignScanState *node)
{
	KabsdExecState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	MemoryContext old;

	ExecClearTuple(slot);
	MemoryContextReset(st->row_cxt);
	while (st->row >= st->nrows)
	{
		if (!kabsd_scan_next_file(st->scan, &st->entry, &st->file))
			return slot;
		st->nrows = kabsd_file_rows(st->opts.table, st->file);
		st->row = 0;
	}
	/* conversions cannot raise: every value was validated by the core */
	old = MemoryContextSwitchTo(st->row_cxt);
	kabsd_fill_row(st->binding, st->wanted, st->entry, st->file, st->row,
				   slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	st->row++;
	return ExecStoreVirtualTuple(slot);
}

static void
kabsdReScanForeignScan(ForeignScanState *node)
{
	KabsdExecState *st = node->fdw_state;

	stop_scan(st);
	start_scan(st, node->ss.ps.state->es_query_cxt);
}

static void
kabsdEndForeignScan(ForeignScanState *node)
{
	KabsdExecState *st = node->fdw_state;

	if (st != NULL)
		stop_scan(st);
}

static void
kabsdExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	KabsdExecState *st = node->fdw_state;

	ExplainPropertyText("Backlog Root", st->opts.root, es);
	ExplainPropertyText("Backlog Table", kabsd_tables[st->opts.table].name, es);
	if (st->product)
		ExplainPropertyText("Walk Restricted To Product", st->product, es);
	if (es->analyze)
	{
		int64		w = st->walked,
					r = st->read,
					e = st->errors;

		if (st->scan)
		{
			int64		w2,
						r2,
						e2;

			kabsd_scan_counts(st->scan, &w2, &r2, &e2);
			w += w2;
			r += r2;
			e += e2;
		}
		ExplainPropertyInteger("Files Walked", NULL, w, es);
		ExplainPropertyInteger("Files Read", NULL, r, es);
		ExplainPropertyInteger("Files With Errors", NULL, e, es);
	}
}

/* ---------------------------------------------------------------------
 * ANALYZE: every row is read and a reservoir sample kept, as file_fdw does.
 * ---------------------------------------------------------------------
 */
static bool
kabsdAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						 BlockNumber *totalpages)
{
	*func = kabsd_acquire_sample_rows;
	*totalpages = 1;
	return true;
}

static int
kabsd_acquire_sample_rows(Relation onerel, int elevel, HeapTuple *rows,
						  int targrows, double *totalrows,
						  double *totaldeadrows)
{
	TupleDesc	tupdesc = RelationGetDescr(onerel);
	KabsdOptions opts;
	KabsdBinding *b;
	bool	   *wanted;
	Datum	   *values;
	bool	   *nulls;
	KabsdScan  *scan;
	KbEntry    *entry;
	KbFile	   *file;
	MemoryContext tupcxt;
	ReservoirStateData rstate;
	double		rowstoskip = -1;
	int			numrows = 0;

	kabsd_get_options(RelationGetRelid(onerel), &opts);
	b = kabsd_bind_columns(onerel, opts.table);
	wanted = palloc(sizeof(bool) * Max(1, b->natts));
	for (int i = 0; i < b->natts; i++)
		wanted[i] = true;
	values = palloc(sizeof(Datum) * Max(1, tupdesc->natts));
	nulls = palloc(sizeof(bool) * Max(1, tupdesc->natts));
	tupcxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw analyze",
								   ALLOCSET_DEFAULT_SIZES);
	reservoir_init_selection_state(&rstate, targrows);
	*totalrows = 0;
	*totaldeadrows = 0;

	scan = kabsd_scan_begin(opts.root, opts.max_file_size,
							kabsd_tables[opts.table].scope, NULL,
							need_for(b, wanted), CurrentMemoryContext);
	while (kabsd_scan_next_file(scan, &entry, &file))
	{
		int			n = kabsd_file_rows(opts.table, file);

		for (int r = 0; r < n; r++)
		{
			MemoryContext old;
			HeapTuple	tup;

			vacuum_delay_point();
			MemoryContextReset(tupcxt);
			old = MemoryContextSwitchTo(tupcxt);
			kabsd_fill_row(b, wanted, entry, file, r, values, nulls);
			MemoryContextSwitchTo(old);

			if (numrows < targrows)
				rows[numrows++] = heap_form_tuple(tupdesc, values, nulls);
			else
			{
				if (rowstoskip < 0)
					rowstoskip = reservoir_get_next_S(&rstate, *totalrows, targrows);
				if (rowstoskip <= 0)
				{
					int			k = (int) (targrows * sampler_random_fract(&rstate.randstate));

					tup = heap_form_tuple(tupdesc, values, nulls);
					heap_freetuple(rows[k]);
					rows[k] = tup;
				}
				rowstoskip -= 1;
			}
			*totalrows += 1;
		}
	}
	kabsd_scan_end(scan);
	MemoryContextDelete(tupcxt);
	ereport(elevel,
			(errmsg("\"%s\": backlog table \"%s\" has %.0f rows; %d rows in sample",
					RelationGetRelationName(onerel), kabsd_tables[opts.table].name,
					*totalrows, numrows)));
	return numrows;
}

/* ---------------------------------------------------------------------
 * Writes: refused, with a message that says where to write instead.
 * ---------------------------------------------------------------------
 */
#define REFUSE_DETAIL \
	errdetail("Backlog tables are read-only: the Markdown files under the backlog root are the source of truth.")
#define REFUSE_HINT \
	errhint("Edit the Markdown files instead; the live tables show the change at once, the snapshot after kabsd_refresh().")

/* Each refusal a whole message, so that it can be translated. */
static void
refuse_write(const char *relname, CmdType operation)
{
	switch (operation)
	{
		case CMD_INSERT:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot insert into foreign table \"%s\"", relname),
					 REFUSE_DETAIL, REFUSE_HINT));
			break;
		case CMD_UPDATE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot update foreign table \"%s\"", relname),
					 REFUSE_DETAIL, REFUSE_HINT));
			break;
		case CMD_DELETE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot delete from foreign table \"%s\"", relname),
					 REFUSE_DETAIL, REFUSE_HINT));
			break;
		case CMD_UTILITY:		/* TRUNCATE */
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot truncate foreign table \"%s\"", relname),
					 REFUSE_DETAIL, REFUSE_HINT));
			break;
		default:
			elog(ERROR, "unexpected operation %d on foreign table \"%s\"",
				 (int) operation, relname);
	}
}

static List *
kabsdPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
					   Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);

	refuse_write(get_rel_name(rte->relid), plan->operation);
	return NIL;
}

static void
kabsdExecForeignTruncate(List *rels, DropBehavior behavior, bool restart_seqs)
{
	refuse_write(RelationGetRelationName((Relation) linitial(rels)), CMD_UTILITY);
}

/* ---------------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA kabsd: the seven tables.
 * ---------------------------------------------------------------------
 */
static List *
kabsdImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);

	if (strcmp(stmt->remote_schema, "kabsd") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" is not offered by a kabsd_fdw server",
						stmt->remote_schema),
				 errhint("Import the schema \"kabsd\".")));
	return kabsd_import_statements(server->servername, stmt->local_schema,
								   stmt->table_list, stmt->list_type);
}

/*
 * Called by the extension's event trigger after CREATE or ALTER FOREIGN
 * TABLE, so that a column that cannot be filled fails there and then.
 * Tables of other wrappers are left alone.
 */
Datum
kabsd_check_foreign_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ForeignTable *table;
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	KabsdOptions opts;
	char	   *handler;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		PG_RETURN_VOID();
	table = GetForeignTable(relid);
	server = GetForeignServer(table->serverid);
	fdw = GetForeignDataWrapper(server->fdwid);
	handler = OidIsValid(fdw->fdwhandler) ? get_func_name(fdw->fdwhandler) : NULL;
	if (handler == NULL || strcmp(handler, "kabsd_fdw_handler") != 0)
		PG_RETURN_VOID();
	bind_relation(relid, &opts);
	PG_RETURN_VOID();
}
