/*-------------------------------------------------------------------------
 *
 * refresh_stamps.c
 *		  What a refresh knows without opening a file: the fingerprint of
 *		  the whole tree (nothing changed?), each file's stamp (did this
 *		  file change?), and the paths the last refresh left in the
 *		  snapshot (which are gone?).
 *
 * A stamp is a hash of what a stat gives (size, times, inode, device) and
 * of the parsing rules' version; kabsd.file_stamps keeps one per path of
 * each backlog.  Which paths the snapshot holds comes from its files table,
 * not from the stamps, so a stamp that was lost can only cost parsing,
 * never leave rows behind.
 *
 * src/refresh_stamps.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(kabsd_fingerprint);

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
 * The stamp of one file: what says, without opening it, that it is the
 * same file as at the last refresh.
 */
int64
kabsd_file_stamp(uint64 salt, const KbEntry *e)
{
	return (int64) kabsd_fingerprint_entry(salt, e);
}

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

/* A stamp kept while nothing may be written (parallel mode). */
typedef struct StampKept
{
	KnownPath  *k;
	char	   *path;
	int64		stamp;
} StampKept;

struct KnownPaths
{
	known_hash *paths;
	Size		list_bytes;		/* their paths as a list to read would take */
	int64		files_rows;		/* rows of the files table; -1: not all read */
	Relation	stamps;			/* kabsd.file_stamps */
	Relation	stampidx;		/* its index on (backlog, path), when it has it */
	struct IndexInfo *stampidx_info;
	TupleTableSlot *slot;
	Datum		backlog;		/* the backlog's name, as text */
	Snapshot	snapshot;
	bool		keep;			/* keep stamps rather than write them */
	List	   *kept;
	MemoryContext cxt;
	const char *const *paths_given; /* a targeted refresh's: only these
									 * can be gone */
	int			npaths;
	known_iterator gone;		/* kabsd_known_next_gone()'s place */
	bool		gone_started;
};

/*
 * Is idx the index kabsd_fdw makes on kabsd.file_stamps: a btree on
 * (backlog, path COLLATE "C"), where a directory's paths lie side by side?
 */
static bool
is_stamps_index(Relation idx)
{
	return idx->rd_rel->relam == BTREE_AM_OID && idx->rd_index->indisvalid &&
		idx->rd_index->indnatts == 2 &&
		idx->rd_index->indkey.values[0] == 1 &&
		idx->rd_index->indkey.values[1] == 2 &&
		idx->rd_opfamily[0] == TEXT_BTREE_FAM_OID &&
		idx->rd_opfamily[1] == TEXT_BTREE_FAM_OID &&
		get_collation_isdeterministic(idx->rd_indcollation[0]) &&
		idx->rd_indcollation[1] == C_COLLATION_OID &&
		RelationGetIndexExpressions(idx) == NIL &&
		RelationGetIndexPredicate(idx) == NIL;
}

/*
 * Opens kabsd.file_stamps, the stamps of every backlog's files, for
 * writing, with its index on (backlog, path) when it has it.  It is the
 * extension's own table, written only here, so it is found by name and
 * never taken from the caller.  Rows go in and out by their TIDs, and
 * this index is the one kept as they go in: any other would go stale.
 */
static void
open_stamps(KnownPaths *kp)
{
	Oid			nsp = get_namespace_oid("kabsd", false);
	Oid			relid = get_relname_relid("file_stamps", nsp);
	Relation	rel;
	TupleDesc	desc;
	List	   *indexes;
	bool		altered;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"kabsd.file_stamps\" does not exist"),
				 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	indexes = RelationGetIndexList(rel);
	altered = rel->rd_rel->relkind != RELKIND_RELATION || desc->natts != 3 ||
		TupleDescAttr(desc, 0)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 1)->atttypid != TEXTOID ||
		TupleDescAttr(desc, 2)->atttypid != INT8OID ||
		rel->trigdesc != NULL || list_length(indexes) > 1;
	kp->stamps = rel;
	kp->stampidx = NULL;
	if (!altered && indexes != NIL)
	{
		kp->stampidx = index_open(linitial_oid(indexes), RowExclusiveLock);
		altered = !is_stamps_index(kp->stampidx);
		kp->stampidx_info = BuildIndexInfo(kp->stampidx);
	}
	list_free(indexes);
	if (altered)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"kabsd.file_stamps\" was altered"),
				 errdetail("The refresh writes rows of (backlog text, path text, stamp bigint) by their TIDs: the table must have those columns, no trigger, and no index but its own on (backlog, path).")));
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

