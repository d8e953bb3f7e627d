/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *		  The refresh of a populated snapshot, in place: one walk that stats
 *		  every file, reads and parses only the files whose stamp changed
 *		  since the last refresh (or every file, when asked for a full
 *		  refresh), and writes into the materialized views only the rows that
 *		  differ from theirs.  That is what REFRESH ... CONCURRENTLY would
 *		  leave behind, without rebuilding and diffing every row of every
 *		  view: the work follows what changed, not the size of the backlog.
 *
 * The views are locked as REFRESH ... CONCURRENTLY locks them (ExclusiveLock):
 * readers go on reading the old rows until the refresh commits.  Rows are
 * written with the table AM and the executor's index maintenance, as logical
 * replication writes a table; the views stay valid materialized views, and
 * the next rebuild (kabsd_stage_load) gives the same rows.
 *
 * Which paths the snapshot holds comes from its files view, so a stamps
 * table that lost rows can only cost parsing, never leave rows behind.
 *
 * src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
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
 * The paths the last refresh knew: from the files view and the stamps.
 * ---------------------------------------------------------------------
 */
typedef struct KnownPath
{
	char	   *path;			/* the key */
	uint32		hash;
	char		status;
	bool		in_snapshot;	/* the files view has its row */
	bool		has_stamp;
	bool		seen;			/* walked by this refresh */
	int64		stamp;
	ItemPointerData stamp_tid;
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

/* ---------------------------------------------------------------------
 * What links.target_uid resolves against: (product, id) of items and
 * decisions for typed links, (product, id or file name without .md) for
 * wikilinks.  A key that two paths claim resolves to NULL.
 * ---------------------------------------------------------------------
 */
typedef struct TargetKey
{
	const char *product;
	const char *key;
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
	uint32		h = hash_bytes((const unsigned char *) k.product, strlen(k.product));

	h = hash_combine(h, hash_bytes((const unsigned char *) k.key, strlen(k.key)));
	return hash_combine(h, k.by_name ? 1 : 0);
}

#define SH_PREFIX targets
#define SH_ELEMENT_TYPE Target
#define SH_KEY_TYPE TargetKey
#define SH_KEY k
#define SH_HASH_KEY(tb, key) target_key_hash(key)
#define SH_EQUAL(tb, a, b) ((a).by_name == (b).by_name && \
							strcmp((a).product, (b).product) == 0 && \
							strcmp((a).key, (b).key) == 0)
#define SH_SCOPE static inline
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) a->hash
#define SH_DEFINE
#define SH_DECLARE
#include "lib/simplehash.h"

/* One view of the snapshot being written. */
typedef struct SnapView
{
	KabsdTable	table;
	Relation	rel;
	ResultRelInfo *rri;
	KabsdBinding *binding;
	bool	   *wanted;
	Relation	pathidx;		/* a unique btree index led by path */
	AttrNumber	path_att;		/* attribute numbers, 0 when absent */
	AttrNumber	ordinal_att;
	AttrNumber	product_att;
	AttrNumber	id_att;
	AttrNumber	uid_att;
	AttrNumber	error_att;
	AttrNumber	type_att;
	AttrNumber	target_id_att;
	AttrNumber	target_att;
	TupleTableSlot *old_slot;
	TupleTableSlot *new_slot;
	int64		inserted;
	int64		deleted;
} SnapView;

typedef struct Apply
{
	SnapView	v[KT_COUNT];
	Relation	stamps;
	TupleTableSlot *stamp_slot;
	EState	   *estate;
	Snapshot	snapshot;
	known_hash *known;
	targets_hash *targets;		/* built when first needed */
	MemoryContext targets_cxt;	/* holds the maps */
	uint64		targets_sum;	/* of what items and decisions give targets */
	int64		errors_delta;
	int64		files_read;
} Apply;

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

/* The unique btree index led by path that every view of a snapshot has. */
static Relation
open_path_index(SnapView *v)
{
	List	   *indexes = RelationGetIndexList(v->rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);

		if (idx->rd_rel->relam == BTREE_AM_OID && idx->rd_index->indisunique &&
			idx->rd_index->indisvalid &&
			idx->rd_index->indkey.values[0] == v->path_att &&
			RelationGetIndexPredicate(idx) == NIL)
			return idx;
		index_close(idx, RowExclusiveLock);
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("materialized view \"%s\" has no unique index on its path",
					RelationGetRelationName(v->rel)),
			 errhint("Detach and attach the backlog again to recreate its snapshot.")));
	return NULL;				/* keep the compiler quiet */
}

