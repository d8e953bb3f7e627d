/*-------------------------------------------------------------------------
 *
 * parallel.c
 *		  A refresh that must read many files shares the reading, parsing
 *		  and comparing with parallel workers.
 *
 * The leader has walked the tree and listed the files to read; the list
 * goes into shared memory, and the leader and each worker take the next
 * few files from it until none is left, so a slow file never holds up the
 * rest.  Every participant compares with the leader's snapshot (workers
 * restore it and share the leader's locks, as a parallel index build's
 * workers do).  Nobody may write in parallel mode: a worker sends the rows
 * to insert and delete to the leader through a message queue, the leader
 * keeps them with its own (a tuplestore, which spills to disk past
 * work_mem) and writes them all once the workers are done.
 *
 * How many workers: max_parallel_maintenance_workers, as for CREATE INDEX,
 * when at least kabsd_fdw.min_parallel_refresh_files files are to be read.
 * Fewer or none may start (max_worker_processes, max_parallel_workers);
 * the leader then reads what nobody else takes.
 *
 * src/parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "snapshot.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void kabsd_apply_worker_main(dsm_segment *seg, shm_toc *toc);

/* kabsd_fdw.min_parallel_refresh_files */
int			kabsd_min_parallel_refresh_files = 1000;

/* Keys of the shared memory table of contents ("kabsd" and a number). */
#define KEY_SHARED		UINT64CONST(0x6B61627364000001)
#define KEY_SNAPSHOT	UINT64CONST(0x6B61627364000002)
#define KEY_ENTRIES		UINT64CONST(0x6B61627364000003)
#define KEY_QUEUES		UINT64CONST(0x6B61627364000004)

/* the header of a message is sent as it is, with the padding MAXALIGN adds */
StaticAssertDecl(sizeof(ApplyMsg) == MAXALIGN(sizeof(ApplyMsg)),
				 "ApplyMsg must need no padding");

/* A worker's queue to the leader: room for a few files' rows. */
#define QUEUE_SIZE		((Size) 1024 * 1024)

/* Files taken at a time: few enough to share the tail evenly. */
#define CHUNK_FILES		16

typedef struct ApplyShared
{
	Oid			tables[KT_COUNT];
	NameData	backlog;		/* whose snapshot */
	int64		max_file_size;
	int64		max_files;		/* room in the list */
	Size		max_bytes;
	pg_atomic_uint64 listed;	/* files the leader has listed so far */
	pg_atomic_uint32 walked;	/* 1 once the list is complete */
	pg_atomic_uint64 next;		/* the first file nobody took */
	char		root[FLEXIBLE_ARRAY_MEMBER];	/* the walk's resolved root */
} ApplyShared;

/* One participant's view of the shared list. */
typedef struct SharedList
{
	ApplyShared *sh;
	const Size *offsets;
	const char *data;
	StringInfoData pathbuf;
} SharedList;

/* The leader's side. */
struct ParallelApply
{
	ParallelContext *pcxt;
	SharedList	list;
	WorkList	shared;			/* the leader's handle on the shared list */
	shm_mq_handle **mqh;
	int			launched;
	int64		worker_files;	/* files the workers read */
	int64		overflow;		/* files the leader read as it listed them */
	KabsdScan  *analyzer;
	MemoryContext filecxt;
};

/*
 * The next few files listed that nobody took: [*start, *end).  Waits while
 * the leader is still walking; false once every file is taken.
 */
