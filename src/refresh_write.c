/*-------------------------------------------------------------------------
 *
 * refresh_write.c
 *		  The leader's writing: the snapshot's only writer.
 *
 * Rows are written with the table AM and the executor's index maintenance,
 * as logical replication writes a table, under the lock any row change
 * takes (RowExclusiveLock): readers go on reading the old rows until the
 * refresh commits, and a publication sends the rows that changed, nothing
 * else.  A table that is empty when the refresh begins (a first attach, a
 * table emptied or restored without data) is filled in batches, as COPY
 * fills one; its links are resolved once every other table is written.
 *
 * Two sinks for the diff: one writes each difference at once; the other,
 * for parallel mode (where nobody may write), keeps them until the workers
 * are done, then writes them, deletions first.
 *
 * src/refresh_write.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

/*
 * A table that was empty when the refresh began is filled in batches, as
 * COPY fills a table: a batch of rows goes into the heap at once, then
 * their index entries.  Flushed at BULK_ROWS rows or BULK_BYTES bytes.
 */
#define BULK_ROWS	1000
#define BULK_BYTES	((Size) 4 * 1024 * 1024)

static void
bulk_begin(RefreshState *rs, SnapTable *st)
{
	st->bulk = palloc(sizeof(TupleTableSlot *) * BULK_ROWS);
	for (int i = 0; i < BULK_ROWS; i++)
		st->bulk[i] = table_slot_create(st->rel, &rs->estate->es_tupleTable);
	st->bistate = GetBulkInsertState();

	/*
	 * A table this refresh made (a first attach, a table that was dropped)
	 * is filled as COPY FREEZE fills one: no other transaction can see it
	 * before this one commits, and if this one fails the table goes with
	 * it.  The rows go in frozen, on pages marked all-visible, so that no
	 * reader has to look their transaction up or set hint bits later.
	 */
	if (st->rel->rd_createSubid == GetCurrentSubTransactionId())
		st->insert_options = TABLE_INSERT_FROZEN;
}

static void
bulk_flush(RefreshState *rs, SnapTable *st)
{
	if (st->nbulk == 0)
		return;
	table_multi_insert(st->rel, st->bulk, st->nbulk, GetCurrentCommandId(true),
					   st->insert_options, st->bistate);
	for (int i = 0; i < st->nbulk; i++)
	{
		if (st->rri->ri_NumIndices > 0)
		{
			List	   *recheck = ExecInsertIndexTuples(st->rri, st->bulk[i],
														rs->estate, false,
														false, NULL, NIL);

			list_free(recheck);
			ResetPerTupleExprContext(rs->estate);
		}
		ExecClearTuple(st->bulk[i]);
	}
	st->inserted += st->nbulk;
	st->nbulk = 0;
	st->bulk_bytes = 0;
}

/* Everything batched goes in: before the tables are read again, and at the end. */
void
kabsd_write_flush(RefreshState *rs)
{
	for (int t = 0; t < KT_COUNT; t++)
		if (rs->t[t].bulk)
			bulk_flush(rs, &rs->t[t]);
}

/* Writes one row into a table, with its index entries. */
static void
write_row(RefreshState *rs, SnapTable *st, TupleTableSlot *slot)
{
	List	   *recheck;

	if (st->bulk)
	{
		TupleTableSlot *b = st->bulk[st->nbulk++];

		ExecCopySlot(b, slot);
		st->bulk_bytes += ExecFetchSlotHeapTuple(b, false, NULL)->t_len;
		if (st->nbulk == BULK_ROWS || st->bulk_bytes >= BULK_BYTES)
			bulk_flush(rs, st);
		return;
	}
	simple_table_tuple_insert(st->rel, slot);
	recheck = ExecInsertIndexTuples(st->rri, slot, rs->estate, false, false,
									NULL, NIL);
	list_free(recheck);
	ResetPerTupleExprContext(rs->estate);
	st->inserted++;
}

/* The sink that writes at once (the links of an empty table wait). */
static void
insert_now(RefreshState *rs, SnapTable *st, TupleTableSlot *slot)
{
	if (st->to_insert)
		tuplestore_puttupleslot(st->to_insert, slot);
	else
		write_row(rs, st, slot);
}

static void
delete_now(RefreshState *rs, SnapTable *st, ItemPointer tid)
{
	simple_table_tuple_delete(st->rel, tid, rs->snapshot);
	st->deleted++;
}

static const DiffSink write_now = {insert_now, delete_now};

/* The sink of parallel mode: every difference kept until it ends. */
static void
insert_kept(RefreshState *rs, SnapTable *st, TupleTableSlot *slot)
{
	tuplestore_puttupleslot(st->to_insert, slot);
}