static void
open_view(Apply *a, SnapView *v, Oid relid, KabsdTable table)
{
	Relation	rel = table_open(relid, ExclusiveLock);

	if (rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a materialized view",
						RelationGetRelationName(rel))));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_MATVIEW,
					   RelationGetRelationName(rel));
	if (!RelationIsPopulated(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view \"%s\" has not been populated",
						RelationGetRelationName(rel)),
				 errhint("kabsd_refresh() rebuilds a snapshot whose views are not populated.")));
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
				 errmsg("materialized view \"%s\" lacks columns of backlog table \"%s\"",
						RelationGetRelationName(rel), kabsd_tables[table].name),
				 errhint("Detach and attach the backlog again to recreate its snapshot.")));
	v->pathidx = open_path_index(v);
	v->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(v->rri, rel, 1, NULL, 0);
	ExecOpenIndices(v->rri, false);
	v->old_slot = table_slot_create(rel, &a->estate->es_tupleTable);
	v->new_slot = ExecInitExtraTupleSlot(a->estate, RelationGetDescr(rel),
										 &TTSOpsVirtual);
}

static void
close_view(SnapView *v)
{
	ExecCloseIndices(v->rri);
	index_close(v->pathidx, RowExclusiveLock);
	table_close(v->rel, NoLock);
}

/* A text value as a C string in the current context; NULL for NULL. */
static char *
text_or_null(Datum d, bool isnull)
{
	return isnull ? NULL : TextDatumGetCString(d);
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
static char *
name_without_md(const char *s)
{
	const char *slash = strrchr(s, '/');
	const char *name = slash ? slash + 1 : s;
	size_t		len = strlen(name);

	if (len >= 3 && strcmp(name + len - 3, ".md") == 0)
		len -= 3;
	return pnstrdup(name, len);
}

static void
claim_target(Apply *a, const char *product, const char *key, bool by_name,
			 const char *path, bool has_uid, const pg_uuid_t *uid)
{
	TargetKey	k = {product, key, by_name};
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

/* (Re)builds the target maps from the items and decisions views. */
static void
build_targets(Apply *a)
{
	MemoryContext old;

	MemoryContextReset(a->targets_cxt);
	old = MemoryContextSwitchTo(a->targets_cxt);
	a->targets = targets_create(a->targets_cxt, 1024, NULL);
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
			has_uid = !slot->tts_isnull[v->uid_att - 1];
			uid = has_uid ? DatumGetUUIDP(slot->tts_values[v->uid_att - 1]) : NULL;
			if (id)
			{
				claim_target(a, product, id, false, path, has_uid, uid);
				claim_target(a, product, id, true, path, has_uid, uid);
			}
			claim_target(a, product, name_without_md(path), true, path, has_uid, uid);
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
	char	   *product,
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
	product = TextDatumGetCString(values[v->product_att - 1]);
	type = TextDatumGetCString(values[v->type_att - 1]);
	target = TextDatumGetCString(values[v->target_id_att - 1]);
	key.product = product;
	key.by_name = strcmp(type, "wikilink") == 0;
	key.key = key.by_name ? name_without_md(target) : target;
	t = targets_lookup(a->targets, key);
	if (t && !t->ambiguous && t->has_uid)
	{
		pg_uuid_t  *uid = palloc(sizeof(pg_uuid_t));

		*uid = t->uid;
		values[k] = UUIDPGetDatum(uid);
		nulls[k] = false;
	}
}

static void
insert_row(Apply *a, SnapView *v, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = v->new_slot;
	List	   *recheck;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * slot->tts_tupleDescriptor->natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	ExecStoreVirtualTuple(slot);
	simple_table_tuple_insert(v->rel, slot);
	recheck = ExecInsertIndexTuples(v->rri, slot, a->estate, false, false,
									NULL, NIL);
	list_free(recheck);
	ResetPerTupleExprContext(a->estate);
	v->inserted++;
	if (v->table == KT_ITEMS || v->table == KT_DECISIONS)
		a->targets_sum += target_hash(v, values, nulls);
	else if (v->table == KT_FILES && !nulls[v->error_att - 1])
		a->errors_delta++;
}

static void
delete_row(Apply *a, SnapView *v, TupleTableSlot *old)
{
	if (v->table == KT_ITEMS || v->table == KT_DECISIONS)
		a->targets_sum -= target_hash(v, old->tts_values, old->tts_isnull);
	else if (v->table == KT_FILES && !old->tts_isnull[v->error_att - 1])
		a->errors_delta--;
	simple_table_tuple_delete(v->rel, &old->tts_tid, a->snapshot);
	v->deleted++;
}

/*
 * Makes the rows of one path in one view those the file gives (none when
 * file is NULL: the file is gone).  Rows that are already right stay
 * untouched.
 */
static void
apply_view(Apply *a, SnapView *v, const KbEntry *entry, const KbFile *file,
		   const char *path)
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
		if (v->target_att)
			resolve_target(a, v, &values[r * natts], &nulls[r * natts]);
	}

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   v->pathidx->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(path));
	scan = index_beginscan(v->rel, v->pathidx, a->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, v->old_slot))
	{
		TupleTableSlot *old = v->old_slot;
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
	index_endscan(scan);
	ExecClearTuple(v->old_slot);

	for (int r = 0; r < n; r++)
		if (!kept[r])
			insert_row(a, v, &values[r * natts], &nulls[r * natts]);
}

