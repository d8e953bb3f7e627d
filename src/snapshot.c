/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *		  The refresh of a snapshot: one walk that stats every file, reads
 *		  and parses only the files whose stamp changed since the last
 *		  refresh (or every file, when asked for a full refresh), and writes
 *		  into the snapshot tables only the rows that differ from theirs:
 *		  the work follows what changed, not the size of the backlog.
 *
 * This is the snapshot's only writer.  Rows are written with the table AM
 * and the executor's index maintenance, as logical replication writes a
 * table, under the lock any row change takes (RowExclusiveLock): readers
 * go on reading the old rows until the refresh commits, and a publication
 * sends the rows that changed, nothing else.  A table that is empty when
 * the refresh begins (a first attach, a table emptied or restored without
 * data) is filled by the same code, which then looks nothing up and writes
 * in batches; its links are resolved once every other table is written.
 *
 * Which paths the snapshot holds comes from its files table, so a stamp
 * that was lost can only cost parsing, never leave rows behind.
 *
 * The walk comes first and decides which files to read; reading, parsing
 * and comparing them is shared with parallel workers when there are many
 * (parallel.c).  No participant may write in parallel mode, so then the
 * differences are kept and written once the workers are done.
 *
 * src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "snapshot.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(kabsd_snapshot_apply);

/* ---------------------------------------------------------------------
 * The paths the last refresh knew: from the files table and the stamps.
 * ---------------------------------------------------------------------
 */
typedef struct KnownPath
{
	char	   *path;			/* the key */
	uint32		hash;
	char		status;
	bool		in_snapshot;	/* the files table has its row */
	bool		has_stamp;
	bool		seen;			/* walked by this refresh */
	int64		stamp;
	ItemPointerData stamp_tid;
	ItemPointerData files_tid;	/* its row in the files table */
} KnownPath;

#define SH_PREFIX known
#define SH_ELEMENT_TYPE KnownPath
#define SH_KEY_TYPE char *
#define SH_KEY path
#define SH_HASH_KEY(tb, key) hash_bytes((const unsigned char *) (key), strlen(key))
#define SH_EQUAL(tb, a, b) (strcmp(a, b) == 0)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

/* A stamp written in parallel mode's stead, once it is over. */
typedef struct StampDue
{
	KnownPath  *k;
	char	   *path;
	int64		stamp;
} StampDue;

static void put_stamp(Apply *a, KnownPath *k, const char *path, int64 stamp);

/* ---------------------------------------------------------------------
 * What links.target_uid resolves against: (product, id) of items and
 * decisions for typed links, (product, id or file name without .md) for
 * wikilinks.  A key that two paths claim resolves to NULL.
 * ---------------------------------------------------------------------
 */
typedef struct TargetKey
{
	const char *product;		/* not NUL-terminated: with their lengths */
	const char *key;
	uint32		product_len;
	uint32		key_len;
	bool		by_name;		/* the wikilink map */
} TargetKey;

typedef struct Target
{
	TargetKey	k;
	uint32		hash;
	char		status;
	const char *path;			/* the first path that claimed the key */
	bool		has_uid;
	bool		ambiguous;
	pg_uuid_t	uid;
} Target;

static inline uint32
target_key_hash(TargetKey k)
{
	uint32		h = hash_bytes((const unsigned char *) k.product, k.product_len);

	h = hash_combine(h, hash_bytes((const unsigned char *) k.key, k.key_len));
	return hash_combine(h, k.by_name ? 1 : 0);
}

static inline bool
target_key_equal(TargetKey a, TargetKey b)
{
	return a.by_name == b.by_name &&
		a.product_len == b.product_len && a.key_len == b.key_len &&
		memcmp(a.product, b.product, a.product_len) == 0 &&
		memcmp(a.key, b.key, a.key_len) == 0;
}

#define SH_PREFIX targets
#define SH_ELEMENT_TYPE Target
#define SH_KEY_TYPE TargetKey
#define SH_KEY k
#define SH_HASH_KEY(tb, key) target_key_hash(key)
#define SH_EQUAL(tb, a, b) target_key_equal(a, b)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

static AttrNumber
attnum_of(const SnapView *v, const char *name)
{
	const KabsdTableDef *def = &kabsd_tables[v->table];

	for (int i = 0; i < v->binding->natts; i++)
	{
		int			c = v->binding->cols[i].colid;

		if (c >= 0 && strcmp(def->cols[c].name, name) == 0)
			return i + 1;
		if (c == KABSD_COL_DERIVED && strcmp(name, "target_uid") == 0)
			return i + 1;
	}
	return 0;
}

/*
 * A table that was empty when the refresh began is filled in batches, as
 * COPY fills a table: a batch of rows goes into the heap at once, then
 * their index entries.  Flushed at BULK_ROWS rows or BULK_BYTES bytes.
 */
#define BULK_ROWS	1000
#define BULK_BYTES	((Size) 4 * 1024 * 1024)

static void
bulk_begin(Apply *a, SnapView *v)
{
	v->bulk = palloc(sizeof(TupleTableSlot *) * BULK_ROWS);
	for (int i = 0; i < BULK_ROWS; i++)
		v->bulk[i] = table_slot_create(v->rel, &a->estate->es_tupleTable);
	v->bistate = GetBulkInsertState();

	/*
	 * A table this refresh made (a first attach, a table that was dropped)
	 * is filled as COPY FREEZE fills one: no other transaction can see it
	 * before this one commits, and if this one fails the table goes with
	 * it.  The rows go in frozen, on pages marked all-visible, so that no
	 * reader has to look their transaction up or set hint bits later.
	 */
	if (v->rel->rd_createSubid == GetCurrentSubTransactionId())
		v->insert_options = TABLE_INSERT_FROZEN;
}

static void
bulk_flush(Apply *a, SnapView *v)
{
	if (v->nbulk == 0)
		return;
	table_multi_insert(v->rel, v->bulk, v->nbulk, GetCurrentCommandId(true),
					   v->insert_options, v->bistate);
	for (int i = 0; i < v->nbulk; i++)
	{
		if (v->rri->ri_NumIndices > 0)
		{
			List	   *recheck = ExecInsertIndexTuples(v->rri, v->bulk[i],
														a->estate, false,
														false, NULL, NIL);

			list_free(recheck);
			ResetPerTupleExprContext(a->estate);
		}
		ExecClearTuple(v->bulk[i]);
	}
	v->inserted += v->nbulk;
	v->nbulk = 0;
	v->bulk_bytes = 0;
}