/*
 * Replaces the stamp of a path (k, when known) with stamp; path NULL
 * deletes it.
 */
static void
put_stamp(KnownPaths *kp, KnownPath *k, const char *path, int64 stamp)
{
	TupleTableSlot *slot = kp->slot;
	text	   *text_path;

	if (kp->keep)
	{
		MemoryContext old = MemoryContextSwitchTo(kp->cxt);
		StampKept  *s = palloc(sizeof(StampKept));

		s->k = k;
		s->path = path ? pstrdup(path) : NULL;
		s->stamp = stamp;
		kp->kept = lappend(kp->kept, s);
		MemoryContextSwitchTo(old);
		return;
	}
	if (k && k->has_stamp)
		simple_table_tuple_delete(kp->stamps, &k->stamp_tid, kp->snapshot);
	if (path == NULL)
		return;
	text_path = cstring_to_text(path);
	ExecClearTuple(slot);
	slot->tts_values[0] = kp->backlog;
	slot->tts_isnull[0] = false;
	slot->tts_values[1] = PointerGetDatum(text_path);
	slot->tts_isnull[1] = false;
	slot->tts_values[2] = Int64GetDatum(stamp);
	slot->tts_isnull[2] = false;
	ExecStoreVirtualTuple(slot);
	simple_table_tuple_insert(kp->stamps, slot);
	/* the index's two columns lead the row */
	if (kp->stampidx)
		index_insert(kp->stampidx, slot->tts_values, slot->tts_isnull,
					 &slot->tts_tid, kp->stamps, UNIQUE_CHECK_NO, false,
					 kp->stampidx_info);
	/* the walk stamps every changed file: nothing of it may pile up (the
	 * slot holds its own copy once the row is written) */
	ExecClearTuple(slot);
	pfree(text_path);
}

/*
 * Is a path (a text value) one a refresh of npaths paths only walks?  Every
 * path is, when npaths is 0.  Compared as it lies in the row: most rows of a
 * targeted refresh are not, and cost no copy.
 */
static bool
path_wanted(const KnownPaths *kp, Datum d)
{
	struct varlena *t;
	bool		wanted;

	if (kp->npaths == 0)
		return true;
	t = PG_DETOAST_DATUM_PACKED(d);
	wanted = kb_path_within(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
							kp->paths_given, kp->npaths);
	if ((Pointer) t != DatumGetPointer(d))
		pfree(t);
	return wanted;
}

/* A row of the files table (in slot): its path is in the snapshot. */
static void
known_files_row(KnownPaths *kp, SnapTable *files, TupleTableSlot *slot)
{
	bool		found;
	KnownPath  *k;

	k = known_insert(kp->paths,
					 TextDatumGetCString(slot->tts_values[files->path_att - 1]),
					 &found);
	if (!found)
	{
		kp->list_bytes += kabsd_worklist_entry_size(strlen(k->path));
		k->has_stamp = false;
		k->seen = false;
	}
	k->files_tid = slot->tts_tid;
	k->in_snapshot = true;
}

/* A row of kabsd.file_stamps (in slot) of this backlog: a path's stamp. */
static void
known_stamp_row(KnownPaths *kp, TupleTableSlot *slot)
{
	bool		found;
	KnownPath  *k;

	k = known_insert(kp->paths, TextDatumGetCString(slot->tts_values[1]), &found);
	if (!found)
	{
		k->in_snapshot = false;
		k->seen = false;
		kp->list_bytes += kabsd_worklist_entry_size(strlen(k->path));
	}
	else if (k->has_stamp && !ItemPointerEquals(&k->stamp_tid, &slot->tts_tid))
	{
		/* a path stamped twice: drop the extra, and parse the file */
		simple_table_tuple_delete(kp->stamps, &slot->tts_tid, kp->snapshot);
		k->stamp = 0;
		return;
	}
	k->has_stamp = true;
	k->stamp = slot->tts_isnull[2] ? 0 : DatumGetInt64(slot->tts_values[2]);
	k->stamp_tid = slot->tts_tid;
}