static void
put_stamp(Apply *a, KnownPath *k, const char *path, int64 stamp)
{
	TupleTableSlot *slot = a->stamp_slot;

	if (k && k->has_stamp)
		simple_table_tuple_delete(a->stamps, &k->stamp_tid, a->snapshot);
	if (path == NULL)
		return;
	ExecClearTuple(slot);
	slot->tts_values[0] = CStringGetTextDatum(path);
	slot->tts_isnull[0] = false;
	slot->tts_values[1] = Int64GetDatum(stamp);
	slot->tts_isnull[1] = false;
	ExecStoreVirtualTuple(slot);
	simple_table_tuple_insert(a->stamps, slot);
}

/* Reads the paths of the files view and the stamps into a->known. */
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
		if (slot->tts_isnull[0])
			continue;
		k = known_insert(a->known, TextDatumGetCString(slot->tts_values[0]), &found);
		if (!found)
		{
			k->in_snapshot = false;
			k->seen = false;
		}
		else if (k->has_stamp)
		{
			/* a path stamped twice: drop the extra, and parse the file */
			simple_table_tuple_delete(a->stamps, &slot->tts_tid, a->snapshot);
			k->stamp = 0;
			continue;
		}
		k->has_stamp = true;
		k->stamp = slot->tts_isnull[1] ? 0 : DatumGetInt64(slot->tts_values[1]);
		k->stamp_tid = slot->tts_tid;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(old);
}

/* One file walked: applied to every view unless its stamp is unchanged. */
static void
apply_entry(Apply *a, KabsdScan *scan, const KbEntry *entry, int64 stamp,
			bool full, MemoryContext filecxt)
{
	KnownPath  *k = known_lookup(a->known, (char *) entry->relpath);
	bool		same_stamp = false;
	MemoryContext old;
	KbFile	   *file;

	if (k)
	{
		if (k->seen)
			return;				/* the walk never yields a path twice */
		k->seen = true;
		same_stamp = k->in_snapshot && k->has_stamp && k->stamp == stamp;
		if (same_stamp && !full)
			return;
	}
	file = kabsd_scan_analyze(scan);
	a->files_read++;
	old = MemoryContextSwitchTo(filecxt);
	for (int t = 0; t < KT_COUNT; t++)
		apply_view(a, &a->v[t], entry, file, entry->relpath);
	if (!same_stamp)
		put_stamp(a, k, entry->relpath, stamp);
	MemoryContextSwitchTo(old);
	MemoryContextReset(filecxt);
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
			for (int t = 0; t < KT_COUNT; t++)
				apply_view(a, &a->v[t], NULL, NULL, k->path);
		if (k->has_stamp)
			put_stamp(a, k, NULL, 0);
		MemoryContextSwitchTo(old);
		MemoryContextReset(filecxt);
	}
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

	CommandCounterIncrement();
	UnregisterSnapshot(a->snapshot);
	a->snapshot = RegisterSnapshot(GetLatestSnapshot());
	build_targets(a);

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
			ExecClearTuple(v->new_slot);
			memcpy(v->new_slot->tts_values, values, sizeof(Datum) * desc->natts);
			memcpy(v->new_slot->tts_isnull, nulls, sizeof(bool) * desc->natts);
			ExecStoreVirtualTuple(v->new_slot);
			ExecMaterializeSlot(v->new_slot);
			delete_row(a, v, old);
			insert_row(a, v, v->new_slot->tts_values, v->new_slot->tts_isnull);
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	ExecClearTuple(v->old_slot);
}