/* Everything batched goes in: before the tables are read again, and at the end. */
static void
bulk_flush_all(Apply *a)
{
	for (int t = 0; t < KT_COUNT; t++)
		if (a->v[t].bulk)
			bulk_flush(a, &a->v[t]);
}

/*
 * The unique btree index led by path that every snapshot table has (its
 * primary key).  A table that is empty needs none: there is nothing to look
 * up, and the first fill of a new table builds its indexes after the rows.
 */
static Relation
open_path_index(SnapView *v, LOCKMODE lockmode)
{
	List	   *indexes = RelationGetIndexList(v->rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), lockmode);

		if (idx->rd_rel->relam == BTREE_AM_OID && idx->rd_index->indisunique &&
			idx->rd_index->indisvalid &&
			idx->rd_index->indkey.values[0] == v->path_att &&
			RelationGetIndexPredicate(idx) == NIL)
			return idx;
		index_close(idx, lockmode);
	}
	if (v->empty)
		return NULL;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("snapshot table \"%s\" has no unique index on its path",
					RelationGetRelationName(v->rel)),
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
 * Opens one snapshot table: for writing in the leader, with the lock any
 * row change takes (readers go on reading); for reading in a worker, whose
 * lock group is the leader's.
 */
static void
open_view(Apply *a, SnapView *v, Oid relid, KabsdTable table, bool write)
{
	Relation	rel = table_open(relid, write ? RowExclusiveLock : AccessShareLock);

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
		rel->rd_rel->relnamespace != a->nspid)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a snapshot table of backlog \"%s\"",
						RelationGetRelationName(rel), a->backlog_name),
				 errdetail("Its table \"%s\" is \"%s.%s\".", kabsd_tables[table].name,
						   a->backlog_name, kabsd_tables[table].name)));
	v->table = table;
	v->rel = rel;
	v->binding = kabsd_bind_columns(rel, table);
	v->wanted = palloc(sizeof(bool) * Max(1, v->binding->natts));
	for (int i = 0; i < v->binding->natts; i++)
		v->wanted[i] = true;
	v->path_att = attnum_of(v, "path");
	v->ordinal_att = attnum_of(v, "ordinal");
	v->product_att = attnum_of(v, "product");
	v->id_att = attnum_of(v, "id");
	v->uid_att = attnum_of(v, "uid");
	v->error_att = attnum_of(v, "error");
	v->type_att = attnum_of(v, "type");
	v->target_id_att = attnum_of(v, "target_id");
	v->target_att = table == KT_LINKS ? attnum_of(v, "target_uid") : 0;
	if (v->path_att == 0 ||
		(table == KT_LINKS && (v->target_att == 0 || v->type_att == 0 ||
							   v->target_id_att == 0 || v->product_att == 0)) ||
		((table == KT_ITEMS || table == KT_DECISIONS) &&
		 (v->product_att == 0 || v->id_att == 0 || v->uid_att == 0)) ||
		(table == KT_FILES && v->error_att == 0) ||
		(table >= KT_LINKS && v->ordinal_att == 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("snapshot table \"%s\" lacks columns of backlog table \"%s\"",
						RelationGetRelationName(rel), kabsd_tables[table].name),
				 errhint("Detach and attach the backlog again to recreate its snapshot.")));
	v->old_slot = table_slot_create(rel, &a->estate->es_tupleTable);
	v->new_slot = ExecInitExtraTupleSlot(a->estate, RelationGetDescr(rel),
										 &TTSOpsVirtual);
	v->min_slot = ExecInitExtraTupleSlot(a->estate, RelationGetDescr(rel),
										 &TTSOpsMinimalTuple);
	/* every participant sees the same snapshot, so finds the same answer */
	v->empty = table_is_empty(rel, a->snapshot, v->old_slot);
	v->pathidx = open_path_index(v, write ? RowExclusiveLock : AccessShareLock);
	if (write)
	{
		v->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(v->rri, rel, 1, NULL, 0);
		ExecOpenIndices(v->rri, false);
		/* a published table without a replica identity: say so before
		 * deleting, as the executor would */
		if (!v->empty)
			CheckCmdReplicaIdentity(rel, CMD_DELETE);
		else
			bulk_begin(a, v);
	}
}

static void
end_path_scan(SnapView *v)
{
	if (v->pathscan)
		index_endscan(v->pathscan);
	v->pathscan = NULL;
}

static void
close_view(SnapView *v)
{
	end_path_scan(v);
	if (v->rri)
		ExecCloseIndices(v->rri);
	if (v->bistate)
		FreeBulkInsertState(v->bistate);
	if (v->pathidx)
		index_close(v->pathidx, NoLock);
	table_close(v->rel, NoLock);
}

/*
 * Sets up one participant: the leader (which writes, at once or after
 * parallel mode) or a worker (which only reads).
 */
void
kabsd_apply_begin(Apply *a, ApplyMode mode, const char *backlog,
				  const Oid *relids, Snapshot snapshot)
{
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->backlog_name = pstrdup(backlog);
	a->nspid = get_namespace_oid(backlog, false);
	a->estate = CreateExecutorState();
	a->snapshot = RegisterSnapshot(snapshot);
	for (int t = 0; t < KT_COUNT; t++)
		open_view(a, &a->v[t], relids[t], (KabsdTable) t, mode != APPLY_SEND);

	/*
	 * An empty links table is filled after every other table: its targets
	 * are then resolved once, against the final items and decisions, rather
	 * than against tables still filling and then again.
	 */
	a->defer_links = a->v[KT_LINKS].empty;
	if (a->defer_links && mode == APPLY_WRITE)
		a->v[KT_LINKS].to_insert = tuplestore_begin_heap(false, false, work_mem);
	/* not under a file's context: the maps outlive the file that first
	 * needs them */
	a->targets_cxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw link targets",
										   ALLOCSET_DEFAULT_SIZES);
}

void
kabsd_apply_end(Apply *a)
{
	for (int t = 0; t < KT_COUNT; t++)
		close_view(&a->v[t]);
	UnregisterSnapshot(a->snapshot);
	ExecResetTupleTable(a->estate->es_tupleTable, true);
	FreeExecutorState(a->estate);
	MemoryContextDelete(a->targets_cxt);
}

/* A text value as a C string in the current context; NULL for NULL. */
static char *
text_or_null(Datum d, bool isnull)
{
	return isnull ? NULL : TextDatumGetCString(d);
}

