/*-------------------------------------------------------------------------
 *
 * refresh_diff.c
 *		  The rows a file gives against the rows each snapshot table holds
 *		  for its path: a row already right stays untouched, every other
 *		  difference is handed to the participant's sink (DiffSink), which
 *		  writes it, keeps it, or sends it to the leader.
 *
 * Every participant of a refresh (the leader, each parallel worker) opens
 * the seven tables here and compares against one snapshot, so all find the
 * same answers.  A table that was empty when the refresh began holds no
 * row of any path: nothing is looked up in it.
 *
 * src/refresh_diff.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

static AttrNumber
attnum_of(const SnapTable *st, const char *name)
{
	const KabsdTableDef *def = &kabsd_tables[st->table];

	for (int i = 0; i < st->binding->natts; i++)
	{
		int			c = st->binding->cols[i].colid;

		if (c >= 0 && strcmp(def->cols[c].name, name) == 0)
			return i + 1;
		if (c == KABSD_COL_DERIVED && strcmp(name, "target_uid") == 0)
			return i + 1;
	}
	return 0;
}

/*
 * The unique btree index led by path that every snapshot table has (its
 * primary key).  A table that is empty needs none: there is nothing to look
 * up, and the first fill of a new table builds its indexes after the rows.
 */
static Relation
open_path_index(SnapTable *st, LOCKMODE lockmode)
{
	List	   *indexes = RelationGetIndexList(st->rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), lockmode);

		if (idx->rd_rel->relam == BTREE_AM_OID && idx->rd_index->indisunique &&
			idx->rd_index->indisvalid &&
			idx->rd_index->indkey.values[0] == st->path_att &&
			RelationGetIndexPredicate(idx) == NIL)
			return idx;
		index_close(idx, lockmode);
	}
	if (st->empty)
		return NULL;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("snapshot table \"%s\" has no unique index on its path",
					RelationGetRelationName(st->rel)),
			 errhint("Detach and attach the backlog again to recreate its snapshot.")));
	return NULL;				/* keep the compiler quiet */
}

/* Does the table hold no row that the snapshot sees? */
static bool
table_is_empty(Relation rel, Snapshot snapshot, TupleTableSlot *slot)
{
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	bool		empty = !table_scan_getnextslot(scan, ForwardScanDirection, slot);

	table_endscan(scan);
	ExecClearTuple(slot);
	return empty;
}

/*
 * Opens one snapshot table: in the leader with the lock any row change
 * takes (readers go on reading); in a worker for reading, under the
 * leader's lock group.
 */
static void
open_table(RefreshState *rs, SnapTable *st, Oid relid, KabsdTable table,
		   bool leader)
{
	LOCKMODE	lockmode = leader ? RowExclusiveLock : AccessShareLock;
	Relation	rel = table_open(relid, lockmode);

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot refresh \"%s\"", RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE,
					   RelationGetRelationName(rel));

	/*
	 * Only the snapshot of this backlog: schema <backlog>, the table of
	 * that name.  The stamps written beside it belong to the backlog, so
	 * tables of one's own elsewhere must not stand in for it.
	 */
	if (strcmp(RelationGetRelationName(rel), kabsd_tables[table].name) != 0 ||
		rel->rd_rel->relnamespace != rs->nspid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a snapshot table of backlog \"%s\"",
						RelationGetRelationName(rel), rs->backlog_name),
				 errdetail("Its table \"%s\" is \"%s.%s\".", kabsd_tables[table].name,
						   rs->backlog_name, kabsd_tables[table].name)));
	st->table = table;
	st->rel = rel;
	st->binding = kabsd_bind_columns(rel, table);
	st->wanted = palloc(sizeof(bool) * Max(1, st->binding->natts));
	for (int i = 0; i < st->binding->natts; i++)
		st->wanted[i] = true;
	st->path_att = attnum_of(st, "path");
	st->ordinal_att = attnum_of(st, "ordinal");
	st->product_att = attnum_of(st, "product");
	st->id_att = attnum_of(st, "id");
	st->uid_att = attnum_of(st, "uid");
	st->error_att = attnum_of(st, "error");
	st->type_att = attnum_of(st, "type");
	st->target_id_att = attnum_of(st, "target_id");
	st->target_att = table == KT_LINKS ? attnum_of(st, "target_uid") : 0;
	if (st->path_att == 0 ||
		(table == KT_LINKS && (st->target_att == 0 || st->type_att == 0 ||
							   st->target_id_att == 0 || st->product_att == 0)) ||
		((table == KT_ITEMS || table == KT_DECISIONS) &&
		 (st->product_att == 0 || st->id_att == 0 || st->uid_att == 0)) ||
		(table == KT_FILES && st->error_att == 0) ||
		(table >= KT_LINKS && st->ordinal_att == 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("snapshot table \"%s\" lacks columns of backlog table \"%s\"",
						RelationGetRelationName(rel), kabsd_tables[table].name),
				 errhint("Detach and attach the backlog again to recreate its snapshot.")));
	st->old_slot = table_slot_create(rel, &rs->estate->es_tupleTable);
	st->new_slot = ExecInitExtraTupleSlot(rs->estate, RelationGetDescr(rel),
										  &TTSOpsVirtual);
	st->min_slot = ExecInitExtraTupleSlot(rs->estate, RelationGetDescr(rel),
										  &TTSOpsMinimalTuple);
	/* every participant sees the same snapshot, so finds the same answer */
	st->empty = table_is_empty(rel, rs->snapshot, st->old_slot);
	st->pathidx = open_path_index(st, lockmode);
}

