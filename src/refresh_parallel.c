/*-------------------------------------------------------------------------
 *
 * refresh_parallel.c
 *		  A refresh that must read many files shares the reading, parsing
 *		  and comparing with parallel workers.
 *
 * The leader has walked the tree and listed the files to read; the list
 * goes into shared memory, and the leader and each worker take the next
 * few files from it until none is left, so a slow file never holds up the
 * rest.  Every participant compares with the leader's snapshot (workers
 * restore it and share the leader's locks, as a parallel index build's
 * workers do).  Nobody may write in parallel mode: a worker's diff sink
 * sends the rows to insert and delete to the leader through a message
 * queue, and the leader hands them to its own sink, which keeps them (a
 * tuplestore, which spills to disk past work_mem) until the workers are
 * done.  This file calls the diff and nothing else of the refresh.
 *
 * How many workers: max_parallel_maintenance_workers, as for CREATE INDEX,
 * when at least kabsd_fdw.min_parallel_refresh_files files are to be read.
 * Fewer or none may start (max_worker_processes, max_parallel_workers);
 * the leader then reads what nobody else takes.
 *
 * src/refresh_parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

PGDLLEXPORT void kabsd_refresh_worker_main(dsm_segment *seg, shm_toc *toc);

/* kabsd_fdw.min_parallel_refresh_files */
int			kabsd_min_parallel_refresh_files = 1000;

/* Keys of the shared memory table of contents ("kabsd" and a number). */
#define KEY_SHARED		UINT64CONST(0x6B61627364000001)
#define KEY_SNAPSHOT	UINT64CONST(0x6B61627364000002)
#define KEY_ENTRIES		UINT64CONST(0x6B61627364000003)
#define KEY_QUEUES		UINT64CONST(0x6B61627364000004)

/*
 * A message from a worker to the leader: a row to insert (a MinimalTuple
 * follows the header, MAXALIGNed), a row to delete, or the worker's
 * totals (a WorkerTotals follows).
 */
typedef struct WorkerMsg
{
	char		op;				/* 'i', 'd' or 't' */
	uint8		table;
	ItemPointerData tid;
} WorkerMsg;

typedef struct WorkerTotals
{
	uint64		targets_sum;
	int64		errors_delta;
	int64		files_read;
} WorkerTotals;

/* the header of a message is sent as it is, with the padding MAXALIGN adds */
StaticAssertDecl(sizeof(WorkerMsg) == MAXALIGN(sizeof(WorkerMsg)),
				 "WorkerMsg must need no padding");

/* A worker's queue to the leader: room for a few files' rows. */
#define QUEUE_SIZE		((Size) 1024 * 1024)

/* Files taken at a time: few enough to share the tail evenly. */
#define CHUNK_FILES		16

typedef struct RefreshShared
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
} RefreshShared;