/* Is a text value the C string s? */
static bool
text_is(Datum d, const char *s)
{
	struct varlena *t = PG_DETOAST_DATUM_PACKED(d);
	size_t		len = strlen(s);
	bool		eq = VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;

	if ((Pointer) t != DatumGetPointer(d))
		pfree(t);
	return eq;
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
row_equal(const SnapView *v, TupleTableSlot *old, const Datum *values,
		  const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(v->rel);

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
 * A hash of what an item or decision row gives link targets.  Rows come
 * and go; the sum of these hashes over rows deleted and inserted is zero
 * unless some target changed.
 */
static uint64
target_hash(const SnapView *v, const Datum *values, const bool *nulls)
{
	AttrNumber	atts[3] = {v->path_att, v->product_att, v->id_att};
	uint64		h = 0;

	for (int i = 0; i < 3; i++)
	{
		int			k = atts[i] - 1;

		if (nulls[k])
			h = hash_bytes_uint32_extended(0x9e3779b9, h);
		else
		{
			struct varlena *t = PG_DETOAST_DATUM_PACKED(values[k]);

			h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(t),
									VARSIZE_ANY_EXHDR(t), h + 1);
		}
	}
	if (!nulls[v->uid_att - 1])
		h = hash_bytes_extended((const unsigned char *) DatumGetUUIDP(values[v->uid_att - 1]),
								UUID_LEN, h);
	return h;
}

/* The file name of a path or wikilink target, without a final ".md". */
static void
name_without_md(const char *s, uint32 len, const char **name, uint32 *name_len)
{
	const char *slash = memrchr(s, '/', len);

	*name = slash ? slash + 1 : s;
	*name_len = len - (uint32) (*name - s);
	if (*name_len >= 3 && memcmp(*name + *name_len - 3, ".md", 3) == 0)
		*name_len -= 3;
}

static void
claim_target(Apply *a, const char *product, const char *key, uint32 key_len,
			 bool by_name, const char *path, bool has_uid, const pg_uuid_t *uid)
{
	TargetKey	k = {product, key, strlen(product), key_len, by_name};
	bool		found;
	Target	   *t = targets_insert(a->targets, k, &found);

	if (!found)
	{
		t->path = path;
		t->has_uid = has_uid;
		t->ambiguous = false;
		if (has_uid)
			t->uid = *uid;
	}
	else if (strcmp(t->path, path) != 0)
		t->ambiguous = true;
}

/* (Re)builds the target maps from the items and decisions tables. */
static void
build_targets(Apply *a)
{
	MemoryContext old;
	double		rows = 0;

	/*
	 * Up to three keys a row (id, id by name, file name): the map is sized
	 * once from the tables' last row counts, not grown (and rehashed) step
	 * by step.  An estimate that is stale only costs growing past it.
	 */
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
		rows += Max(0, a->v[t].rel->rd_rel->reltuples);
	MemoryContextReset(a->targets_cxt);
	old = MemoryContextSwitchTo(a->targets_cxt);
	a->targets = targets_create(a->targets_cxt,
								(uint32) Min(Max(rows * 3, 1024), 1 << 22),
								NULL);
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
	{
		SnapView   *v = &a->v[t];
		TableScanDesc scan = table_beginscan(v->rel, a->snapshot, 0, NULL);
		TupleTableSlot *slot = v->old_slot;
		int			last = Max(Max(v->path_att, v->product_att),
							   Max(v->id_att, v->uid_att));

		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			char	   *product,
					   *id,
					   *path;
			const char *name;
			uint32		name_len;
			bool		has_uid;
			pg_uuid_t  *uid;

			CHECK_FOR_INTERRUPTS();
			slot_getsomeattrs(slot, last);
			product = text_or_null(slot->tts_values[v->product_att - 1],
								   slot->tts_isnull[v->product_att - 1]);
			if (product == NULL)
				continue;		/* a target is looked for in its product only */
			id = text_or_null(slot->tts_values[v->id_att - 1],
							  slot->tts_isnull[v->id_att - 1]);
			path = text_or_null(slot->tts_values[v->path_att - 1],
								slot->tts_isnull[v->path_att - 1]);
			if (path == NULL)
				continue;		/* no such row is written; keep off one */
			has_uid = !slot->tts_isnull[v->uid_att - 1];
			uid = has_uid ? DatumGetUUIDP(slot->tts_values[v->uid_att - 1]) : NULL;
			if (id)
			{
				claim_target(a, product, id, strlen(id), false, path, has_uid, uid);
				claim_target(a, product, id, strlen(id), true, path, has_uid, uid);
			}
			name_without_md(path, strlen(path), &name, &name_len);
			claim_target(a, product, name, name_len, true, path, has_uid, uid);
		}
		table_endscan(scan);
		ExecClearTuple(slot);
	}
	MemoryContextSwitchTo(old);
}

/* links.target_uid of a link row, from the target maps. */
static void
resolve_target(Apply *a, const SnapView *v, Datum *values, bool *nulls)
{
	int			k = v->target_att - 1;
	struct varlena *product,
			   *type,
			   *target;
	TargetKey	key;
	Target	   *t;

	values[k] = (Datum) 0;
	nulls[k] = true;
	if (nulls[v->product_att - 1] || nulls[v->type_att - 1] ||
		nulls[v->target_id_att - 1])
		return;
	if (a->targets == NULL)
		build_targets(a);
	/* the rows' own values, not copied: resolving allocates nothing */
	product = PG_DETOAST_DATUM_PACKED(values[v->product_att - 1]);
	type = PG_DETOAST_DATUM_PACKED(values[v->type_att - 1]);
	target = PG_DETOAST_DATUM_PACKED(values[v->target_id_att - 1]);
	key.product = VARDATA_ANY(product);
	key.product_len = VARSIZE_ANY_EXHDR(product);
	key.by_name = VARSIZE_ANY_EXHDR(type) == 8 &&
		memcmp(VARDATA_ANY(type), "wikilink", 8) == 0;
	if (key.by_name)
		name_without_md(VARDATA_ANY(target), VARSIZE_ANY_EXHDR(target),
						&key.key, &key.key_len);
	else
	{
		key.key = VARDATA_ANY(target);
		key.key_len = VARSIZE_ANY_EXHDR(target);
	}
	t = targets_lookup(a->targets, key);
	if (t && !t->ambiguous && t->has_uid)
	{
		pg_uuid_t  *uid = palloc(sizeof(pg_uuid_t));

		*uid = t->uid;
		values[k] = UUIDPGetDatum(uid);
		nulls[k] = false;
	}
}