/*
 * kabsd_snapshot_apply(server, views regclass[7], stamps regclass, full):
 * refreshes a populated snapshot in place.  full parses every file, not
 * only those whose stamp changed.  Returns the rows inserted and deleted
 * in each view (files, items, decisions, links, worklog, sections,
 * checklist), the change in the number of files with an error, the number
 * of files read, and the fingerprint of the tree.
 */
Datum
kabsd_snapshot_apply(PG_FUNCTION_ARGS)
{
	ArrayType  *views = PG_GETARG_ARRAYTYPE_P(1);
	bool		full = PG_GETARG_BOOL(3);
	KabsdOptions opts;
	Apply		a;
	Datum	   *relids;
	KabsdScan  *scan;
	KbEntry    *entry;
	MemoryContext filecxt;
	TupleDesc	resdesc;
	Datum		result[5];
	bool		resnull[5] = {false, false, false, false, false};
	Datum		ins[KT_COUNT],
				del[KT_COUNT];
	uint64		salt,
				h;
	int64		nfiles = 0;

	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kabsd_server_options(PG_GETARG_NAME(0), &opts);
	relids = kabsd_seven_relations(views, "kabsd_snapshot_apply", "views");

	memset(&a, 0, sizeof(a));
	a.estate = CreateExecutorState();
	for (int t = 0; t < KT_COUNT; t++)
		open_view(&a, &a.v[t], DatumGetObjectId(relids[t]), (KabsdTable) t);
	a.stamps = table_open(PG_GETARG_OID(2), ExclusiveLock);
	kabsd_check_stamps(a.stamps);
	a.stamp_slot = ExecInitExtraTupleSlot(a.estate, RelationGetDescr(a.stamps),
										  &TTSOpsVirtual);
	a.snapshot = RegisterSnapshot(GetLatestSnapshot());
	filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw apply file",
									ALLOCSET_DEFAULT_SIZES);
	/* not under filecxt: the maps outlive the file that first needs them */
	a.targets_cxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw link targets",
										  ALLOCSET_DEFAULT_SIZES);
	load_known(&a, CurrentMemoryContext);

	salt = h = kabsd_fingerprint_start(&opts);
	scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL, NULL,
							KABSD_ALL_NEEDS, CurrentMemoryContext);
	while (kabsd_scan_next_entry(scan, &entry))
	{
		int64		stamp = kabsd_file_stamp(salt, entry);

		h = kabsd_fingerprint_entry(h, entry);
		nfiles++;
		apply_entry(&a, scan, entry, stamp, full, filecxt);
	}
	apply_gone(&a, filecxt);
	kabsd_scan_end(scan);

	if (a.targets_sum != 0)
		retarget_links(&a, filecxt);

	for (int t = 0; t < KT_COUNT; t++)
	{
		ins[t] = Int64GetDatum(a.v[t].inserted);
		del[t] = Int64GetDatum(a.v[t].deleted);
		close_view(&a.v[t]);
	}
	table_close(a.stamps, NoLock);
	UnregisterSnapshot(a.snapshot);
	ExecResetTupleTable(a.estate->es_tupleTable, true);
	FreeExecutorState(a.estate);

	result[0] = PointerGetDatum(construct_array(ins, KT_COUNT, INT8OID, 8, true, TYPALIGN_DOUBLE));
	result[1] = PointerGetDatum(construct_array(del, KT_COUNT, INT8OID, 8, true, TYPALIGN_DOUBLE));
	result[2] = Int64GetDatum(a.errors_delta);
	result[3] = Int64GetDatum(a.files_read);
	result[4] = kabsd_fingerprint_text(h, nfiles);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc),
													  result, resnull)));
}