static void
delete_kept(RefreshState *rs, SnapTable *st, ItemPointer tid)
{
	if (st->ndelete == st->maxdelete)
	{
		st->maxdelete = Max(1024, st->maxdelete * 2);
		st->to_delete = st->to_delete == NULL ?
			MemoryContextAllocExtended(rs->keep_cxt,
									   sizeof(ItemPointerData) * st->maxdelete,
									   MCXT_ALLOC_HUGE) :
			repalloc_huge(st->to_delete, sizeof(ItemPointerData) * st->maxdelete);
	}
	st->to_delete[st->ndelete++] = *tid;
}

static const DiffSink write_later = {insert_kept, delete_kept};

/*
 * The leader's tables made ready for writing, and the diff's differences
 * written at once.
 */
void
kabsd_write_begin(RefreshState *rs)
{
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];

		st->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(st->rri, st->rel, 1, NULL, 0);
		ExecOpenIndices(st->rri, false);
		/* a published table without a replica identity: say so before
		 * deleting, as the executor would */
		if (!st->empty)
			CheckCmdReplicaIdentity(st->rel, CMD_DELETE);
		else
			bulk_begin(rs, st);
	}
	if (rs->defer_links)
		rs->t[KT_LINKS].to_insert = tuplestore_begin_heap(false, false, work_mem);
	rs->sink = &write_now;
}

/* From here on, differences are kept in cxt, not written (parallel mode). */
void
kabsd_write_keep(RefreshState *rs, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	rs->sink = &write_later;
	rs->keep_cxt = cxt;
	for (int t = 0; t < KT_COUNT; t++)
		if (rs->t[t].to_insert == NULL)
			rs->t[t].to_insert = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);
}

/* Parallel mode is over: writes what was kept, deletions first. */
void
kabsd_write_kept(RefreshState *rs, MemoryContext rowcxt)
{
	rs->sink = &write_now;
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];

		for (int64 i = 0; i < st->ndelete; i++)
		{
			CHECK_FOR_INTERRUPTS();
			delete_now(rs, st, &st->to_delete[i]);
		}
		st->ndelete = 0;
	}
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];
		MemoryContext old;

		if (t == KT_LINKS && rs->defer_links)
			continue;			/* kabsd_write_deferred_links() writes them */
		old = MemoryContextSwitchTo(rowcxt);
		while (tuplestore_gettupleslot(st->to_insert, true, false, st->min_slot))
		{
			CHECK_FOR_INTERRUPTS();
			write_row(rs, st, st->min_slot);
			/* a row read back from disk is in rowcxt: the slot lets go first */
			ExecClearTuple(st->min_slot);
			MemoryContextReset(rowcxt);
		}
		MemoryContextSwitchTo(old);
		ExecClearTuple(st->min_slot);
		tuplestore_end(st->to_insert);
		st->to_insert = NULL;
	}
}

/*
 * The links of a table that was empty, kept until every other table was
 * written: each is resolved once, against the final targets.  Returns
 * whether there were any.
 */
bool
kabsd_write_deferred_links(RefreshState *rs, MemoryContext rowcxt)
{
	SnapTable  *st = &rs->t[KT_LINKS];
	int			natts = RelationGetDescr(st->rel)->natts;
	MemoryContext old;

	if (st->to_insert == NULL)
		return false;
	if (tuplestore_tuple_count(st->to_insert) == 0)
	{
		tuplestore_end(st->to_insert);
		st->to_insert = NULL;
		return false;
	}
	kabsd_write_flush(rs);
	kabsd_targets_final(rs);
	old = MemoryContextSwitchTo(rowcxt);
	while (tuplestore_gettupleslot(st->to_insert, true, false, st->min_slot))
	{
		TupleTableSlot *slot = st->new_slot;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(st->min_slot);
		ExecClearTuple(slot);
		memcpy(slot->tts_values, st->min_slot->tts_values, sizeof(Datum) * natts);
		memcpy(slot->tts_isnull, st->min_slot->tts_isnull, sizeof(bool) * natts);
		kabsd_targets_resolve(rs, st, slot->tts_values, slot->tts_isnull);
		ExecStoreVirtualTuple(slot);
		write_row(rs, st, slot);
		/* a row read back from disk is in rowcxt: the slots let go first */
		ExecClearTuple(slot);
		ExecClearTuple(st->min_slot);
		MemoryContextReset(rowcxt);
	}
	MemoryContextSwitchTo(old);
	tuplestore_end(st->to_insert);
	st->to_insert = NULL;
	bulk_flush(rs, st);
	return true;
}

void
kabsd_write_end(RefreshState *rs)
{
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];

		if (st->rri)
			ExecCloseIndices(st->rri);
		if (st->bistate)
			FreeBulkInsertState(st->bistate);
	}
}