/* Writes one row into a table, with its index entries. */
static void
write_row(Apply *a, SnapView *v, TupleTableSlot *slot)
{
	List	   *recheck;

	if (v->bulk)
	{
		TupleTableSlot *b = v->bulk[v->nbulk++];

		ExecCopySlot(b, slot);
		v->bulk_bytes += ExecFetchSlotHeapTuple(b, false, NULL)->t_len;
		if (v->nbulk == BULK_ROWS || v->bulk_bytes >= BULK_BYTES)
			bulk_flush(a, v);
		return;
	}
	simple_table_tuple_insert(v->rel, slot);
	recheck = ExecInsertIndexTuples(v->rri, slot, a->estate, false, false,
									NULL, NIL);
	list_free(recheck);
	ResetPerTupleExprContext(a->estate);
	v->inserted++;
}

static void
send_msg(Apply *a, const ApplyMsg *msg, const void *tuple, Size len)
{
	shm_mq_iovec iov[2];
	shm_mq_result res;

	iov[0].data = (const char *) msg;
	iov[0].len = MAXALIGN(sizeof(ApplyMsg));
	iov[1].data = tuple;
	iov[1].len = len;
	res = shm_mq_sendv(a->mqh, iov, tuple ? 2 : 1, false, false);
	/* the leader detached: it failed, and its error is the one reported */
	if (res != SHM_MQ_SUCCESS)
		elog(ERROR, "could not send changes to the refreshing backend");
}

/* A row the table must gain. */
static void
insert_row(Apply *a, SnapView *v, const Datum *values, const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(v->rel);

	if (v->table == KT_ITEMS || v->table == KT_DECISIONS)
		a->targets_sum += target_hash(v, values, nulls);
	else if (v->table == KT_FILES && !nulls[v->error_att - 1])
		a->errors_delta++;

	switch (a->mode)
	{
		case APPLY_WRITE:
			{
				TupleTableSlot *slot = v->new_slot;

				if (v->to_insert)
				{
					/* links of an empty table, written at the end */
					tuplestore_putvalues(v->to_insert, desc, (Datum *) values,
										 (bool *) nulls);
					break;
				}

				ExecClearTuple(slot);
				memcpy(slot->tts_values, values, sizeof(Datum) * desc->natts);
				memcpy(slot->tts_isnull, nulls, sizeof(bool) * desc->natts);
				ExecStoreVirtualTuple(slot);
				write_row(a, v, slot);
				break;
			}
		case APPLY_COLLECT:
			tuplestore_putvalues(v->to_insert, desc, (Datum *) values, (bool *) nulls);
			break;
		case APPLY_SEND:
			{
				MinimalTuple tup = heap_form_minimal_tuple(desc, (Datum *) values,
															   (bool *) nulls);
				ApplyMsg	msg = {'i', (uint8) v->table};

				send_msg(a, &msg, tup, tup->t_len);
				pfree(tup);
				break;
			}
	}
}

/* A row the table must lose. */
static void
delete_row(Apply *a, SnapView *v, TupleTableSlot *old)
{
	if (v->table == KT_ITEMS || v->table == KT_DECISIONS)
		a->targets_sum -= target_hash(v, old->tts_values, old->tts_isnull);
	else if (v->table == KT_FILES && !old->tts_isnull[v->error_att - 1])
		a->errors_delta--;

	switch (a->mode)
	{
		case APPLY_WRITE:
			simple_table_tuple_delete(v->rel, &old->tts_tid, a->snapshot);
			v->deleted++;
			break;
		case APPLY_COLLECT:
			kabsd_apply_collect_delete(a, v->table, &old->tts_tid);
			break;
		case APPLY_SEND:
			{
				ApplyMsg	msg = {'d', (uint8) v->table};

				msg.tid = old->tts_tid;
				send_msg(a, &msg, NULL, 0);
				break;
			}
	}
}

/* A row a worker found the table must gain, kept until parallel mode ends. */
void
kabsd_apply_collect_insert(Apply *a, KabsdTable t, MinimalTuple tup)
{
	SnapView   *v = &a->v[t];

	ExecStoreMinimalTuple(tup, v->min_slot, false);
	tuplestore_puttupleslot(v->to_insert, v->min_slot);
	ExecClearTuple(v->min_slot);
}

/* A row some participant found the table must lose, kept likewise. */
void
kabsd_apply_collect_delete(Apply *a, KabsdTable t, ItemPointer tid)
{
	SnapView   *v = &a->v[t];

	if (v->ndelete == v->maxdelete)
	{
		v->maxdelete = Max(1024, v->maxdelete * 2);
		v->to_delete = v->to_delete == NULL ?
			MemoryContextAllocExtended(a->collect_cxt,
									   sizeof(ItemPointerData) * v->maxdelete,
									   MCXT_ALLOC_HUGE) :
			repalloc_huge(v->to_delete, sizeof(ItemPointerData) * v->maxdelete);
	}
	v->to_delete[v->ndelete++] = *tid;
}

/* From here on, differences are kept, not written (parallel mode). */
void
kabsd_apply_collect_begin(Apply *a, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	a->mode = APPLY_COLLECT;
	a->collect_cxt = cxt;
	for (int t = 0; t < KT_COUNT; t++)
		if (a->v[t].to_insert == NULL)
			a->v[t].to_insert = tuplestore_begin_heap(false, false, work_mem);
	MemoryContextSwitchTo(old);
}

/* Parallel mode is over: writes what was kept, deletions first. */
static void
flush_collected(Apply *a, MemoryContext rowcxt)
{
	ListCell   *lc;

	a->mode = APPLY_WRITE;
	foreach(lc, a->stamps_due)
	{
		StampDue   *due = lfirst(lc);

		put_stamp(a, due->k, due->path, due->stamp);
	}
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapView   *v = &a->v[t];

		for (int64 i = 0; i < v->ndelete; i++)
		{
			CHECK_FOR_INTERRUPTS();
			simple_table_tuple_delete(v->rel, &v->to_delete[i], a->snapshot);
			v->deleted++;
		}
	}
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapView   *v = &a->v[t];
		MemoryContext old;

		if (t == KT_LINKS && a->defer_links)
			continue;			/* write_deferred_links() writes them */
		old = MemoryContextSwitchTo(rowcxt);
		while (tuplestore_gettupleslot(v->to_insert, true, false, v->min_slot))
		{
			CHECK_FOR_INTERRUPTS();
			write_row(a, v, v->min_slot);
			/* a row read back from disk is in rowcxt: the slot lets go first */
			ExecClearTuple(v->min_slot);
			MemoryContextReset(rowcxt);
		}
		MemoryContextSwitchTo(old);
		ExecClearTuple(v->min_slot);
		tuplestore_end(v->to_insert);
		v->to_insert = NULL;
	}
}

