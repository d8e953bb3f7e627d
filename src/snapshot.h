/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *		  The refresh in place, as snapshot.c (comparing and writing) and
 *		  parallel.c (sharing the comparing with parallel workers) see it.
 *
 * src/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KABSD_SNAPSHOT_H
#define KABSD_SNAPSHOT_H

#include "kabsd_fdw.h"

#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "storage/shm_mq.h"
#include "utils/snapshot.h"
#include "utils/tuplestore.h"

/*
 * Where the differences a participant finds go.  A backend that is not in
 * parallel mode writes them at once; in parallel mode no participant may
 * write, so the leader keeps them until the workers are done and each
 * worker sends them to the leader.
 */
typedef enum ApplyMode
{
	APPLY_WRITE,
	APPLY_COLLECT,
	APPLY_SEND
} ApplyMode;

/* One table of the snapshot. */
typedef struct SnapView
{
	KabsdTable	table;
	Relation	rel;
	ResultRelInfo *rri;			/* NULL in a worker, which never writes */
	KabsdBinding *binding;
	bool	   *wanted;
	Relation	pathidx;		/* a unique btree index led by path */
	struct IndexScanDescData *pathscan;	/* on it, kept for every file */
	AttrNumber	path_att;		/* attribute numbers, 0 when absent */
	AttrNumber	ordinal_att;
	AttrNumber	product_att;
	AttrNumber	id_att;
	AttrNumber	uid_att;
	AttrNumber	error_att;
	AttrNumber	type_att;
	AttrNumber	target_id_att;
	AttrNumber	target_att;
	bool		empty;			/* no row when the refresh began */
	TupleTableSlot **bulk;		/* empty tables: rows batched for the heap */
	int			nbulk;
	Size		bulk_bytes;
	struct BulkInsertStateData *bistate;
	int			insert_options; /* TABLE_INSERT_FROZEN for a table made now */
	TupleTableSlot *old_slot;
	TupleTableSlot *new_slot;
	TupleTableSlot *min_slot;	/* rows kept in a tuplestore */
	int64		inserted;
	int64		deleted;
	/* APPLY_COLLECT, and the links of an empty table: what to write later */
	Tuplestorestate *to_insert;
	ItemPointerData *to_delete;
	int64		ndelete;
	int64		maxdelete;
} SnapView;

/* One participant's state. */
typedef struct Apply
{
	ApplyMode	mode;
	SnapView	v[KT_COUNT];
	bool		defer_links;	/* the links table was empty: fill it last */
	Relation	stamps;			/* the leader's only: kabsd.file_stamps */
	char	   *backlog_name;	/* the server's: whose snapshot and stamps */
	Oid			nspid;			/* its schema */
	Datum		backlog;		/* the name, as text */
	TupleTableSlot *stamp_slot;
	EState	   *estate;
	Snapshot	snapshot;		/* every participant compares with this one */
	struct known_hash *known;	/* the leader's only */
	Size		known_bytes;	/* their paths as a list to read would take */
	struct targets_hash *targets;	/* built when first needed */
	MemoryContext targets_cxt;	/* holds the maps */
	uint64		targets_sum;	/* of what items and decisions give targets */
	int64		errors_delta;
	int64		files_read;
	shm_mq_handle *mqh;			/* APPLY_SEND: to the leader */
	MemoryContext collect_cxt;	/* APPLY_COLLECT: holds what is kept */
	List	   *stamps_due;		/* APPLY_COLLECT: stamps to write after */
} Apply;

/*
 * A message from a worker to the leader: a row to insert (a MinimalTuple
 * follows the header, MAXALIGNed), a row to delete, or the worker's
 * totals (an ApplyTotals follows).
 */
typedef struct ApplyMsg
{
	char		op;				/* 'i', 'd' or 't' */
	uint8		table;
	ItemPointerData tid;
} ApplyMsg;

typedef struct ApplyTotals
{
	uint64		targets_sum;
	int64		errors_delta;
	int64		files_read;
} ApplyTotals;

/* The files a refresh must read, as the walk found them. */
typedef struct WorkList
{
	MemoryContext cxt;			/* NULL: fixed size, in shared memory */
	char	   *root;			/* the walk's resolved root */
	char	   *data;			/* serialized entries */
	Size		len;
	Size		cap;
	Size	   *offsets;
	int64		n;
	int64		cap_n;
} WorkList;

/* snapshot.c */
extern void kabsd_apply_begin(Apply *a, ApplyMode mode, const char *backlog,
							  const Oid *relids, Snapshot snapshot);
extern void kabsd_apply_end(Apply *a);
extern void kabsd_apply_file(Apply *a, KabsdScan *analyzer, const KbEntry *e,
							 ItemPointer files_tid, MemoryContext filecxt);
extern void kabsd_apply_collect_begin(Apply *a, MemoryContext cxt);
extern void kabsd_apply_collect_insert(Apply *a, KabsdTable t, MinimalTuple tup);
extern void kabsd_apply_collect_delete(Apply *a, KabsdTable t, ItemPointer tid);
extern bool kabsd_worklist_add(WorkList *wl, const KbEntry *e,
							   ItemPointer files_tid);
extern Size kabsd_worklist_entry_size(Size relpath_len);
extern void kabsd_worklist_entry(const char *data, const char *root,
								 StringInfo pathbuf, KbEntry *e,
								 ItemPointer files_tid);

/* parallel.c */
typedef struct ParallelApply ParallelApply;
extern ParallelApply *kabsd_parallel_begin(Apply *a, const Oid *relids,
										   const KabsdOptions *opts,
										   const char *root, int64 max_files,
										   Size max_bytes, int nworkers);
extern void kabsd_parallel_add(ParallelApply *pa, Apply *a, const KbEntry *e,
							   ItemPointer files_tid);
extern int	kabsd_parallel_finish(ParallelApply *pa, Apply *a);

#endif							/* KABSD_SNAPSHOT_H */