static bool
take_files(ApplyShared *sh, int64 *start, int64 *end)
{
	for (;;)
	{
		uint64		next = pg_atomic_read_u64(&sh->next);
		uint64		listed = pg_atomic_read_u64(&sh->listed);

		if (next < listed)
		{
			uint64		last = Min(listed, next + CHUNK_FILES);

			if (pg_atomic_compare_exchange_u64(&sh->next, &next, last))
			{
				pg_read_barrier();	/* the entries were written before
									 * listed */
				*start = (int64) next;
				*end = (int64) last;
				return true;
			}
			continue;
		}
		if (pg_atomic_read_u32(&sh->walked))
		{
			pg_read_barrier();
			if (pg_atomic_read_u64(&sh->listed) > next)
				continue;		/* listed just before the walk ended */
			return false;
		}
		/* ahead of the walk: rare, and short */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
read_file(Apply *a, SharedList *list, int64 i, KabsdScan *analyzer,
		  MemoryContext filecxt)
{
	KbEntry		e;
	ItemPointerData files_tid;

	kabsd_worklist_entry(list->data + list->offsets[i], list->sh->root,
						 &list->pathbuf, &e, &files_tid);
	kabsd_apply_file(a, analyzer, &e, &files_tid, filecxt);
}

/* A worker: reads and compares files until none is left. */
void
kabsd_apply_worker_main(dsm_segment *seg, shm_toc *toc)
{
	SharedList	list;
	char	   *queues = shm_toc_lookup(toc, KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + ParallelWorkerNumber * QUEUE_SIZE);
	Snapshot	snapshot = RestoreSnapshot(shm_toc_lookup(toc, KEY_SNAPSHOT, false));
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "kabsd_fdw refresh worker",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MemoryContext filecxt = AllocSetContextCreate(cxt, "kabsd_fdw apply file",
												  ALLOCSET_DEFAULT_SIZES);
	KabsdScan  *analyzer;
	Apply		a;
	ApplyMsg	msg = {'t'};
	ApplyTotals totals;
	shm_mq_iovec iov[2];
	int64		start,
				end;

	list.sh = shm_toc_lookup(toc, KEY_SHARED, false);
	list.offsets = shm_toc_lookup(toc, KEY_ENTRIES, false);
	list.data = (const char *) (list.offsets + list.sh->max_files);
	initStringInfo(&list.pathbuf);

	shm_mq_set_sender(mq, MyProc);
	kabsd_apply_begin(&a, APPLY_SEND, NameStr(list.sh->backlog), list.sh->tables,
					  snapshot);
	a.mqh = shm_mq_attach(mq, seg, NULL);
	analyzer = kabsd_analyzer_begin(list.sh->root, list.sh->max_file_size,
									KABSD_ALL_NEEDS, cxt);

	while (take_files(list.sh, &start, &end))
		for (int64 i = start; i < end; i++)
			read_file(&a, &list, i, analyzer, filecxt);

	totals.targets_sum = a.targets_sum;
	totals.errors_delta = a.errors_delta;
	totals.files_read = a.files_read;
	iov[0].data = (const char *) &msg;
	iov[0].len = MAXALIGN(sizeof(msg));
	iov[1].data = (const char *) &totals;
	iov[1].len = sizeof(totals);
	(void) shm_mq_sendv(a.mqh, iov, 2, false, true);

	kabsd_scan_end(analyzer);
	shm_mq_detach(a.mqh);
	a.mqh = NULL;
	kabsd_apply_end(&a);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* One message from a worker, kept by the leader. */
static void
take_message(Apply *a, Size nbytes, const char *data, int64 *files_read)
{
	ApplyMsg	msg;
	Size		hdr = MAXALIGN(sizeof(ApplyMsg));

	if (nbytes < hdr)
		elog(ERROR, "short message from a parallel refresh worker");
	memcpy(&msg, data, sizeof(msg));
	if (msg.table >= KT_COUNT)
		elog(ERROR, "unexpected message from a parallel refresh worker");
	switch (msg.op)
	{
		case 'i':
			kabsd_apply_collect_insert(a, (KabsdTable) msg.table,
									   (MinimalTuple) (data + hdr));
			break;
		case 'd':
			kabsd_apply_collect_delete(a, (KabsdTable) msg.table, &msg.tid);
			break;
		case 't':
			{
				ApplyTotals t;

				memcpy(&t, data + hdr, sizeof(t));
				a->targets_sum += t.targets_sum;
				a->errors_delta += t.errors_delta;
				*files_read += t.files_read;
				break;
			}
		default:
			elog(ERROR, "unexpected message from a parallel refresh worker");
	}
}

/*
 * Takes what the workers sent so far (wait: until every worker is done).
 * A queue whose worker is done is set to NULL.
 */
static void
take_messages(Apply *a, shm_mq_handle **mqh, int n, bool wait,
			  int64 *files_read)
{
	for (int i = 0; i < n; i++)
	{
		while (mqh[i] != NULL)
		{
			Size		nbytes;
			void	   *data;
			shm_mq_result res = shm_mq_receive(mqh[i], &nbytes, &data, !wait);

			if (res == SHM_MQ_WOULD_BLOCK)
				break;
			if (res == SHM_MQ_DETACHED)
			{
				mqh[i] = NULL;
				break;
			}
			take_message(a, nbytes, data, files_read);
		}
	}
}

/*
 * Enters parallel mode and starts up to nworkers workers, with room for
 * max_files files of max_bytes in the shared list.  a must be in
 * APPLY_COLLECT mode: from here on every difference is kept.
 */
ParallelApply *
kabsd_parallel_begin(Apply *a, const Oid *relids, const KabsdOptions *opts,
					 const char *root, int64 max_files, Size max_bytes,
					 int nworkers)
{
	ParallelApply *pa = palloc0(sizeof(ParallelApply));
	ParallelContext *pcxt;
	ApplyShared *sh;
	Size		rootlen = strlen(root) + 1;
	Size		shsize = add_size(offsetof(ApplyShared, root), rootlen);
	Size		snapsize = EstimateSnapshotSpace(a->snapshot);
	Size		listsize = add_size(mul_size(sizeof(Size), max_files), max_bytes);
	char	   *snap;
	char	   *queues;

	Assert(a->mode == APPLY_COLLECT);
	EnterParallelMode();
	pcxt = CreateParallelContext("kabsd_fdw", "kabsd_apply_worker_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, shsize);
	shm_toc_estimate_chunk(&pcxt->estimator, snapsize);
	shm_toc_estimate_chunk(&pcxt->estimator, listsize);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(QUEUE_SIZE, nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);
	pa->pcxt = pcxt;

	sh = shm_toc_allocate(pcxt->toc, shsize);
	memcpy(sh->tables, relids, sizeof(Oid) * KT_COUNT);
	namestrcpy(&sh->backlog, a->backlog_name);
	sh->max_file_size = opts->max_file_size;
	sh->max_files = max_files;
	sh->max_bytes = max_bytes;
	pg_atomic_init_u64(&sh->listed, 0);
	pg_atomic_init_u32(&sh->walked, 0);
	pg_atomic_init_u64(&sh->next, 0);
	memcpy(sh->root, root, rootlen);
	shm_toc_insert(pcxt->toc, KEY_SHARED, sh);

	snap = shm_toc_allocate(pcxt->toc, snapsize);
	SerializeSnapshot(a->snapshot, snap);
	shm_toc_insert(pcxt->toc, KEY_SNAPSHOT, snap);

	pa->list.sh = sh;
	pa->list.offsets = shm_toc_allocate(pcxt->toc, listsize);
	pa->list.data = (const char *) (pa->list.offsets + max_files);
	shm_toc_insert(pcxt->toc, KEY_ENTRIES, (void *) pa->list.offsets);
	initStringInfo(&pa->list.pathbuf);
	pa->shared.root = sh->root;
	pa->shared.offsets = (Size *) pa->list.offsets;
	pa->shared.cap_n = max_files;
	pa->shared.data = (char *) pa->list.data;
	pa->shared.cap = max_bytes;

	/* without dynamic shared memory, nworkers is now 0 */
	queues = shm_toc_allocate(pcxt->toc, mul_size(QUEUE_SIZE, Max(1, pcxt->nworkers)));
	for (int i = 0; i < pcxt->nworkers; i++)
		shm_mq_set_receiver(shm_mq_create(queues + i * QUEUE_SIZE, QUEUE_SIZE),
							MyProc);
	shm_toc_insert(pcxt->toc, KEY_QUEUES, queues);

	LaunchParallelWorkers(pcxt);
	pa->launched = pcxt->nworkers_launched;
	pa->mqh = palloc0(sizeof(shm_mq_handle *) * Max(1, pa->launched));
	for (int i = 0; i < pa->launched; i++)
		pa->mqh[i] = shm_mq_attach((shm_mq *) (queues + i * QUEUE_SIZE), pcxt->seg,
								   pcxt->worker[i].bgwhandle);

	pa->filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw apply file",
										ALLOCSET_DEFAULT_SIZES);
	pa->analyzer = kabsd_analyzer_begin(root, opts->max_file_size, KABSD_ALL_NEEDS,
										CurrentMemoryContext);
	return pa;
}

/*
 * Lists a file for whoever takes it first.  When the list is full, the
 * leader reads the file itself at once.
 */
void
kabsd_parallel_add(ParallelApply *pa, Apply *a, const KbEntry *e,
				   ItemPointer files_tid)
{
	if (kabsd_worklist_add(&pa->shared, e, files_tid))
	{
		pg_write_barrier();		/* the entry before the count that shows it */
		pg_atomic_write_u64(&pa->list.sh->listed, (uint64) pa->shared.n);
	}
	else
	{
		kabsd_apply_file(a, pa->analyzer, e, files_tid, pa->filecxt);
		pa->overflow++;
	}
	/* keep the queues flowing while walking */
	if ((pa->shared.n & 63) == 0)
		take_messages(a, pa->mqh, pa->launched, false, &pa->worker_files);
}

/*
 * The list is complete: the leader reads files with the workers until
 * none is left, takes the rest of what they sent, and leaves parallel
 * mode.  Returns the number of workers that took part.
 */
int
kabsd_parallel_finish(ParallelApply *pa, Apply *a)
{
	ApplyShared *sh = pa->list.sh;
	int64		start,
				end;
	int64		leader_files = a->files_read - pa->overflow;
	int			launched = pa->launched;

	pg_write_barrier();
	pg_atomic_write_u32(&sh->walked, 1);
	while (take_files(sh, &start, &end))
		for (int64 i = start; i < end; i++)
		{
			read_file(a, &pa->list, i, pa->analyzer, pa->filecxt);
			take_messages(a, pa->mqh, pa->launched, false, &pa->worker_files);
		}
	take_messages(a, pa->mqh, pa->launched, true, &pa->worker_files);
	kabsd_scan_end(pa->analyzer);
	MemoryContextDelete(pa->filecxt);

	WaitForParallelWorkersToFinish(pa->pcxt);
	DestroyParallelContext(pa->pcxt);
	ExitParallelMode();

	/*
	 * Every file was read by someone, or the refresh fails: those listed,
	 * and those the leader read at once when the list was full.
	 */
	if (a->files_read - leader_files + pa->worker_files != pa->shared.n + pa->overflow)
		elog(ERROR, "parallel refresh read %lld of %lld files",
			 (long long) (a->files_read - leader_files + pa->worker_files),
			 (long long) (pa->shared.n + pa->overflow));
	a->files_read += pa->worker_files;
	pfree(pa->mqh);
	pfree(pa);
	return launched;
}