/*
 * Can a path of this kind have rows in this view?  The data model gives
 * items, links, worklog and checklist rows to item files, decisions rows
 * to decision files, sections rows to both, and a files row to every
 * file; a path's kind follows from the path alone.  So a table that cannot
 * hold rows of a path is not even looked at: a third of the lookups of a
 * full refresh.
 */
static bool
view_holds_kind(KabsdTable table, KbKind kind)
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
match_old_row(Apply *a, SnapView *v, TupleTableSlot *old, int n,
			  const Datum *values, const bool *nulls, bool *kept)
{
	int			natts = v->binding->natts;
	int			r = 0;

	slot_getallattrs(old);
	if (v->ordinal_att)
		r = old->tts_isnull[v->ordinal_att - 1] ? -1 :
			DatumGetInt32(old->tts_values[v->ordinal_att - 1]) - 1;
	if (r >= 0 && r < n && !kept[r] &&
		row_equal(v, old, &values[r * natts], &nulls[r * natts]))
		kept[r] = true;
	else
		delete_row(a, v, old);
}

/*
 * Makes the rows of one path in one table those the file gives (none when
 * file is NULL: the file is gone).  Rows that are already right stay
 * untouched.  files_tid is the path's row in the files table, invalid when
 * it has none.
 */
static void
apply_view(Apply *a, SnapView *v, const KbEntry *entry, const KbFile *file,
		   const char *path, ItemPointer files_tid)
{
	int			natts = v->binding->natts;
	int			n = file ? kabsd_file_rows(v->table, file) : 0;
	Datum	   *values = palloc(sizeof(Datum) * natts * Max(1, n));
	bool	   *nulls = palloc(sizeof(bool) * natts * Max(1, n));
	bool	   *kept = palloc0(sizeof(bool) * Max(1, n));
	ScanKeyData key;
	IndexScanDesc scan;

	for (int r = 0; r < n; r++)
	{
		kabsd_fill_row(v->binding, v->wanted, entry, file, r,
					   &values[r * natts], &nulls[r * natts]);
		if (v->target_att && !a->defer_links)
			resolve_target(a, v, &values[r * natts], &nulls[r * natts]);
	}

	if (v->empty)
	{
		/* a table empty when the refresh began holds no row of the path */
	}
	else if (v->table == KT_FILES)
	{
		/* the files view's row of a path was found when the refresh began */
		if (ItemPointerIsValid(files_tid) &&
			table_tuple_fetch_row_version(v->rel, files_tid, a->snapshot,
										  v->old_slot))
			match_old_row(a, v, v->old_slot, n, values, nulls, kept);
	}
	else
	{
		MemoryContext filecxt;

		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   v->pathidx->rd_indcollation[0], F_TEXTEQ,
							   CStringGetTextDatum(path));

		/*
		 * One scan of the index for every file: only its key changes.  It
		 * runs in a context that outlives the file's, since the index AM
		 * allocates some of its state as it goes (btree's killed items).
		 */
		filecxt = MemoryContextSwitchTo(a->estate->es_query_cxt);

		if (v->pathscan == NULL)
			v->pathscan = index_beginscan(v->rel, v->pathidx, a->snapshot, 1, 0);
		scan = v->pathscan;
		index_rescan(scan, &key, 1, NULL, 0);
		while (index_getnext_slot(scan, ForwardScanDirection, v->old_slot))
		{
			MemoryContextSwitchTo(filecxt);
			match_old_row(a, v, v->old_slot, n, values, nulls, kept);
			MemoryContextSwitchTo(a->estate->es_query_cxt);
		}
		MemoryContextSwitchTo(filecxt);
	}
	ExecClearTuple(v->old_slot);

	for (int r = 0; r < n; r++)
		if (!kept[r])
			insert_row(a, v, &values[r * natts], &nulls[r * natts]);
}

/*
 * Replaces the stamp of a path (k, when known) with stamp; path NULL
 * deletes it.  In parallel mode nothing may be written: it is kept.
 */
static void
put_stamp(Apply *a, KnownPath *k, const char *path, int64 stamp)
{
	TupleTableSlot *slot = a->stamp_slot;
	text	   *text_path;

	if (a->mode == APPLY_COLLECT)
	{
		MemoryContext old = MemoryContextSwitchTo(a->collect_cxt);
		StampDue   *due = palloc(sizeof(StampDue));

		due->k = k;
		due->path = path ? pstrdup(path) : NULL;
		due->stamp = stamp;
		a->stamps_due = lappend(a->stamps_due, due);
		MemoryContextSwitchTo(old);
		return;
	}
	if (k && k->has_stamp)
		simple_table_tuple_delete(a->stamps, &k->stamp_tid, a->snapshot);
	if (path == NULL)
		return;
	text_path = cstring_to_text(path);
	ExecClearTuple(slot);
	slot->tts_values[0] = a->backlog;
	slot->tts_isnull[0] = false;
	slot->tts_values[1] = PointerGetDatum(text_path);
	slot->tts_isnull[1] = false;
	slot->tts_values[2] = Int64GetDatum(stamp);
	slot->tts_isnull[2] = false;
	ExecStoreVirtualTuple(slot);
	simple_table_tuple_insert(a->stamps, slot);
	/* the walk stamps every changed file: nothing of it may pile up (the
	 * slot holds its own copy once the row is written) */
	ExecClearTuple(slot);
	pfree(text_path);
}

/*
 * Reads the paths of the files table, and the stamps of this backlog, into
 * a->known.
 */