/* Every row of the files table, and every stamp of the backlog, read. */
static void
known_scan(KnownPaths *kp, RefreshState *rs)
{
	SnapTable  *files = &rs->t[KT_FILES];
	TableScanDesc scan;
	TupleTableSlot *slot;

	scan = table_beginscan(files->rel, kp->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, files->old_slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (kp->npaths == 0)
			kp->files_rows++;
		slot_getsomeattrs(files->old_slot, files->path_att);
		if (!files->old_slot->tts_isnull[files->path_att - 1] &&
			path_wanted(kp, files->old_slot->tts_values[files->path_att - 1]))
			known_files_row(kp, files, files->old_slot);
	}
	table_endscan(scan);
	ExecClearTuple(files->old_slot);

	slot = table_slot_create(kp->stamps, NULL);
	scan = table_beginscan(kp->stamps, kp->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (slot->tts_isnull[0] || slot->tts_isnull[1] ||
			!text_is(slot->tts_values[0], rs->backlog_name))
			continue;			/* another backlog's */
		if (path_wanted(kp, slot->tts_values[1]))
			known_stamp_row(kp, slot);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * The index of the files table on path alone in bytes' order (COLLATE
 * "C"), where a directory's paths lie side by side; NULL when none.
 */
static Relation
open_files_bytes_index(SnapTable *files)
{
	List	   *indexes = RelationGetIndexList(files->rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (idx->rd_rel->relam == BTREE_AM_OID && idx->rd_index->indisvalid &&
			idx->rd_index->indnatts == 1 &&
			idx->rd_index->indkey.values[0] == files->path_att &&
			idx->rd_opfamily[0] == TEXT_BTREE_FAM_OID &&
			idx->rd_indcollation[0] == C_COLLATION_OID &&
			RelationGetIndexExpressions(idx) == NIL &&
			RelationGetIndexPredicate(idx) == NIL)
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
 * The rows idx finds (its last key column being a path in bytes' order)
 * whose path is path, or below it when below: first the keys before the
 * path (nkeys of them, equal), then the path.  Each is taken as a files
 * row (files given) or as a stamp.
 */
static void
lookup_path(KnownPaths *kp, Relation rel, Relation idx, const Datum *keys,
			int nkeys, const char *path, bool below, TupleTableSlot *slot,
			SnapTable *files)
{
	ScanKeyData sk[3];
	IndexScanDesc scan;
	int			n = 0;

	for (; n < nkeys; n++)
		ScanKeyEntryInitialize(&sk[n], 0, n + 1, BTEqualStrategyNumber,
							   InvalidOid, idx->rd_indcollation[n], F_TEXTEQ,
							   keys[n]);
	if (!below)
		ScanKeyEntryInitialize(&sk[n++], 0, nkeys + 1, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ,
							   CStringGetTextDatum(path));
	else
	{
		/* "path/" <= p < "path0": '0' follows '/' */
		char	   *lo = psprintf("%s/", path);
		char	   *hi = psprintf("%s0", path);

		ScanKeyEntryInitialize(&sk[n++], 0, nkeys + 1, BTGreaterEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXT_GE,
							   CStringGetTextDatum(lo));
		ScanKeyEntryInitialize(&sk[n++], 0, nkeys + 1, BTLessStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXT_LT,
							   CStringGetTextDatum(hi));
	}
	scan = index_beginscan(rel, idx, kp->snapshot, n, 0);
	index_rescan(scan, sk, n, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (files)
		{
			if (!slot->tts_isnull[files->path_att - 1])
				known_files_row(kp, files, slot);
		}
		else if (!slot->tts_isnull[1])
			known_stamp_row(kp, slot);
	}
	index_endscan(scan);
	ExecClearTuple(slot);
}

/*
 * A targeted refresh looks its paths, and the paths below each, up in the
 * indexes in bytes' order of the files table and of the stamps: what it
 * costs follows the paths, not the backlog.  False, nothing read, when
 * either index is missing (a snapshot made before they were).
 */
static bool
known_lookup_paths(KnownPaths *kp, RefreshState *rs)
{
	SnapTable  *files = &rs->t[KT_FILES];
	Relation	filesidx;
	TupleTableSlot *slot;

	if (kp->stampidx == NULL || (filesidx = open_files_bytes_index(files)) == NULL)
		return false;
	slot = table_slot_create(kp->stamps, NULL);
	for (int i = 0; i < kp->npaths; i++)
	{
		for (int below = 0; below <= 1; below++)
		{
			lookup_path(kp, files->rel, filesidx, NULL, 0, kp->paths_given[i],
						below, files->old_slot, files);
			lookup_path(kp, kp->stamps, kp->stampidx, &kp->backlog, 1,
						kp->paths_given[i], below, slot, NULL);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(filesidx, AccessShareLock);
	return true;
}

/*
 * Reads the paths of the files table of rs, and the stamps of its
 * backlog.  cxt holds them until kabsd_known_end().  A refresh of some
 * paths only (npaths > 0) walks only them: nothing else can be gone.
 */
KnownPaths *
kabsd_known_load(RefreshState *rs, const char *const *paths, int npaths,
				 MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	KnownPaths *kp = palloc0(sizeof(KnownPaths));

	kp->cxt = cxt;
	kp->paths_given = paths;
	kp->npaths = npaths;
	open_stamps(kp);
	kp->slot = MakeSingleTupleTableSlot(RelationGetDescr(kp->stamps),
										&TTSOpsVirtual);
	kp->backlog = CStringGetTextDatum(rs->backlog_name);
	kp->snapshot = RegisterSnapshot(rs->snapshot);
	kp->paths = known_create(cxt, 1024, NULL);
	kp->files_rows = npaths > 0 ? -1 : 0;
	if (npaths == 0 || !known_lookup_paths(kp, rs))
		known_scan(kp, rs);
	MemoryContextSwitchTo(old);
	return kp;
}

/*
 * One file walked: its stamp is brought up to date, and *files_tid set to
 * its row in the files table (invalid when it has none).  Returns whether
 * it must be read: its stamp changed, or the refresh is a full one.
 */
bool
kabsd_known_walked(KnownPaths *kp, const KbEntry *entry, int64 stamp,
				   bool full, ItemPointer files_tid)
{
	KnownPath  *k = known_lookup(kp->paths, (char *) entry->relpath);
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
		put_stamp(kp, k, entry->relpath, stamp);
	return true;
}

/*
 * keep: from here on stamps are kept, not written (parallel mode); not
 * keep: what was kept is written.
 */
void
kabsd_known_keep_stamps(KnownPaths *kp, bool keep)
{
	ListCell   *lc;

	kp->keep = keep;
	if (keep)
		return;
	foreach(lc, kp->kept)
	{
		StampKept  *s = lfirst(lc);

		put_stamp(kp, s->k, s->path, s->stamp);
	}
	list_free_deep(kp->kept);
	kp->kept = NIL;
}

/*
 * After the walk, the next path that is gone: its stamp is deleted, and
 * when the snapshot holds rows of it, the path and its files row are
 * returned for the caller to delete them.  False when none is left.
 */
bool
kabsd_known_next_gone(KnownPaths *kp, const char **path, ItemPointer files_tid)
{
	KnownPath  *k;

	if (!kp->gone_started)
	{
		known_start_iterate(kp->paths, &kp->gone);
		kp->gone_started = true;
	}
	while ((k = known_iterate(kp->paths, &kp->gone)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (k->seen)
			continue;
		if (kp->npaths > 0 &&
			!kb_path_within(k->path, strlen(k->path), kp->paths_given, kp->npaths))
			continue;			/* not walked */
		if (k->has_stamp)
			put_stamp(kp, k, NULL, 0);
		if (!k->in_snapshot)
			continue;
		*path = k->path;
		*files_tid = k->files_tid;
		return true;
	}
	return false;
}

/*
 * The rows the files table had when the refresh began, or -1 when a
 * targeted refresh read only some of them.
 */
int64
kabsd_known_files_rows(const KnownPaths *kp)
{
	return kp->files_rows;
}

uint64
kabsd_known_count(const KnownPaths *kp)
{
	return kp->paths->members;
}

Size
kabsd_known_list_bytes(const KnownPaths *kp)
{
	return kp->list_bytes;
}

void
kabsd_known_end(KnownPaths *kp)
{
	Assert(kp->kept == NIL);
	ExecDropSingleTupleTableSlot(kp->slot);
	if (kp->stampidx)
		index_close(kp->stampidx, NoLock);
	UnregisterSnapshot(kp->snapshot);
	table_close(kp->stamps, NoLock);
}