/*
 * Sets up one participant: the seven tables opened and compared with
 * snapshot.  The caller sets the sink.
 */
void
kabsd_diff_begin(RefreshState *rs, const char *backlog, const Oid *relids,
				 Snapshot snapshot, bool leader)
{
	memset(rs, 0, sizeof(*rs));
	rs->backlog_name = pstrdup(backlog);
	rs->nspid = get_namespace_oid(backlog, false);
	rs->estate = CreateExecutorState();
	rs->snapshot = RegisterSnapshot(snapshot);
	for (int t = 0; t < KT_COUNT; t++)
		open_table(rs, &rs->t[t], relids[t], (KabsdTable) t, leader);

	/*
	 * An empty links table is filled after every other table: its targets
	 * are then resolved once, against the final items and decisions, rather
	 * than against tables still filling and then again.
	 */
	rs->defer_links = rs->t[KT_LINKS].empty;
	/* not under a file's context: the maps outlive the file that first
	 * needs them */
	rs->targets_cxt = AllocSetContextCreate(CurrentMemoryContext,
											"kabsd_fdw link targets",
											ALLOCSET_DEFAULT_SIZES);
}

/* The index scans kept from file to file end. */
void
kabsd_diff_end_scans(RefreshState *rs)
{
	for (int t = 0; t < KT_COUNT; t++)
	{
		if (rs->t[t].pathscan)
			index_endscan(rs->t[t].pathscan);
		rs->t[t].pathscan = NULL;
	}
}

void
kabsd_diff_end(RefreshState *rs)
{
	kabsd_diff_end_scans(rs);
	kabsd_targets_end(rs);
	for (int t = 0; t < KT_COUNT; t++)
	{
		if (rs->t[t].pathidx)
			index_close(rs->t[t].pathidx, NoLock);
		table_close(rs->t[t].rel, NoLock);
	}
	UnregisterSnapshot(rs->snapshot);
	ExecResetTupleTable(rs->estate->es_tupleTable, true);
	FreeExecutorState(rs->estate);
	MemoryContextDelete(rs->targets_cxt);
}

/* Are two non-null values of an attribute the same bytes (detoasted)? */
static bool
value_equal(Form_pg_attribute att, Datum a, Datum b)
{
	if (att->attbyval)
		return a == b;
	if (att->attlen > 0)
		return memcmp(DatumGetPointer(a), DatumGetPointer(b), att->attlen) == 0;
	if (att->attlen == -1)
	{
		struct varlena *va = PG_DETOAST_DATUM_PACKED(a);
		struct varlena *vb = PG_DETOAST_DATUM_PACKED(b);
		bool		eq;

		eq = VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
			memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
		if ((Pointer) va != DatumGetPointer(a))
			pfree(va);
		if ((Pointer) vb != DatumGetPointer(b))
			pfree(vb);
		return eq;
	}
	return strcmp(DatumGetCString(a), DatumGetCString(b)) == 0;
}

static bool
row_equal(const SnapTable *st, TupleTableSlot *old, const Datum *values,
		  const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(st->rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (old->tts_isnull[i] != nulls[i])
			return false;
		if (!nulls[i] && !value_equal(att, old->tts_values[i], values[i]))
			return false;
	}
	return true;
}

/*
 * A row the table must gain.  What it gives as a link target, and whether
 * it is a file with an error, is counted here, whoever writes it.
 */