static void
load_known(Apply *a, MemoryContext cxt)
{
	SnapView   *files = &a->v[KT_FILES];
	TableScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext old = MemoryContextSwitchTo(cxt);

	a->known = known_create(cxt, 1024, NULL);
	scan = table_beginscan(files->rel, a->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, files->old_slot))
	{
		bool		found;
		KnownPath  *k;

		CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(files->old_slot, files->path_att);
		if (files->old_slot->tts_isnull[files->path_att - 1])
			continue;
		k = known_insert(a->known,
						 TextDatumGetCString(files->old_slot->tts_values[files->path_att - 1]),
						 &found);
		if (!found)
			a->known_bytes += kabsd_worklist_entry_size(strlen(k->path));
		k->files_tid = files->old_slot->tts_tid;
		if (!found)
		{
			k->has_stamp = false;
			k->seen = false;
		}
		k->in_snapshot = true;
	}
	table_endscan(scan);
	ExecClearTuple(files->old_slot);

	slot = table_slot_create(a->stamps, NULL);
	scan = table_beginscan(a->stamps, a->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		found;
		KnownPath  *k;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (slot->tts_isnull[0] || slot->tts_isnull[1] ||
			!text_is(slot->tts_values[0], a->backlog_name))
			continue;			/* another backlog's */
		k = known_insert(a->known, TextDatumGetCString(slot->tts_values[1]), &found);
		if (!found)
		{
			k->in_snapshot = false;
			k->seen = false;
			a->known_bytes += kabsd_worklist_entry_size(strlen(k->path));
		}
		else if (k->has_stamp)
		{
			/* a path stamped twice: drop the extra, and parse the file */
			simple_table_tuple_delete(a->stamps, &slot->tts_tid, a->snapshot);
			k->stamp = 0;
			continue;
		}
		k->has_stamp = true;
		k->stamp = slot->tts_isnull[2] ? 0 : DatumGetInt64(slot->tts_values[2]);
		k->stamp_tid = slot->tts_tid;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(old);
}

/* Reads one file and makes every table hold the rows it gives. */
void
kabsd_apply_file(Apply *a, KabsdScan *analyzer, const KbEntry *e,
				 ItemPointer files_tid, MemoryContext filecxt)
{
	KbFile	   *file = kabsd_scan_analyze_entry(analyzer, e);
	MemoryContext old;

	a->files_read++;
	old = MemoryContextSwitchTo(filecxt);
	for (int t = 0; t < KT_COUNT; t++)
		if (view_holds_kind((KabsdTable) t, file->kind))
			apply_view(a, &a->v[t], e, file, e->relpath, files_tid);
	MemoryContextSwitchTo(old);
	MemoryContextReset(filecxt);
}

/*
 * One file walked: its stamp is brought up to date.  Returns whether it
 * must be read: its stamp changed, or the refresh is a full one.
 */
static bool
walk_entry(Apply *a, const KbEntry *entry, int64 stamp, bool full,
		   ItemPointer files_tid)
{
	KnownPath  *k = known_lookup(a->known, (char *) entry->relpath);
	bool		same_stamp = false;

	ItemPointerSetInvalid(files_tid);
	if (k && k->in_snapshot)
		*files_tid = k->files_tid;
	if (k)
	{
		if (k->seen)
			return false;		/* the walk never yields a path twice */
		k->seen = true;
		same_stamp = k->in_snapshot && k->has_stamp && k->stamp == stamp;
		if (same_stamp && !full)
			return false;
	}
	if (!same_stamp)
		put_stamp(a, k, entry->relpath, stamp);
	return true;
}

/* ---------------------------------------------------------------------
 * The list of files to read: one serialized entry each, so that it can be
 * copied as it is into shared memory for parallel workers.
 * ---------------------------------------------------------------------
 */
typedef struct WorkEntry
{
	int64		size;
	int64		mtime_sec;
	int64		ctime_sec;
	uint64		dev;
	uint64		ino;
	int32		mtime_nsec;
	int32		ctime_nsec;
	uint32		relpath_len;
	uint32		openpath_len;	/* 0: root/relpath */
	uint32		error_len;
	bool		has_error;
	ItemPointerData files_tid;
	/* then relpath, openpath and error, each NUL-terminated */
} WorkEntry;

/* Room for one more entry of more bytes; false when a fixed list is full. */
static bool
worklist_reserve(WorkList *wl, Size more)
{
	if (wl->cxt == NULL)
		return wl->len + more <= wl->cap && wl->n < wl->cap_n;
	if (wl->len + more > wl->cap)
	{
		Size		cap = Max(wl->cap * 2, wl->len + more + 8192);

		wl->data = wl->data == NULL ?
			MemoryContextAllocExtended(wl->cxt, cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(wl->data, cap);
		wl->cap = cap;
	}
	if (wl->n == wl->cap_n)
	{
		wl->cap_n = Max(1024, wl->cap_n * 2);
		wl->offsets = wl->offsets == NULL ?
			MemoryContextAllocExtended(wl->cxt, sizeof(Size) * wl->cap_n,
									   MCXT_ALLOC_HUGE) :
			repalloc_huge(wl->offsets, sizeof(Size) * wl->cap_n);
	}
	return true;
}

/* The bytes an entry of a plain file takes (no link target, no error). */
Size
kabsd_worklist_entry_size(Size relpath_len)
{
	return MAXALIGN(sizeof(WorkEntry) + relpath_len + 2);
}

/* Lists an entry; false when a fixed list has no room left for it. */
bool
kabsd_worklist_add(WorkList *wl, const KbEntry *e, ItemPointer files_tid)
{
	WorkEntry	w;
	bool		plain = e->relpath_len + e->root_len + 1 == strlen(e->openpath) &&
		strncmp(e->openpath, e->root, e->root_len) == 0 &&
		e->openpath[e->root_len] == '/' &&
		strcmp(e->openpath + e->root_len + 1, e->relpath) == 0;
	Size		need;
	char	   *p;

	if (wl->root == NULL)
		wl->root = MemoryContextStrdup(wl->cxt ? wl->cxt : CurrentMemoryContext,
									   e->root);
	Assert(strcmp(wl->root, e->root) == 0);
	memset(&w, 0, sizeof(w));
	w.size = e->size;
	w.mtime_sec = e->mtime_sec;
	w.mtime_nsec = e->mtime_nsec;
	w.ctime_sec = e->ctime_sec;
	w.ctime_nsec = e->ctime_nsec;
	w.dev = e->dev;
	w.ino = e->ino;
	w.relpath_len = e->relpath_len;
	w.openpath_len = plain ? 0 : strlen(e->openpath);
	w.has_error = e->error != NULL;
	w.files_tid = *files_tid;
	w.error_len = e->error ? strlen(e->error) : 0;
	need = MAXALIGN(sizeof(WorkEntry) + w.relpath_len + 1 +
					(plain ? 0 : w.openpath_len + 1) + w.error_len + 1);
	if (!worklist_reserve(wl, need))
		return false;
	wl->offsets[wl->n++] = wl->len;
	p = wl->data + wl->len;
	memcpy(p, &w, sizeof(w));
	p += sizeof(w);
	memcpy(p, e->relpath, w.relpath_len + 1);
	p += w.relpath_len + 1;
	if (!plain)
	{
		memcpy(p, e->openpath, w.openpath_len + 1);
		p += w.openpath_len + 1;
	}
	if (e->error)
		memcpy(p, e->error, w.error_len + 1);
	wl->len += need;
	return true;
}

/*
 * The entry serialized at data, for a walk of root.  Its strings point
 * into data, or into pathbuf when the file is opened as root/relpath.
 */
void
kabsd_worklist_entry(const char *data, const char *root, StringInfo pathbuf,
					 KbEntry *e, ItemPointer files_tid)
{
	WorkEntry	w;
	const char *p = data + sizeof(WorkEntry);

	memcpy(&w, data, sizeof(w));
	memset(e, 0, sizeof(*e));
	e->root = root;
	e->root_len = strlen(root);
	e->relpath = p;
	e->relpath_len = w.relpath_len;
	p += w.relpath_len + 1;
	if (w.openpath_len == 0)
	{
		resetStringInfo(pathbuf);
		appendStringInfo(pathbuf, "%s/%s", root, e->relpath);
		e->openpath = pathbuf->data;
	}
	else
	{
		e->openpath = p;
		p += w.openpath_len + 1;
	}
	e->error = w.has_error ? p : NULL;
	e->size = w.size;
	e->mtime_sec = w.mtime_sec;
	e->mtime_nsec = w.mtime_nsec;
	e->ctime_sec = w.ctime_sec;
	e->ctime_nsec = w.ctime_nsec;
	e->dev = w.dev;
	e->ino = w.ino;
	*files_tid = w.files_tid;
}

/* After the walk: the rows and stamps of every path that is gone. */
static void
apply_gone(Apply *a, MemoryContext filecxt)
{
	known_iterator it;
	KnownPath  *k;

	known_start_iterate(a->known, &it);
	while ((k = known_iterate(a->known, &it)) != NULL)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (k->seen)
			continue;
		old = MemoryContextSwitchTo(filecxt);
		if (k->in_snapshot)
		{
			KbText		product;
			KbKind		kind = kb_classify_path(k->path, &product);

			for (int t = 0; t < KT_COUNT; t++)
				if (view_holds_kind((KabsdTable) t, kind))
					apply_view(a, &a->v[t], NULL, NULL, k->path, &k->files_tid);
		}
		if (k->has_stamp)
			put_stamp(a, k, NULL, 0);
		MemoryContextSwitchTo(old);
		MemoryContextReset(filecxt);
	}
}