/* The leader's side. */
struct ParallelRefresh
{
	ParallelContext *pcxt;
	RefreshShared *sh;
	WorkList	shared;			/* the list, in shared memory */
	StringInfoData pathbuf;
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
take_files(RefreshShared *sh, int64 *start, int64 *end)
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

/* The sink of a worker: every difference goes to the leader. */
static void
send_msg(RefreshState *rs, const WorkerMsg *msg, const void *tuple, Size len)
{
	shm_mq_iovec iov[2];
	shm_mq_result res;

	iov[0].data = (const char *) msg;
	iov[0].len = MAXALIGN(sizeof(WorkerMsg));
	iov[1].data = tuple;
	iov[1].len = len;
	res = shm_mq_sendv(rs->mqh, iov, tuple ? 2 : 1, false, false);
	/* the leader detached: it failed, and its error is the one reported */
	if (res != SHM_MQ_SUCCESS)
		elog(ERROR, "could not send changes to the refreshing backend");
}

static void
send_insert(RefreshState *rs, SnapTable *st, TupleTableSlot *slot)
{
	bool		should_free;
	MinimalTuple tup = ExecFetchSlotMinimalTuple(slot, &should_free);
	WorkerMsg	msg = {'i', (uint8) st->table};

	send_msg(rs, &msg, tup, tup->t_len);
	if (should_free)
		pfree(tup);
}

static void
send_delete(RefreshState *rs, SnapTable *st, ItemPointer tid)
{
	WorkerMsg	msg = {'d', (uint8) st->table};

	msg.tid = *tid;
	send_msg(rs, &msg, NULL, 0);
}

static const DiffSink send_to_leader = {send_insert, send_delete};

/* The shared list, as a participant reads it. */
static void
shared_list(shm_toc *toc, RefreshShared *sh, WorkList *wl)
{
	memset(wl, 0, sizeof(*wl));
	wl->root = sh->root;
	wl->offsets = shm_toc_lookup(toc, KEY_ENTRIES, false);
	wl->data = (char *) (wl->offsets + sh->max_files);
	wl->cap_n = sh->max_files;
	wl->cap = sh->max_bytes;
}

static void
read_file(RefreshState *rs, const WorkList *wl, StringInfo pathbuf, int64 i,
		  KabsdScan *analyzer, MemoryContext filecxt)
{
	KbEntry		e;
	ItemPointerData files_tid;

	kabsd_worklist_entry(wl, i, pathbuf, &e, &files_tid);
	kabsd_diff_file(rs, analyzer, &e, &files_tid, filecxt);
}

/* A worker: reads and compares files until none is left. */
void
kabsd_refresh_worker_main(dsm_segment *seg, shm_toc *toc)
{
	RefreshShared *sh = shm_toc_lookup(toc, KEY_SHARED, false);
	char	   *queues = shm_toc_lookup(toc, KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + ParallelWorkerNumber * QUEUE_SIZE);
	Snapshot	snapshot = RestoreSnapshot(shm_toc_lookup(toc, KEY_SNAPSHOT, false));
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "kabsd_fdw refresh worker",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MemoryContext filecxt = AllocSetContextCreate(cxt, "kabsd_fdw refresh file",
												  ALLOCSET_DEFAULT_SIZES);
	KabsdScan  *analyzer;
	RefreshState rs;
	WorkList	wl;
	StringInfoData pathbuf;
	WorkerMsg	msg = {'t'};
	WorkerTotals totals;
	shm_mq_iovec iov[2];
	int64		start,
				end;

	shared_list(toc, sh, &wl);
	initStringInfo(&pathbuf);
	shm_mq_set_sender(mq, MyProc);
	kabsd_diff_begin(&rs, NameStr(sh->backlog), sh->tables, snapshot, false);
	rs.sink = &send_to_leader;
	rs.mqh = shm_mq_attach(mq, seg, NULL);
	analyzer = kabsd_analyzer_begin(sh->root, sh->max_file_size,
									KB_NEED_ALL, cxt);

	while (take_files(sh, &start, &end))
		for (int64 i = start; i < end; i++)
			read_file(&rs, &wl, &pathbuf, i, analyzer, filecxt);

	totals.targets_sum = rs.targets_sum;
	totals.errors_delta = rs.errors_delta;
	totals.files_read = rs.files_read;
	iov[0].data = (const char *) &msg;
	iov[0].len = MAXALIGN(sizeof(msg));
	iov[1].data = (const char *) &totals;
	iov[1].len = sizeof(totals);
	(void) shm_mq_sendv(rs.mqh, iov, 2, false, true);

	kabsd_scan_end(analyzer);
	shm_mq_detach(rs.mqh);
	rs.mqh = NULL;
	kabsd_diff_end(&rs);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* One message from a worker, handed to the leader's sink. */
static void
take_message(RefreshState *rs, Size nbytes, const char *data, int64 *files_read)
{
	WorkerMsg	msg;
	Size		hdr = MAXALIGN(sizeof(WorkerMsg));
	SnapTable  *st;

	if (nbytes < hdr)
		elog(ERROR, "short message from a parallel refresh worker");
	memcpy(&msg, data, sizeof(msg));
	if (msg.table >= KT_COUNT)
		elog(ERROR, "unexpected message from a parallel refresh worker");
	st = &rs->t[msg.table];
	switch (msg.op)
	{
		case 'i':
			ExecStoreMinimalTuple((MinimalTuple) (data + hdr), st->min_slot, false);
			rs->sink->insert(rs, st, st->min_slot);
			ExecClearTuple(st->min_slot);
			break;
		case 'd':
			rs->sink->delete(rs, st, &msg.tid);
			break;
		case 't':
			{
				WorkerTotals t;

				memcpy(&t, data + hdr, sizeof(t));
				rs->targets_sum += t.targets_sum;
				rs->errors_delta += t.errors_delta;
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
take_messages(RefreshState *rs, shm_mq_handle **mqh, int n, bool wait,
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
			take_message(rs, nbytes, data, files_read);
		}
	}
}

/*
 * Enters parallel mode and starts up to nworkers workers, with room for
 * max_files files of max_bytes in the shared list.  The leader's sink must
 * keep what it is given: nobody may write from here on.
 */
ParallelRefresh *
kabsd_parallel_begin(RefreshState *rs, const Oid *relids, const KabsdOptions *opts,
					 const char *root, int64 max_files, Size max_bytes,
					 int nworkers)
{
	ParallelRefresh *pr = palloc0(sizeof(ParallelRefresh));
	ParallelContext *pcxt;
	RefreshShared *sh;
	Size		rootlen = strlen(root) + 1;
	Size		shsize = add_size(offsetof(RefreshShared, root), rootlen);
	Size		snapsize = EstimateSnapshotSpace(rs->snapshot);
	Size		listsize = add_size(mul_size(sizeof(Size), max_files), max_bytes);
	char	   *snap;
	char	   *queues;

	EnterParallelMode();
	pcxt = CreateParallelContext("kabsd_fdw", "kabsd_refresh_worker_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, shsize);
	shm_toc_estimate_chunk(&pcxt->estimator, snapsize);
	shm_toc_estimate_chunk(&pcxt->estimator, listsize);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(QUEUE_SIZE, nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, 4);
	InitializeParallelDSM(pcxt);
	pr->pcxt = pcxt;
	/* what the workers change in targets comes as a sum, never as a list */
	rs->parallel_used = true;

	sh = shm_toc_allocate(pcxt->toc, shsize);
	memcpy(sh->tables, relids, sizeof(Oid) * KT_COUNT);
	namestrcpy(&sh->backlog, rs->backlog_name);
	sh->max_file_size = opts->max_file_size;
	sh->max_files = max_files;
	sh->max_bytes = max_bytes;
	pg_atomic_init_u64(&sh->listed, 0);
	pg_atomic_init_u32(&sh->walked, 0);
	pg_atomic_init_u64(&sh->next, 0);
	memcpy(sh->root, root, rootlen);
	shm_toc_insert(pcxt->toc, KEY_SHARED, sh);
	pr->sh = sh;

	snap = shm_toc_allocate(pcxt->toc, snapsize);
	SerializeSnapshot(rs->snapshot, snap);
	shm_toc_insert(pcxt->toc, KEY_SNAPSHOT, snap);

	shm_toc_insert(pcxt->toc, KEY_ENTRIES, shm_toc_allocate(pcxt->toc, listsize));
	shared_list(pcxt->toc, sh, &pr->shared);
	initStringInfo(&pr->pathbuf);

	/* without dynamic shared memory, nworkers is now 0 */
	queues = shm_toc_allocate(pcxt->toc, mul_size(QUEUE_SIZE, Max(1, pcxt->nworkers)));
	for (int i = 0; i < pcxt->nworkers; i++)
		shm_mq_set_receiver(shm_mq_create(queues + i * QUEUE_SIZE, QUEUE_SIZE),
							MyProc);
	shm_toc_insert(pcxt->toc, KEY_QUEUES, queues);

	LaunchParallelWorkers(pcxt);
	pr->launched = pcxt->nworkers_launched;
	pr->mqh = palloc0(sizeof(shm_mq_handle *) * Max(1, pr->launched));
	for (int i = 0; i < pr->launched; i++)
		pr->mqh[i] = shm_mq_attach((shm_mq *) (queues + i * QUEUE_SIZE), pcxt->seg,
								   pcxt->worker[i].bgwhandle);

	pr->filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw refresh file",
										ALLOCSET_DEFAULT_SIZES);
	pr->analyzer = kabsd_analyzer_begin(root, opts->max_file_size, KB_NEED_ALL,
										CurrentMemoryContext);
	return pr;
}

/*
 * Lists a file for whoever takes it first.  When the list is full, the
 * leader reads the file itself at once.
 */
void
kabsd_parallel_add(ParallelRefresh *pr, RefreshState *rs, const KbEntry *e,
				   ItemPointer files_tid)
{
	if (kabsd_worklist_add(&pr->shared, e, files_tid))
	{
		pg_write_barrier();		/* the entry before the count that shows it */
		pg_atomic_write_u64(&pr->sh->listed, (uint64) pr->shared.n);
	}
	else
	{
		kabsd_diff_file(rs, pr->analyzer, e, files_tid, pr->filecxt);
		pr->overflow++;
	}
	/* keep the queues flowing while walking */
	if ((pr->shared.n & 63) == 0)
		take_messages(rs, pr->mqh, pr->launched, false, &pr->worker_files);
}

/*
 * The list is complete: the leader reads files with the workers until
 * none is left, takes the rest of what they sent, and leaves parallel
 * mode.  Returns the number of workers that took part.
 */
int
kabsd_parallel_finish(ParallelRefresh *pr, RefreshState *rs)
{
	RefreshShared *sh = pr->sh;
	int64		start,
				end;
	int64		leader_files = rs->files_read - pr->overflow;
	int			launched = pr->launched;

	pg_write_barrier();
	pg_atomic_write_u32(&sh->walked, 1);
	while (take_files(sh, &start, &end))
		for (int64 i = start; i < end; i++)
		{
			read_file(rs, &pr->shared, &pr->pathbuf, i, pr->analyzer, pr->filecxt);
			take_messages(rs, pr->mqh, pr->launched, false, &pr->worker_files);
		}
	take_messages(rs, pr->mqh, pr->launched, true, &pr->worker_files);
	kabsd_scan_end(pr->analyzer);
	MemoryContextDelete(pr->filecxt);

	WaitForParallelWorkersToFinish(pr->pcxt);
	DestroyParallelContext(pr->pcxt);
	ExitParallelMode();

	/*
	 * Every file was read by someone, or the refresh fails: those listed,
	 * and those the leader read at once when the list was full.
	 */
	if (rs->files_read - leader_files + pr->worker_files != pr->shared.n + pr->overflow)
		elog(ERROR, "parallel refresh read %lld of %lld files",
			 (long long) (rs->files_read - leader_files + pr->worker_files),
			 (long long) (pr->shared.n + pr->overflow));
	rs->files_read += pr->worker_files;
	pfree(pr->mqh);
	pfree(pr);
	return launched;
}