static void
insert_row(RefreshState *rs, SnapTable *st, const Datum *values,
		   const bool *nulls)
{
	TupleTableSlot *slot = st->new_slot;
	int			natts = RelationGetDescr(st->rel)->natts;

	if (st->table == KT_ITEMS || st->table == KT_DECISIONS)
	{
		rs->targets_sum += kabsd_targets_row_hash(st, values, nulls);
		kabsd_targets_note_row(rs, st, values, nulls);
	}
	else if (st->table == KT_FILES && !nulls[st->error_att - 1])
		rs->errors_delta++;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	rs->sink->insert(rs, st, slot);
	ExecClearTuple(slot);
}

/* A row the table must lose. */
static void
delete_row(RefreshState *rs, SnapTable *st, TupleTableSlot *old)
{
	if (st->table == KT_ITEMS || st->table == KT_DECISIONS)
	{
		rs->targets_sum -= kabsd_targets_row_hash(st, old->tts_values,
												  old->tts_isnull);
		kabsd_targets_note_row(rs, st, old->tts_values, old->tts_isnull);
	}
	else if (st->table == KT_FILES && !old->tts_isnull[st->error_att - 1])
		rs->errors_delta--;
	rs->sink->delete(rs, st, &old->tts_tid);
}

/*
 * Can a path of this kind have rows in this table?  The data model gives
 * items, links, worklog and checklist rows to item files, decisions rows
 * to decision files, sections rows to both, and a files row to every
 * file; a path's kind follows from the path alone.  So a table that cannot
 * hold rows of a path is not even looked at: a third of the lookups of a
 * full refresh.
 */
static bool
table_holds_kind(KabsdTable table, KbKind kind)
{
	switch (table)
	{
		case KT_FILES:
			return true;
		case KT_DECISIONS:
			return kind == KB_KIND_DECISION;
		case KT_SECTIONS:
			return kind == KB_KIND_ITEM || kind == KB_KIND_DECISION;
		default:
			return kind == KB_KIND_ITEM;
	}
}

/*
 * One row the table holds for a path: kept when it is the row of its
 * ordinal the file gives, else deleted.
 */
static inline void
match_old_row(RefreshState *rs, SnapTable *st, TupleTableSlot *old, int n,
			  const Datum *values, const bool *nulls, bool *kept)
{
	int			natts = st->binding->natts;
	int			r = 0;

	slot_getallattrs(old);
	if (st->ordinal_att)
		r = old->tts_isnull[st->ordinal_att - 1] ? -1 :
			DatumGetInt32(old->tts_values[st->ordinal_att - 1]) - 1;
	if (r >= 0 && r < n && !kept[r] &&
		row_equal(st, old, &values[r * natts], &nulls[r * natts]))
		kept[r] = true;
	else
		delete_row(rs, st, old);
}

/*
 * Makes the rows of one path in one table those the file gives (none when
 * file is NULL: the file is gone).  files_tid is the path's row in the
 * files table, invalid when it has none.
 */
static void
diff_table(RefreshState *rs, SnapTable *st, const KbEntry *entry,
		   const KbFile *file, const char *path, ItemPointer files_tid)
{
	int			natts = st->binding->natts;
	int			n = file ? kabsd_file_rows(st->table, file) : 0;
	Datum	   *values = palloc(sizeof(Datum) * natts * Max(1, n));
	bool	   *nulls = palloc(sizeof(bool) * natts * Max(1, n));
	bool	   *kept = palloc0(sizeof(bool) * Max(1, n));
	ScanKeyData key;
	IndexScanDesc scan;

	for (int r = 0; r < n; r++)
	{
		kabsd_fill_row(st->binding, st->wanted, entry, file, r,
					   &values[r * natts], &nulls[r * natts]);
		if (st->target_att && !rs->defer_links)
			kabsd_targets_resolve(rs, st, &values[r * natts], &nulls[r * natts]);
	}

	if (st->empty)
	{
		/* a table empty when the refresh began holds no row of the path */
	}
	else if (st->table == KT_FILES)
	{
		/* the files table's row of a path was found when the refresh began */
		if (ItemPointerIsValid(files_tid) &&
			table_tuple_fetch_row_version(st->rel, files_tid, rs->snapshot,
										  st->old_slot))
			match_old_row(rs, st, st->old_slot, n, values, nulls, kept);
	}
	else
	{
		MemoryContext filecxt;

		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   st->pathidx->rd_indcollation[0], F_TEXTEQ,
							   CStringGetTextDatum(path));

		/*
		 * One scan of the index for every file: only its key changes.  It
		 * runs in a context that outlives the file's, since the index AM
		 * allocates some of its state as it goes (btree's killed items).
		 */
		filecxt = MemoryContextSwitchTo(rs->estate->es_query_cxt);

		if (st->pathscan == NULL)
			st->pathscan = index_beginscan(st->rel, st->pathidx, rs->snapshot, 1, 0);
		scan = st->pathscan;
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, st->old_slot))
		{
			MemoryContextSwitchTo(filecxt);
			match_old_row(rs, st, st->old_slot, n, values, nulls, kept);
			MemoryContextSwitchTo(rs->estate->es_query_cxt);
		}
		MemoryContextSwitchTo(filecxt);
	}
	ExecClearTuple(st->old_slot);

	for (int r = 0; r < n; r++)
		if (!kept[r])
			insert_row(rs, st, &values[r * natts], &nulls[r * natts]);
}