/* The target maps from the items and decisions as this refresh left them. */
static void
build_final_targets(Apply *a)
{
	bulk_flush_all(a);
	CommandCounterIncrement();
	UnregisterSnapshot(a->snapshot);
	a->snapshot = RegisterSnapshot(GetLatestSnapshot());
	build_targets(a);
}

/*
 * The links of a table that was empty, kept until every other table was
 * written: each is resolved once, against the final targets.
 */
static void
write_deferred_links(Apply *a, MemoryContext rowcxt)
{
	SnapView   *v = &a->v[KT_LINKS];
	int			natts = RelationGetDescr(v->rel)->natts;
	MemoryContext old;

	build_final_targets(a);
	old = MemoryContextSwitchTo(rowcxt);
	while (tuplestore_gettupleslot(v->to_insert, true, false, v->min_slot))
	{
		TupleTableSlot *slot = v->new_slot;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(v->min_slot);
		ExecClearTuple(slot);
		memcpy(slot->tts_values, v->min_slot->tts_values, sizeof(Datum) * natts);
		memcpy(slot->tts_isnull, v->min_slot->tts_isnull, sizeof(bool) * natts);
		resolve_target(a, v, slot->tts_values, slot->tts_isnull);
		ExecStoreVirtualTuple(slot);
		write_row(a, v, slot);
		/* a row read back from disk is in rowcxt: the slots let go first */
		ExecClearTuple(slot);
		ExecClearTuple(v->min_slot);
		MemoryContextReset(rowcxt);
	}
	MemoryContextSwitchTo(old);
	tuplestore_end(v->to_insert);
	v->to_insert = NULL;
	bulk_flush(a, v);
}

/*
 * When the targets of items and decisions changed, a link in a file that
 * did not change may resolve differently: every link is checked.
 */
