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
#include "port/atomics.h"
#include "storage/shm_toc.h"
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

/* A worker's queue to the leader: room for a few files' rows. */
#define QUEUE_SIZE		((Size) 1024 * 1024)

/* Files taken at a time: few enough to share the tail evenly. */
#define CHUNK_FILES		16

typedef struct ApplyShared
{
	Oid			views[KT_COUNT];
	int64		max_file_size;
	int64		nentries;
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

/* The next few files nobody took: [*start, *end).  false when none. */
static bool
take_files(ApplyShared *sh, int64 *start, int64 *end)
{
	uint64		first = pg_atomic_fetch_add_u64(&sh->next, CHUNK_FILES);

	if (first >= (uint64) sh->nentries)
		return false;
	*start = (int64) first;
	*end = Min(sh->nentries, *start + CHUNK_FILES);
	return true;
}

static void
read_file(Apply *a, SharedList *list, int64 i, KabsdScan *analyzer,
		  MemoryContext filecxt)
{
	KbEntry		e;

	kabsd_worklist_entry(list->data + list->offsets[i], list->sh->root,
						 &list->pathbuf, &e);
	kabsd_apply_file(a, analyzer, &e, filecxt);
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
	list.data = (const char *) (list.offsets + list.sh->nentries);
	initStringInfo(&list.pathbuf);

	shm_mq_set_sender(mq, MyProc);
	kabsd_apply_begin(&a, APPLY_SEND, list.sh->views, snapshot);
	a.mqh = shm_mq_attach(mq, seg, NULL);
	analyzer = kabsd_analyzer_begin(list.sh->max_file_size, KABSD_ALL_NEEDS, cxt);

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
		elog(ERROR, "kabsd_fdw: short message from a parallel worker");
	memcpy(&msg, data, sizeof(msg));
	if (msg.table >= KT_COUNT)
		elog(ERROR, "kabsd_fdw: bad message from a parallel worker");
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
			elog(ERROR, "kabsd_fdw: bad message from a parallel worker");
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
 * Reads, parses and compares the files of wl with up to nworkers parallel
 * workers; a is in APPLY_COLLECT mode and keeps every difference.  Returns
 * the number of workers that took part.
 */
int
kabsd_apply_parallel(Apply *a, const Oid *relids, const KabsdOptions *opts,
					 const WorkList *wl, int nworkers)
{
	ParallelContext *pcxt;
	Size		rootlen = strlen(wl->root) + 1;
	Size		shsize = add_size(offsetof(ApplyShared, root), rootlen);
	Size		snapsize = EstimateSnapshotSpace(a->snapshot);
	Size		listsize = add_size(mul_size(sizeof(Size), wl->n), wl->len);
	SharedList	list;
	char	   *snap;
	char	   *queues;
	shm_mq_handle **mqh;
	KabsdScan  *analyzer;
	MemoryContext filecxt;
	int			launched;
	int64		files_read = 0;
	int64		start,
				end;

	EnterParallelMode();
	pcxt = CreateParallelContext("kabsd_fdw", "kabsd_apply_worker_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, shsize);
	shm_toc_estimate_chunk(&pcxt->estimator, snapsize);
	shm_toc_estimate_chunk(&pcxt->estimator, listsize);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(QUEUE_SIZE, nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);

	list.sh = shm_toc_allocate(pcxt->toc, shsize);
	memcpy(list.sh->views, relids, sizeof(Oid) * KT_COUNT);
	list.sh->max_file_size = opts->max_file_size;
	list.sh->nentries = wl->n;
	pg_atomic_init_u64(&list.sh->next, 0);
	memcpy(list.sh->root, wl->root, rootlen);
	shm_toc_insert(pcxt->toc, KEY_SHARED, list.sh);

	snap = shm_toc_allocate(pcxt->toc, snapsize);
	SerializeSnapshot(a->snapshot, snap);
	shm_toc_insert(pcxt->toc, KEY_SNAPSHOT, snap);

	list.offsets = shm_toc_allocate(pcxt->toc, listsize);
	memcpy((Size *) list.offsets, wl->offsets, sizeof(Size) * wl->n);
	list.data = (const char *) (list.offsets + wl->n);
	memcpy((char *) list.data, wl->data, wl->len);
	shm_toc_insert(pcxt->toc, KEY_ENTRIES, (void *) list.offsets);
	initStringInfo(&list.pathbuf);

	/* without dynamic shared memory, nworkers is now 0 */
	queues = shm_toc_allocate(pcxt->toc, mul_size(QUEUE_SIZE, Max(1, pcxt->nworkers)));
	for (int i = 0; i < pcxt->nworkers; i++)
		shm_mq_set_receiver(shm_mq_create(queues + i * QUEUE_SIZE, QUEUE_SIZE),
							MyProc);
	shm_toc_insert(pcxt->toc, KEY_QUEUES, queues);

	LaunchParallelWorkers(pcxt);
	launched = pcxt->nworkers_launched;
	mqh = palloc0(sizeof(shm_mq_handle *) * Max(1, launched));
	for (int i = 0; i < launched; i++)
		mqh[i] = shm_mq_attach((shm_mq *) (queues + i * QUEUE_SIZE), pcxt->seg,
							   pcxt->worker[i].bgwhandle);

	/* the leader reads too, and keeps the queues flowing between files */
	filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw apply file",
									ALLOCSET_DEFAULT_SIZES);
	analyzer = kabsd_analyzer_begin(opts->max_file_size, KABSD_ALL_NEEDS,
									CurrentMemoryContext);
	while (take_files(list.sh, &start, &end))
		for (int64 i = start; i < end; i++)
		{
			read_file(a, &list, i, analyzer, filecxt);
			take_messages(a, mqh, launched, false, &files_read);
		}
	take_messages(a, mqh, launched, true, &files_read);
	kabsd_scan_end(analyzer);
	MemoryContextDelete(filecxt);

	WaitForParallelWorkersToFinish(pcxt);
	DestroyParallelContext(pcxt);
	ExitParallelMode();

	/* every file listed was read by someone, or the refresh fails */
	if (a->files_read + files_read != wl->n)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("parallel refresh read %lld of %lld files",
						(long long) (a->files_read + files_read), (long long) wl->n)));
	a->files_read += files_read;
	return launched;
}