/* Reads one file and makes every table hold the rows it gives. */
void
kabsd_diff_file(RefreshState *rs, KabsdScan *analyzer, const KbEntry *e,
				ItemPointer files_tid, MemoryContext filecxt)
{
	KbFile	   *file = kabsd_scan_analyze_entry(analyzer, e);
	MemoryContext old;

	rs->files_read++;
	old = MemoryContextSwitchTo(filecxt);
	for (int t = 0; t < KT_COUNT; t++)
		if (table_holds_kind((KabsdTable) t, file->kind))
			diff_table(rs, &rs->t[t], e, file, e->relpath, files_tid);
	MemoryContextSwitchTo(old);
	MemoryContextReset(filecxt);
}

/* A path that is gone: every table loses its rows. */
void
kabsd_diff_gone(RefreshState *rs, const char *path, ItemPointer files_tid)
{
	KbText		product;
	KbKind		kind = kb_classify_path(path, &product);

	for (int t = 0; t < KT_COUNT; t++)
		if (table_holds_kind((KabsdTable) t, kind))
			diff_table(rs, &rs->t[t], NULL, NULL, path, files_tid);
}

/*
 * One link row (in old) resolved again: rewritten when its target_uid
 * differs.  copy is a slot of the links table's shape.
 */
static void
retarget_link(RefreshState *rs, SnapTable *st, TupleTableSlot *old,
			  TupleTableSlot *copy, Datum *values, bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(st->rel);
	int			k = st->target_att - 1;

	slot_getallattrs(old);
	memcpy(values, old->tts_values, sizeof(Datum) * desc->natts);
	memcpy(nulls, old->tts_isnull, sizeof(bool) * desc->natts);
	kabsd_targets_resolve(rs, st, values, nulls);
	if (nulls[k] == old->tts_isnull[k] &&
		(nulls[k] || value_equal(TupleDescAttr(desc, k), values[k],
								 old->tts_values[k])))
		return;
	/* the new row's values are the old row's: copy them first */
	ExecClearTuple(copy);
	memcpy(copy->tts_values, values, sizeof(Datum) * desc->natts);
	memcpy(copy->tts_isnull, nulls, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(copy);
	ExecMaterializeSlot(copy);
	delete_row(rs, st, old);
	insert_row(rs, st, copy->tts_values, copy->tts_isnull);
	ExecClearTuple(copy);
}

/*
 * When the targets of items and decisions changed, a link in a file that
 * did not change may resolve differently (what the leader wrote must be
 * flushed first).  After a refresh of a few files only the links that
 * could are checked, found by index; otherwise every link is, against
 * maps of the final tables.
 */
void
kabsd_diff_retarget_links(RefreshState *rs, MemoryContext rowcxt)
{
	SnapTable  *st = &rs->t[KT_LINKS];
	TupleDesc	desc = RelationGetDescr(st->rel);
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	TupleTableSlot *copy = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	ItemPointerData *tids;
	int			ntids;

	if (kabsd_targets_links_to_check(rs, &tids, &ntids))
	{
		for (int i = 0; i < ntids; i++)
		{
			MemoryContext oldcxt;

			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(rowcxt);
			if (table_tuple_fetch_row_version(st->rel, &tids[i], rs->snapshot,
											  st->old_slot))
				retarget_link(rs, st, st->old_slot, copy, values, nulls);
			ExecClearTuple(st->old_slot);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
	}
	else
	{
		TableScanDesc scan;

		kabsd_targets_final(rs);
		scan = table_beginscan(st->rel, rs->snapshot, 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, st->old_slot))
		{
			MemoryContext oldcxt;

			CHECK_FOR_INTERRUPTS();
			oldcxt = MemoryContextSwitchTo(rowcxt);
			retarget_link(rs, st, st->old_slot, copy, values, nulls);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
		table_endscan(scan);
		ExecClearTuple(st->old_slot);
	}
	ExecDropSingleTupleTableSlot(copy);
}