static void
retarget_links(Apply *a, MemoryContext rowcxt)
{
	SnapView   *v = &a->v[KT_LINKS];
	TupleDesc	desc = RelationGetDescr(v->rel);
	TableScanDesc scan;
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	TupleTableSlot *copy = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);

	build_final_targets(a);

	scan = table_beginscan(v->rel, a->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, v->old_slot))
	{
		TupleTableSlot *old = v->old_slot;
		MemoryContext oldcxt;
		int			k = v->target_att - 1;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(rowcxt);
		slot_getallattrs(old);
		memcpy(values, old->tts_values, sizeof(Datum) * desc->natts);
		memcpy(nulls, old->tts_isnull, sizeof(bool) * desc->natts);
		resolve_target(a, v, values, nulls);
		if (nulls[k] != old->tts_isnull[k] ||
			(!nulls[k] && !value_equal(TupleDescAttr(desc, k), values[k],
									   old->tts_values[k])))
		{
			/* the new row's values are the old row's: copy them first */
			ExecClearTuple(copy);
			memcpy(copy->tts_values, values, sizeof(Datum) * desc->natts);
			memcpy(copy->tts_isnull, nulls, sizeof(bool) * desc->natts);
			ExecStoreVirtualTuple(copy);
			ExecMaterializeSlot(copy);
			delete_row(a, v, old);
			insert_row(a, v, copy->tts_values, copy->tts_isnull);
			ExecClearTuple(copy);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	ExecClearTuple(v->old_slot);
	ExecDropSingleTupleTableSlot(copy);
}

/*
 * kabsd_snapshot_apply(server, tables regclass[7], full): refreshes the
 * snapshot of a backlog (its seven tables, in the order files, items,
 * decisions, links, worklog, sections, checklist).  full parses every
 * file, not only those whose stamp changed.  Returns the rows inserted and
 * deleted in each table, the change in the number of files with an error,
 * the number of files read, the fingerprint of the tree and the number of
 * parallel workers that shared the reading.
 */
Datum
kabsd_snapshot_apply(PG_FUNCTION_ARGS)
{
	ArrayType  *tables = PG_GETARG_ARRAYTYPE_P(1);
	bool		full = PG_GETARG_BOOL(2);
	KabsdOptions opts;
	Apply		a;
	Datum	   *relids;
	Oid			oids[KT_COUNT];
	KabsdScan  *scan;
	KbEntry    *entry;
	WorkList	wl;
	MemoryContext filecxt;
	TupleDesc	resdesc;
	Datum		result[6];
	bool		resnull[6] = {false, false, false, false, false, false};
	Datum		ins[KT_COUNT],
				del[KT_COUNT];
	uint64		salt,
				h;
	int64		nfiles = 0;
	int			nworkers;
	int			workers = 0;
	bool		stream;
	bool		all_empty;
	ParallelApply *pa = NULL;
	ItemPointerData files_tid;

	if (PG_NARGS() != 3)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL objects of kabsd_fdw are older than its library"),
				 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kabsd_server_options(PG_GETARG_NAME(0), &opts);
	relids = kabsd_seven_relations(tables);
	for (int t = 0; t < KT_COUNT; t++)
		oids[t] = DatumGetObjectId(relids[t]);

	kabsd_apply_begin(&a, APPLY_WRITE, NameStr(*PG_GETARG_NAME(0)), oids,
					  GetLatestSnapshot());
	a.backlog = CStringGetTextDatum(a.backlog_name);
	a.stamps = kabsd_open_stamps();
	a.stamp_slot = ExecInitExtraTupleSlot(a.estate, RelationGetDescr(a.stamps),
										  &TTSOpsVirtual);
	filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw apply file",
									ALLOCSET_DEFAULT_SIZES);
	load_known(&a, CurrentMemoryContext);

	/*
	 * The walk: stamps brought up to date, the files to read listed.  A
	 * full refresh of many files starts its workers first, so that they
	 * read while the walk goes on; otherwise the walk tells how many files
	 * are to be read, and whether workers are worth it.
	 */
	memset(&wl, 0, sizeof(wl));
	wl.cxt = CurrentMemoryContext;
	nworkers = max_parallel_maintenance_workers;

	/*
	 * A first fill of tables without indexes (an attach) writes every row
	 * it reads, cheaply, and only this backend may write: workers would
	 * only make it keep every row until they are done, then write them all
	 * (measured slower, 47 s against 40 s at 100,000 items).  It reads
	 * alone.  With indexes to keep row by row, the writing dominates less
	 * and the workers stay.
	 */
	all_empty = true;
	for (int t = 0; t < KT_COUNT; t++)
		all_empty &= a.v[t].empty && a.v[t].rri->ri_NumIndices == 0;
	if (all_empty)
		nworkers = 0;
	stream = full && nworkers > 0 &&
		a.known->members >= (uint64) Max(1, kabsd_min_parallel_refresh_files);
	if (stream)
		kabsd_apply_collect_begin(&a, CurrentMemoryContext);
	salt = h = kabsd_fingerprint_start(&opts);
	/* the walk only lists (need 0): the files are read from the list */
	scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL, NULL,
							0, CurrentMemoryContext);
	while (kabsd_scan_next_entry(scan, &entry))
	{
		h = kabsd_fingerprint_entry(h, entry);
		nfiles++;
		if (!walk_entry(&a, entry, kabsd_file_stamp(salt, entry), full, &files_tid))
			continue;
		if (!stream)
			kabsd_worklist_add(&wl, entry, &files_tid);
		else
		{
			/* room for a tenth more files than the snapshot knows */
			if (pa == NULL)
				pa = kabsd_parallel_begin(&a, oids, &opts, entry->root,
										  a.known->members * 11 / 10 + 1024,
										  a.known_bytes * 11 / 10 +
										  1024 * kabsd_worklist_entry_size(MAXPGPATH),
										  nworkers);
			kabsd_parallel_add(pa, &a, entry, &files_tid);
		}
	}
	kabsd_scan_end(scan);

	/* the files read, by this backend alone or with parallel workers */
	if (wl.n > 0)
	{
		KabsdScan  *analyzer = NULL;
		StringInfoData pathbuf;
		KbEntry		e;

		if (wl.n >= Max(1, kabsd_min_parallel_refresh_files) && nworkers > 0)
		{
			kabsd_apply_collect_begin(&a, CurrentMemoryContext);
			pa = kabsd_parallel_begin(&a, oids, &opts, wl.root, wl.n, wl.len,
									  nworkers);
		}
		else
			analyzer = kabsd_analyzer_begin(wl.root, opts.max_file_size,
											KABSD_ALL_NEEDS, CurrentMemoryContext);
		initStringInfo(&pathbuf);
		for (int64 i = 0; i < wl.n; i++)
		{
			kabsd_worklist_entry(wl.data + wl.offsets[i], wl.root, &pathbuf, &e,
								 &files_tid);
			if (pa)
				kabsd_parallel_add(pa, &a, &e, &files_tid);
			else
				kabsd_apply_file(&a, analyzer, &e, &files_tid, filecxt);
		}
		if (analyzer)
			kabsd_scan_end(analyzer);
	}
	if (pa)
		workers = kabsd_parallel_finish(pa, &a);
	if (a.mode == APPLY_COLLECT)
		flush_collected(&a, filecxt);
	apply_gone(&a, filecxt);

	for (int t = 0; t < KT_COUNT; t++)
		end_path_scan(&a.v[t]);
	if (a.defer_links && tuplestore_tuple_count(a.v[KT_LINKS].to_insert) > 0)
		write_deferred_links(&a, filecxt);
	else if (a.targets_sum != 0)
		retarget_links(&a, filecxt);
	bulk_flush_all(&a);

	for (int t = 0; t < KT_COUNT; t++)
	{
		ins[t] = Int64GetDatum(a.v[t].inserted);
		del[t] = Int64GetDatum(a.v[t].deleted);
	}
	table_close(a.stamps, NoLock);
	kabsd_apply_end(&a);

	result[0] = PointerGetDatum(construct_array(ins, KT_COUNT, INT8OID, 8, true, TYPALIGN_DOUBLE));
	result[1] = PointerGetDatum(construct_array(del, KT_COUNT, INT8OID, 8, true, TYPALIGN_DOUBLE));
	result[2] = Int64GetDatum(a.errors_delta);
	result[3] = Int64GetDatum(a.files_read);
	result[4] = kabsd_fingerprint_text(h, nfiles);
	result[5] = Int32GetDatum(workers);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc),
													  result, resnull)));
}
