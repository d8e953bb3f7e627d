/*-------------------------------------------------------------------------
 *
 * refresh_targets.c
 *		  What links.target_uid resolves against: (product, id) of items and
 *		  decisions for typed links, (product, id or file name without .md)
 *		  for wikilinks.  A key that two paths claim resolves to NULL.
 *
 * The maps are built from the items and decisions tables when a link first
 * needs them.  A refresh of a few files looks targets up in the indexes on
 * id and on file name instead (kabsd_targets_by_index): building the maps
 * reads every item and decision, which would cost more than everything
 * else it does.  A refresh keeps a sum of hashes of what the rows it deleted
 * and inserted gave as targets: when it is not zero some target changed,
 * and every link is resolved again against the final tables.
 *
 * src/refresh_targets.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

/*
 * What the index on file names removes from a path: everything up to its
 * last "/", and a final ".md" (sql/kabsd_fdw_functions.sql, the same).
 */
#define FILE_NAME_PATTERN "^.*/|\\.md$"

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

/* A text value as a C string in the current context; NULL for NULL. */
static char *
text_or_null(Datum d, bool isnull)
{
	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * A hash of what an item or decision row gives link targets.  Rows come
 * and go; the sum of these hashes over rows deleted and inserted is zero
 * unless some target changed.
 */
uint64
kabsd_targets_row_hash(const SnapTable *st, const Datum *values,
					   const bool *nulls)
{
	AttrNumber	atts[3] = {st->path_att, st->product_att, st->id_att};
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
	if (!nulls[st->uid_att - 1])
		h = hash_bytes_extended((const unsigned char *) DatumGetUUIDP(values[st->uid_att - 1]),
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
claim_target(RefreshState *rs, const char *product, const char *key,
			 uint32 key_len, bool by_name, const char *path, bool has_uid,
			 const pg_uuid_t *uid)
{
	TargetKey	k = {product, key, strlen(product), key_len, by_name};
	bool		found;
	Target	   *t = targets_insert(rs->targets, k, &found);

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
void
kabsd_targets_build(RefreshState *rs)
{
	MemoryContext old;
	double		rows = 0;

	/*
	 * Up to three keys a row (id, id by name, file name): the map is sized
	 * once from the tables' last row counts, not grown (and rehashed) step
	 * by step.  An estimate that is stale only costs growing past it.
	 */
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
		rows += Max(0, rs->t[t].rel->rd_rel->reltuples);
	MemoryContextReset(rs->targets_cxt);
	old = MemoryContextSwitchTo(rs->targets_cxt);
	rs->targets = targets_create(rs->targets_cxt,
								 (uint32) Min(Max(rows * 3, 1024), 1 << 22),
								 NULL);
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
	{
		SnapTable  *st = &rs->t[t];
		TableScanDesc scan = table_beginscan(st->rel, rs->snapshot, 0, NULL);
		TupleTableSlot *slot = st->old_slot;
		int			last = Max(Max(st->path_att, st->product_att),
							   Max(st->id_att, st->uid_att));

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
			product = text_or_null(slot->tts_values[st->product_att - 1],
								   slot->tts_isnull[st->product_att - 1]);
			if (product == NULL)
				continue;		/* a target is looked for in its product only */
			id = text_or_null(slot->tts_values[st->id_att - 1],
							  slot->tts_isnull[st->id_att - 1]);
			path = text_or_null(slot->tts_values[st->path_att - 1],
								slot->tts_isnull[st->path_att - 1]);
			if (path == NULL)
				continue;		/* no such row is written; keep off one */
			has_uid = !slot->tts_isnull[st->uid_att - 1];
			uid = has_uid ? DatumGetUUIDP(slot->tts_values[st->uid_att - 1]) : NULL;
			if (id)
			{
				claim_target(rs, product, id, strlen(id), false, path, has_uid, uid);
				claim_target(rs, product, id, strlen(id), true, path, has_uid, uid);
			}
			name_without_md(path, strlen(path), &name, &name_len);
			claim_target(rs, product, name, name_len, true, path, has_uid, uid);
		}
		table_endscan(scan);
		ExecClearTuple(slot);
	}
	MemoryContextSwitchTo(old);
}

/*
 * The maps from the items and decisions as this refresh left them: what
 * it wrote is made visible, and the snapshot compared with moves past it.
 */
void
kabsd_targets_final(RefreshState *rs)
{
	CommandCounterIncrement();
	UnregisterSnapshot(rs->snapshot);
	rs->snapshot = RegisterSnapshot(GetLatestSnapshot());
	kabsd_targets_build(rs);
}

/*
 * Can idx find what the maps find, bytes equal to bytes: a valid btree
 * index over one text key, with text's own operators, deterministic,
 * without a predicate?  A hash index too when hash is true: what it finds
 * may include other keys of the same hash, so only where finding more
 * than asked is harmless.
 */
static bool
index_usable(Relation idx, bool hash)
{
	Oid			am = idx->rd_rel->relam;

	return (am == BTREE_AM_OID || (hash && am == HASH_AM_OID)) &&
		idx->rd_index->indisvalid && idx->rd_index->indnatts == 1 &&
		idx->rd_opcintype[0] == TEXTOID &&
		idx->rd_opfamily[0] == get_opclass_family(GetDefaultOpClass(TEXTOID, am)) &&
		get_collation_isdeterministic(idx->rd_indcollation[0]) &&
		RelationGetIndexPredicate(idx) == NIL;
}

/* The strategy of "=" in idx, a btree or a hash index. */
static StrategyNumber
equal_strategy(Relation idx)
{
	return idx->rd_rel->relam == HASH_AM_OID ? HTEqualStrategyNumber :
		BTEqualStrategyNumber;
}

static bool
const_text_is(Node *n, const char *s)
{
	Const	   *c = (Const *) n;

	return IsA(n, Const) && c->consttype == TEXTOID && !c->constisnull &&
		strcmp(TextDatumGetCString(c->constvalue), s) == 0;
}

/*
 * Is idx an index on the file names in att (a path of items or decisions,
 * links' target_id): its last component without ".md", as
 * name_without_md() gives it, written by kabsd_snapshot_indexes() as
 * regexp_replace(att, FILE_NAME_PATTERN, '', 'g')?
 */
static bool
is_file_name_index(Relation idx, AttrNumber att)
{
	List	   *exprs;
	FuncExpr   *f;
	Var		   *v;

	if (idx->rd_index->indkey.values[0] != 0)
		return false;
	exprs = RelationGetIndexExpressions(idx);
	if (list_length(exprs) != 1 || !IsA(linitial(exprs), FuncExpr))
		return false;
	f = linitial(exprs);
	if (f->funcid != F_REGEXP_REPLACE_TEXT_TEXT_TEXT_TEXT ||
		list_length(f->args) != 4 || !IsA(linitial(f->args), Var))
		return false;
	v = linitial(f->args);
	return v->varattno == att &&
		const_text_is(lsecond(f->args), FILE_NAME_PATTERN) &&
		const_text_is(lthird(f->args), "") &&
		const_text_is(lfourth(f->args), "g");
}

/*
 * The index of st on att alone (by_name false) or on the file names in att
 * (by_name true); NULL when none.  A hash index is taken only when hash.
 */
static Relation
open_target_index(const SnapTable *st, AttrNumber att, bool by_name, bool hash)
{
	List	   *indexes = RelationGetIndexList(st->rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (index_usable(idx, hash) &&
			(by_name ? is_file_name_index(idx, att) :
			 idx->rd_index->indkey.values[0] == att &&
			 RelationGetIndexExpressions(idx) == NIL))
		{
			list_free(indexes);
			return idx;
		}
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return NULL;
}

/*
 * From now on (this participant), links' targets are looked up in the
 * indexes of items and decisions rather than mapped from every row: typed
 * links when both tables have an index on id, wikilinks when both also
 * have one on file names.  With both, and no worker sharing the refresh,
 * every target a row gives or takes is noted, so that only the links it
 * could change are checked again (kabsd_targets_links_to_check).
 */
void
kabsd_targets_by_index(RefreshState *rs)
{
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
	{
		rs->t[t].ididx = open_target_index(&rs->t[t], rs->t[t].id_att, false, false);
		if (rs->t[t].ididx == NULL)
		{
			kabsd_targets_end(rs);
			return;
		}
	}
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
	{
		rs->t[t].nameidx = open_target_index(&rs->t[t], rs->t[t].path_att, true, false);
		if (rs->t[t].nameidx == NULL)
		{
			for (int u = KT_ITEMS; u <= KT_DECISIONS; u++)
			{
				if (rs->t[u].nameidx)
					index_close(rs->t[u].nameidx, AccessShareLock);
				rs->t[u].nameidx = NULL;
			}
			return;
		}
	}
	rs->collect_targets = !rs->parallel_used;
}

void
kabsd_targets_end(RefreshState *rs)
{
	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];

		if (st->ididx)
			index_close(st->ididx, AccessShareLock);
		if (st->nameidx)
			index_close(st->nameidx, AccessShareLock);
		st->ididx = st->nameidx = NULL;
	}
	rs->collect_targets = false;
}

/*
 * The rows of st whose key in idx equals key.key, in key.product, claimed
 * into *out as the maps would claim them.
 */
static void
claim_from_index(RefreshState *rs, SnapTable *st, Relation idx, TargetKey key,
				 Target *out, bool *found)
{
	IndexScanDesc scan;
	ScanKeyData sk;
	int			last = Max(Max(st->path_att, st->product_att),
						   Max(st->id_att, st->uid_att));

	ScanKeyEntryInitialize(&sk, 0, 1, equal_strategy(idx), InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ,
						   PointerGetDatum(cstring_to_text_with_len(key.key, key.key_len)));
	scan = index_beginscan(st->rel, idx, rs->snapshot, 1, 0);
	index_rescan(scan, &sk, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, st->old_slot))
	{
		TupleTableSlot *slot = st->old_slot;
		struct varlena *product;
		char	   *path;

		CHECK_FOR_INTERRUPTS();
		slot_getsomeattrs(slot, last);
		if (slot->tts_isnull[st->product_att - 1] ||
			slot->tts_isnull[st->path_att - 1])
			continue;
		product = PG_DETOAST_DATUM_PACKED(slot->tts_values[st->product_att - 1]);
		if (VARSIZE_ANY_EXHDR(product) != key.product_len ||
			memcmp(VARDATA_ANY(product), key.product, key.product_len) != 0)
			continue;
		path = TextDatumGetCString(slot->tts_values[st->path_att - 1]);
		if (!*found)
		{
			*found = true;
			out->path = path;
			out->has_uid = !slot->tts_isnull[st->uid_att - 1];
			if (out->has_uid)
				out->uid = *DatumGetUUIDP(slot->tts_values[st->uid_att - 1]);
		}
		else if (strcmp(out->path, path) != 0)
			out->ambiguous = true;
	}
	index_endscan(scan);
	ExecClearTuple(st->old_slot);
}

/*
 * A link's target looked up in the indexes: the rows of both tables with
 * that id (or, for a wikilink, that id or file name) in that product.
 */
static Target *
lookup_target(RefreshState *rs, TargetKey key, Target *out)
{
	bool		found = false;

	memset(out, 0, sizeof(*out));
	for (int t = KT_ITEMS; t <= KT_DECISIONS; t++)
	{
		claim_from_index(rs, &rs->t[t], rs->t[t].ididx, key, out, &found);
		if (key.by_name)
			claim_from_index(rs, &rs->t[t], rs->t[t].nameidx, key, out, &found);
	}
	return found ? out : NULL;
}

/*
 * What an item or decision row written or deleted gave as a target: the
 * keys a link may name it by.
 */
typedef struct ChangedTarget
{
	char	   *id;				/* NULL when none */
	char	   *name;			/* its file name without ".md" */
} ChangedTarget;

/* Past this many rows, checking every link costs less than looking. */
#define MAX_CHANGED_TARGETS 1024

/* An item or decision row written or deleted: what it gave is noted. */
void
kabsd_targets_note_row(RefreshState *rs, const SnapTable *st,
					   const Datum *values, const bool *nulls)
{
	MemoryContext old;
	ChangedTarget *c;
	const char *name;
	uint32		name_len;
	char	   *path;

	if (!rs->collect_targets || rs->retarget_all)
	{
		rs->retarget_all = true;
		return;
	}
	if (list_length(rs->changed_targets) >= MAX_CHANGED_TARGETS)
	{
		rs->retarget_all = true;
		return;
	}
	old = MemoryContextSwitchTo(rs->estate->es_query_cxt);
	c = palloc0(sizeof(ChangedTarget));
	c->id = text_or_null(values[st->id_att - 1], nulls[st->id_att - 1]);
	path = text_or_null(values[st->path_att - 1], nulls[st->path_att - 1]);
	if (path)
	{
		name_without_md(path, strlen(path), &name, &name_len);
		c->name = pnstrdup(name, name_len);
	}
	rs->changed_targets = lappend(rs->changed_targets, c);
	MemoryContextSwitchTo(old);
}

/* Appends to *tids the links idx finds for key. */
static void
links_found(RefreshState *rs, Relation idx, Datum key,
			ItemPointerData **tids, int *ntids, int *maxtids)
{
	SnapTable  *st = &rs->t[KT_LINKS];
	IndexScanDesc scan;
	ScanKeyData sk;

	ScanKeyEntryInitialize(&sk, 0, 1, equal_strategy(idx), InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, key);
	scan = index_beginscan(st->rel, idx, rs->snapshot, 1, 0);
	index_rescan(scan, &sk, 1, NULL, 0);
	while (index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (*ntids == *maxtids)
		{
			*maxtids *= 2;
			*tids = repalloc(*tids, sizeof(ItemPointerData) * *maxtids);
		}
		(*tids)[(*ntids)++] = scan->xs_heaptid;
	}
	index_endscan(scan);
}

static int
tid_cmp(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

/*
 * The links whose target may have changed, when every change was noted
 * and links has its index on the file names in target_id: those that
 * name a changed row (as it was, or as it is) by one of its keys.  A link
 * resolves to a row only by a key the row gives, so no other can change.
 * The index finds a link naming "x/K.md" under K: typed links are looked
 * for under their id's file name too.  What this refresh wrote is made
 * visible first, and the links are looked up, and then resolved, in the
 * tables as the refresh left them.  False when every link must be
 * checked.
 */
bool
kabsd_targets_links_to_check(RefreshState *rs, ItemPointerData **tids,
							 int *ntids)
{
	SnapTable  *st = &rs->t[KT_LINKS];
	int			maxtids = 64;
	ListCell   *lc;

	if (!rs->collect_targets || rs->retarget_all)
		return false;
	/* candidates only, each resolved again: a hash index will do */
	st->nameidx = open_target_index(st, st->target_id_att, true, true);
	if (st->nameidx == NULL)
		return false;

	CommandCounterIncrement();
	UnregisterSnapshot(rs->snapshot);
	rs->snapshot = RegisterSnapshot(GetLatestSnapshot());

	*tids = palloc(sizeof(ItemPointerData) * maxtids);
	*ntids = 0;
	foreach(lc, rs->changed_targets)
	{
		ChangedTarget *c = lfirst(lc);

		if (c->id)
		{
			const char *name;
			uint32		name_len;

			links_found(rs, st->nameidx, CStringGetTextDatum(c->id),
						tids, ntids, &maxtids);
			name_without_md(c->id, strlen(c->id), &name, &name_len);
			if (name_len != strlen(c->id))
				links_found(rs, st->nameidx,
							PointerGetDatum(cstring_to_text_with_len(name, name_len)),
							tids, ntids, &maxtids);
		}
		if (c->name)
			links_found(rs, st->nameidx, CStringGetTextDatum(c->name),
						tids, ntids, &maxtids);
	}
	/* a link found under several keys is checked once */
	if (*ntids > 1)
	{
		int			n = 1;

		qsort(*tids, *ntids, sizeof(ItemPointerData), tid_cmp);
		for (int i = 1; i < *ntids; i++)
			if (!ItemPointerEquals(&(*tids)[i], &(*tids)[n - 1]))
				(*tids)[n++] = (*tids)[i];
		*ntids = n;
	}
	return true;
}

/* links.target_uid of a link row, from the target maps. */
void
kabsd_targets_resolve(RefreshState *rs, const SnapTable *st, Datum *values,
					  bool *nulls)
{
	int			k = st->target_att - 1;
	struct varlena *product,
			   *type,
			   *target;
	TargetKey	key;
	Target	   *t;
	Target		looked_up;

	values[k] = (Datum) 0;
	nulls[k] = true;
	if (nulls[st->product_att - 1] || nulls[st->type_att - 1] ||
		nulls[st->target_id_att - 1])
		return;
	/* the rows' own values, not copied */
	product = PG_DETOAST_DATUM_PACKED(values[st->product_att - 1]);
	type = PG_DETOAST_DATUM_PACKED(values[st->type_att - 1]);
	target = PG_DETOAST_DATUM_PACKED(values[st->target_id_att - 1]);
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
	if (rs->targets == NULL && rs->t[KT_ITEMS].ididx != NULL &&
		(!key.by_name || rs->t[KT_ITEMS].nameidx != NULL))
		t = lookup_target(rs, key, &looked_up);
	else
	{
		if (rs->targets == NULL)
			kabsd_targets_build(rs);
		t = targets_lookup(rs->targets, key);
	}
	if (t && !t->ambiguous && t->has_uid)
	{
		pg_uuid_t  *uid = palloc(sizeof(pg_uuid_t));

		*uid = t->uid;
		values[k] = UUIDPGetDatum(uid);
		nulls[k] = false;
	}
}
