/*-------------------------------------------------------------------------
 *
 * watch.c
 *		  The watcher: a background worker that keeps the snapshots of the
 *		  watched backlogs (kabsd.backlogs.watch) up to date with their files.
 *
 * One static worker, registered only when the library is preloaded and
 * kabsd_fdw.watch_database names a database, connects to that database
 * and watches every directory under each watched root with inotify.  The
 * changed paths are collected; after a quiet period following the last
 * event (kabsd_fdw.watch_quiet_ms), and never later than
 * kabsd_fdw.watch_max_delay_ms after the first, only those paths are
 * refreshed, by kabsd_refresh(name, paths => ...) in a transaction of its
 * own.  What inotify cannot vouch for (a queue overflow, a start, a root
 * created again, too many paths) falls back to a refresh that walks the
 * whole tree, with a LOG line saying why; where inotify cannot be used
 * (kabsd_fdw.watch_mode = poll, or a watch limit reached: the kernel's or
 * kabsd_fdw.watch_max_directories) the backlog is refreshed on an interval
 * instead, whose unchanged case is one walk; a reload tries inotify again.
 *
 * The directories watched are those the walk (src/core/walk.c) enters,
 * symbolic links to directories inside the root among them: a directory
 * reached by several paths has one watch, and an event there is one at
 * each path.  A link whose target changes sends no event of its own, so
 * after a directory or a link appears, moves or goes, every link seen is
 * resolved again, and one that resolves differently is refreshed whole.
 *
 * For kabsd_status(), the watcher publishes in shared memory how many
 * paths of each backlog wait for a refresh, and since when.
 *
 * The worker holds no transaction while it waits, and waits on its latch
 * and the inotify descriptors only: nothing runs while nothing changes.
 * kabsd_watch() and kabsd_unwatch() change kabsd.backlogs, whose trigger
 * bumps a generation counter in shared memory and sets the worker's latch
 * when the transaction commits; the worker then reads the watched set
 * again.
 *
 * src/watch.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/string.h"
#include "commands/trigger.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* Settings */
typedef enum WatchMode
{
	WATCH_MODE_INOTIFY,
	WATCH_MODE_POLL
} WatchMode;

static const struct config_enum_entry watch_mode_options[] = {
	{"inotify", WATCH_MODE_INOTIFY, false},
	{"poll", WATCH_MODE_POLL, false},
	{NULL, 0, false}
};

char	   *kabsd_watch_database = NULL;
static int	kabsd_watch_mode = WATCH_MODE_INOTIFY;
static int	kabsd_watch_quiet_ms = 200;
static int	kabsd_watch_max_delay_ms = 1000;
static int	kabsd_watch_poll_interval_ms = 2000;
static int	kabsd_watch_max_directories = 0;

/* A backlog whose changed paths are more than this is refreshed whole. */
#define WATCH_MAX_PATHS			10000

/* A failed refresh is tried again after 1 s, doubling up to 60 s. */
#define WATCH_RETRY_MIN_MS		1000
#define WATCH_RETRY_MAX_MS		60000

/* How often a root that is gone, or a failed read of the list, is retried. */
#define WATCH_RECHECK_MS		1000

/*
 * At most this many reads of a backlog's inotify queue (8 kB each) in a
 * pass of the main loop: the rest waits for the next pass (the descriptor
 * stays readable), so that a flood of events does not hold back the
 * refreshes that are due, nor a reload.
 */
#define WATCH_MAX_READS			64

/*
 * What is watched on each directory.  IN_MODIFY only moves the quiet
 * period on while a file is being written; IN_DONT_FOLLOW and IN_ONLYDIR
 * keep a watch on the directory itself, never on a link's target.
 */
#define WATCH_MASK	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | \
					 IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | \
					 IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW | \
					 IN_ONLYDIR | IN_EXCL_UNLINK)

/*
 * How many watched backlogs kabsd_status() can show the pending paths of
 * (those after, in name order, show NULL).
 */
#define WATCH_SHARED_BACKLOGS	256

/* What waits for a backlog's refresh, as the watcher last published it. */
typedef struct WatchPending
{
	char		name[NAMEDATALEN];	/* kabsd.backlogs.name */
	int64		npending;		/* paths waiting; a whole-tree refresh counts 1 */
	TimestampTz since;			/* when the oldest began waiting; 0: none */
} WatchPending;

/* What the backends and the watcher share. */
typedef struct WatchShared
{
	slock_t		mutex;			/* guards the fields up to generation */
	pid_t		pid;			/* the watcher's, 0 when it is not running */
	Oid			dboid;			/* the database it watches in */
	Latch	   *latch;			/* set to wake it */
	uint64		generation;		/* bumped when kabsd.backlogs changes */
	LWLock	   *lock;			/* guards nbacklogs and backlogs */
	int			nbacklogs;		/* entries of backlogs in use */
	WatchPending backlogs[WATCH_SHARED_BACKLOGS];
} WatchShared;

static WatchShared *watch_shared = NULL;

/*
 * A directory under watch: the watch descriptor's key.  Its paths are
 * those the walk lists it under: one, or more when symbolic links inside
 * the root lead to it.
 */
typedef struct WatchedDir
{
	int			wd;				/* hash key */
	List	   *paths;			/* relative to the root; "" for the root */
} WatchedDir;

/*
 * A symbolic link met while adding watches, followed or not: what it
 * resolved to then, to tell when that changes.
 */
typedef struct WatchLink
{
	char	   *relpath;		/* hash key: the link's path */
	char	   *target;			/* resolved, when the walk follows it; else NULL */
	dev_t		dev;			/* the target's, when followed */
	ino_t		ino;
} WatchLink;

/*
 * A directory on add_watches' way, with the one it was reached from: the
 * walk enters no directory that is already on its way down.
 */
typedef struct WatchFrame
{
	char	   *rel;			/* relative to the root */
	char	   *abs;			/* resolved, as the walk resolves it */
	dev_t		dev;
	ino_t		ino;
	struct WatchFrame *up;		/* NULL for the root */
} WatchFrame;

/*
 * A changed path waiting for the refresh; keyed by the string it points at
 * (so are WatchLinks: path_hash and path_match serve both).
 */
typedef struct PendingPath
{
	char	   *path;			/* hash key (the pointer, compared as text) */
} PendingPath;

/* A watched backlog, in the watcher. */
typedef struct Watched
{
	char	   *name;			/* kabsd.backlogs.name */
	char	   *root;			/* kabsd.backlogs.root, as written there */
	char	   *realroot;		/* resolved, as the walk resolves it */
	MemoryContext cxt;			/* everything of this backlog */
	MemoryContext dirs_cxt;		/* dirs and its paths, deleted by watch_close */
	MemoryContext pending_cxt;	/* the pending paths, reset after a refresh */
	int			fd;				/* inotify instance, -1 when none */
	int			rootwd;			/* the root's watch descriptor */
	HTAB	   *dirs;			/* wd -> WatchedDir */
	HTAB	   *links;			/* links met (WatchLink), in dirs_cxt */
	bool		links_moved;	/* a directory or link came or went: links
								 * are resolved again */
	HTAB	   *pending;		/* changed paths (PendingPath) */
	int			npending;
	bool		full;			/* the next refresh walks the whole tree */
	bool		polled;			/* refreshed every poll interval instead */
	bool		fallback;		/* polled because inotify could not follow it */
	bool		lost;			/* the root is gone: looked for again */
	TimestampTz first_event;	/* of what is pending; 0 when nothing is */
	TimestampTz last_event;
	TimestampTz pending_since;	/* when what is pending began to wait */
	TimestampTz next_check;		/* polled: next refresh; lost: next look */
	TimestampTz retry_at;		/* after a failure: not before this */
	int			retry_ms;		/* 0: the last refresh succeeded */
} Watched;

/* The watcher's state */
static MemoryContext watch_cxt = NULL;
static MemoryContext loop_cxt = NULL;	/* a pass's temporaries, reset each pass */
static List *watched = NIL;		/* of Watched * */
static WaitEventSet *wait_set = NULL;
static bool wait_set_stale = true;
static uint64 seen_generation = 0;
static bool reload_needed = true;
static TimestampTz reload_at = 0;	/* after a failed read of the list */
static int	current_mode = WATCH_MODE_INOTIFY;
static char *refresh_function = NULL;	/* quoted, schema-qualified */
static int	nwatches = 0;		/* inotify watches held, all backlogs' */
static bool refresh_has_paths = false;	/* kabsd_refresh(paths => ...) */

/* A backend: wake the watcher when its transaction commits. */
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

PG_FUNCTION_INFO_V1(kabsd_watch_check);
PG_FUNCTION_INFO_V1(kabsd_watch_changed);
PG_FUNCTION_INFO_V1(kabsd_watch_pending);

PGDLLEXPORT void kabsd_watch_main(Datum main_arg);

static void watch_shmem_request(void);
static void watch_shmem_startup(void);
static void watch_xact_callback(XactEvent event, void *arg);
static void watch_wake(void);
static void watch_detach_shmem(int code, Datum arg);
static void reload_watched(bool starting);
static Watched *watched_new(const char *name, const char *root);
static void watched_free(Watched *w);
static void watch_setup(Watched *w, const char *why);
static void watch_close(Watched *w);
static bool add_watches(Watched *w, const char *relpath);
static WatchFrame *frame_above(Watched *w, const char *relpath);
static List *visit_child(Watched *w, WatchFrame *up, const char *name,
						 List *todo);
static bool walk_follows(Watched *w, const WatchFrame *up, const char *abs,
						 char *target, struct stat *st);
static void record_link(Watched *w, const char *relpath, const char *target,
						const struct stat *st);
static bool recheck_links(Watched *w);
static void drop_watches_under(Watched *w, const char *relpath);
static void forget_dir(Watched *w, WatchedDir *d);
static void read_events(Watched *w);
static bool handle_event(Watched *w, const struct inotify_event *ev);
static void add_pending(Watched *w, const char *relpath);
static void need_full(Watched *w, const char *why);
static void go_polled(Watched *w);
static void watch_limit_reached(Watched *w, const char *abs, bool ours);
static void publish_pending(void);
static void clear_pending(Watched *w);
static TimestampTz due_time(Watched *w);
static void refresh_backlog(Watched *w, bool polled);
static char *run_refresh(Watched *w, bool whole, bool *gone);
static char **sorted_pending(Watched *w);
static void rebuild_wait_set(void);
static void report_watching(void);
static HTAB *path_table(const char *name, Size entrysize, long nelem,
						MemoryContext cxt);
static uint32 path_hash(const void *key, Size keysize);
static int	path_match(const void *key1, const void *key2, Size keysize);

/*
 * Defines the settings, and under shared_preload_libraries asks for the
 * shared state and registers the worker when a database is named.  Called
 * by _PG_init.  Without the library preloaded, kabsd_fdw.watch_database
 * does not exist (as pg_stat_statements' PGC_POSTMASTER settings).
 */
void
kabsd_watch_init(void)
{
	BackgroundWorker worker;

	DefineCustomEnumVariable("kabsd_fdw.watch_mode",
							 "Sets how the watcher follows the files: inotify, or poll on an interval.",
							 "poll is for file systems where inotify reports nothing (network file systems, some container mounts).",
							 &kabsd_watch_mode,
							 WATCH_MODE_INOTIFY, watch_mode_options,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("kabsd_fdw.watch_quiet_ms",
							"Sets how long the watcher waits after the last change before it refreshes.",
							NULL,
							&kabsd_watch_quiet_ms,
							200, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kabsd_fdw.watch_max_delay_ms",
							"Sets the longest the watcher waits after a first change before it refreshes.",
							"A steady stream of changes is still refreshed this often.",
							&kabsd_watch_max_delay_ms,
							1000, 0, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kabsd_fdw.watch_poll_interval_ms",
							"Sets how often the watcher refreshes a backlog it polls.",
							NULL,
							&kabsd_watch_poll_interval_ms,
							2000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("kabsd_fdw.watch_max_directories",
							"Sets the most directories the watcher watches with inotify, over all backlogs.",
							"0 sets no limit but the kernel's (fs.inotify.max_user_watches). A backlog that would need more is polled instead.",
							&kabsd_watch_max_directories,
							0, 0, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	/* a PGC_POSTMASTER setting can only be defined at the server's start */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomStringVariable("kabsd_fdw.watch_database",
							   "Sets the database whose watched backlogs the watcher refreshes.",
							   "Empty: no watcher. Takes effect when kabsd_fdw is in shared_preload_libraries.",
							   &kabsd_watch_database,
							   "",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	/* the shared state exists whenever preloaded, so backends can tell */
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = watch_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = watch_shmem_startup;

	if (kabsd_watch_database == NULL || kabsd_watch_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "kabsd_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "kabsd_watch_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "kabsd_fdw watcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "kabsd_fdw watcher");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

static void
watch_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WatchShared)));
	RequestNamedLWLockTranche("kabsd_fdw watcher", 1);
}

static void
watch_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	watch_shared = ShmemInitStruct("kabsd_fdw watcher", sizeof(WatchShared),
								   &found);
	if (!found)
	{
		memset(watch_shared, 0, sizeof(WatchShared));
		SpinLockInit(&watch_shared->mutex);
		watch_shared->lock = &(GetNamedLWLockTranche("kabsd_fdw watcher"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * kabsd_watch_check(root): what kabsd_watch() needs of the server and of
 * the root.  The watcher must be configured for this database; the root
 * must take an inotify watch (in poll mode, be a directory), tried here,
 * in a backend of the same operating-system user as the watcher.
 */
Datum
kabsd_watch_check(PG_FUNCTION_ARGS)
{
	char	   *root = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *dbname = get_database_name(MyDatabaseId);
	pid_t		pid = 0;
	Oid			dboid = InvalidOid;

	/*
	 * It probes a server path, as the root option does: for the same roles
	 * (the SQL script grants EXECUTE to pg_read_server_files only; this is
	 * for a GRANT made by hand).
	 */
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to watch directory \"%s\"", root),
				 errdetail("Only roles with privileges of the \"%s\" role may watch a backlog directory.",
						   "pg_read_server_files")));

	if (watch_shared == NULL || kabsd_watch_database == NULL ||
		dbname == NULL || strcmp(kabsd_watch_database, dbname) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the kabsd_fdw watcher does not run in database \"%s\"",
						dbname ? dbname : "?"),
				 watch_shared == NULL ?
				 errdetail("kabsd_fdw is not in shared_preload_libraries.") :
				 errdetail("kabsd_fdw.watch_database is \"%s\".",
						   kabsd_watch_database ? kabsd_watch_database : ""),
				 errhint("Add kabsd_fdw to shared_preload_libraries and set kabsd_fdw.watch_database to \"%s\" in postgresql.conf, then restart the server.",
						 dbname ? dbname : "?")));

	SpinLockAcquire(&watch_shared->mutex);
	pid = watch_shared->pid;
	dboid = watch_shared->dboid;
	SpinLockRelease(&watch_shared->mutex);
	/* configured but not up: between a crash and its restart, say */
	if (pid == 0 || dboid != MyDatabaseId)
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the kabsd_fdw watcher is not running"),
				 errdetail("The backlog is watched once the watcher starts."),
				 errhint("The server log says why it stopped; it is restarted a few seconds after a crash.")));

	if (kabsd_watch_mode == WATCH_MODE_POLL)
	{
		struct stat st;

		if (stat(root, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not access directory \"%s\": %m", root)));
		if (!S_ISDIR(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a directory", root)));
	}
	else
	{
		int			fd = inotify_init1(IN_CLOEXEC);
		int			save_errno;

		if (fd < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not initialize inotify: %m"),
					 errhint("Raise fs.inotify.max_user_instances, or set kabsd_fdw.watch_mode to \"poll\".")));
		if (inotify_add_watch(fd, root, WATCH_MASK) < 0)
		{
			save_errno = errno;
			close(fd);
			errno = save_errno;
			if (save_errno == ENOSPC)
				ereport(ERROR,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("could not watch directory \"%s\": %m", root),
						 errhint("Raise fs.inotify.max_user_watches, or set kabsd_fdw.watch_mode to \"poll\".")));
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not watch directory \"%s\": %m", root)));
		}
		close(fd);
	}
	PG_RETURN_VOID();
}

/*
 * The trigger on kabsd.backlogs: the watched set may have changed, so the
 * watcher reads it again once this transaction commits (not before: it
 * would not see the change).
 */
Datum
kabsd_watch_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "kabsd_watch_changed: not called as a trigger");
	if (watch_shared != NULL)
	{
		if (!xact_callback_registered)
		{
			RegisterXactCallback(watch_xact_callback, NULL);
			xact_callback_registered = true;
		}
		wake_at_commit = true;
	}
	PG_RETURN_POINTER(NULL);
}

/*
 * XXX A prepared transaction wakes the watcher at PREPARE, when the change
 * is not visible yet; the change is seen at the watcher's next wake-up.
 */
static void
watch_xact_callback(XactEvent event, void *arg)
{
	if (!wake_at_commit)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			watch_wake();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

static void
watch_wake(void)
{
	Latch	   *latch;

	if (watch_shared == NULL)
		return;
	SpinLockAcquire(&watch_shared->mutex);
	watch_shared->generation++;
	latch = watch_shared->latch;
	SpinLockRelease(&watch_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * kabsd_watch_pending(name): for kabsd_status(), how many changed paths of
 * a backlog the watcher holds for its next refresh, and since when the
 * oldest waits (NULL when none does), as it last published them.  Both
 * NULL when no watcher runs in this database, or it does not follow the
 * backlog (yet).
 */
Datum
kabsd_watch_pending(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TupleDesc	tupdesc;
	Datum		values[2] = {0, 0};
	bool		nulls[2] = {true, true};
	pid_t		pid = 0;
	Oid			dboid = InvalidOid;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (watch_shared != NULL)
	{
		SpinLockAcquire(&watch_shared->mutex);
		pid = watch_shared->pid;
		dboid = watch_shared->dboid;
		SpinLockRelease(&watch_shared->mutex);
	}
	if (pid != 0 && dboid == MyDatabaseId)
	{
		LWLockAcquire(watch_shared->lock, LW_SHARED);
		for (int i = 0; i < watch_shared->nbacklogs; i++)
		{
			WatchPending *p = &watch_shared->backlogs[i];

			if (strcmp(p->name, name) != 0)
				continue;
			values[0] = Int64GetDatum(p->npending);
			nulls[0] = false;
			if (p->since != 0)
			{
				values[1] = TimestampTzGetDatum(p->since);
				nulls[1] = false;
			}
			break;
		}
		LWLockRelease(watch_shared->lock);
	}
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * What waits for each backlog's refresh, for kabsd_watch_pending(): written
 * before each wait, whole (under a hundred bytes a backlog, under an LWLock
 * that readers take shared).
 */
static void
publish_pending(void)
{
	int			n = 0;
	ListCell   *lc;

	LWLockAcquire(watch_shared->lock, LW_EXCLUSIVE);
	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);
		WatchPending *p;

		if (n >= WATCH_SHARED_BACKLOGS)
			break;
		if (strlen(w->name) >= NAMEDATALEN)
			continue;			/* not a name kabsd_attach() gives */
		p = &watch_shared->backlogs[n++];
		strlcpy(p->name, w->name, NAMEDATALEN);
		p->npending = w->full ? Max(w->npending, 1) : w->npending;
		p->since = w->pending_since;
	}
	watch_shared->nbacklogs = n;
	LWLockRelease(watch_shared->lock);
}

static void
watch_detach_shmem(int code, Datum arg)
{
	SpinLockAcquire(&watch_shared->mutex);
	watch_shared->pid = 0;
	watch_shared->dboid = InvalidOid;
	watch_shared->latch = NULL;
	SpinLockRelease(&watch_shared->mutex);
}

/*
 * The worker.  SIGTERM is die(): the next CHECK_FOR_INTERRUPTS ends it
 * with FATAL, which the postmaster restarts after bgw_restart_time unless
 * the server is shutting down.
 *
 * SIGINT (pg_cancel_backend) is ignored.  The worker runs no statement of
 * a client's: while it waits or walks there is nothing to cancel, and the
 * ERROR a cancel raises there, outside any transaction, would be FATAL and
 * end the watcher.  Clearing the cancel only while idle would leave a
 * window between the check and the wait; ignoring the signal has none.  A
 * refresh that must be stopped is stopped with pg_terminate_backend(): the
 * watcher comes back and walks each backlog.
 *
 * Each pass of the loop runs in loop_cxt, reset at the start of the next:
 * what outlives a pass is allocated in watch_cxt or a backlog's contexts.
 */
void
kabsd_watch_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	pqsignal(SIGINT, SIG_IGN);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(kabsd_watch_database, NULL, 0);

	watch_cxt = AllocSetContextCreate(TopMemoryContext, "kabsd_fdw watcher",
									  ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(watch_cxt, "kabsd_fdw watcher pass",
									 ALLOCSET_DEFAULT_SIZES);
	if (watch_shared == NULL)
		elog(FATAL, "kabsd_fdw watcher started without its shared memory");
	/* nothing published by a watcher before this one stays */
	LWLockAcquire(watch_shared->lock, LW_EXCLUSIVE);
	watch_shared->nbacklogs = 0;
	LWLockRelease(watch_shared->lock);
	SpinLockAcquire(&watch_shared->mutex);
	watch_shared->pid = MyProcPid;
	watch_shared->dboid = MyDatabaseId;
	watch_shared->latch = MyLatch;
	SpinLockRelease(&watch_shared->mutex);
	on_shmem_exit(watch_detach_shmem, (Datum) 0);

	current_mode = kabsd_watch_mode;
	ereport(LOG,
			(errmsg("kabsd_fdw watcher started in database \"%s\"",
					kabsd_watch_database)));

	/* changes made while no watcher ran are caught by a walk of each */
	MemoryContextSwitchTo(loop_cxt);
	reload_watched(true);

	for (;;)
	{
		WaitEvent	events[16];
		TimestampTz now;
		TimestampTz next = 0;
		long		timeout;
		int			n;
		ListCell   *lc;

		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (kabsd_watch_mode != current_mode)
			{
				current_mode = kabsd_watch_mode;
				foreach(lc, watched)
				{
					Watched    *w = lfirst(lc);

					watch_close(w);
					w->polled = false;
					w->fallback = false;
					w->lost = false;
					watch_setup(w, gettext_noop("kabsd_fdw.watch_mode changed."));
				}
			}
			else
			{
				/* a limit may have been raised: inotify is tried again */
				foreach(lc, watched)
				{
					Watched    *w = lfirst(lc);

					if (!w->fallback)
						continue;
					w->polled = false;
					w->fallback = false;
					watch_setup(w, gettext_noop("The configuration was reloaded: inotify is tried again."));
				}
			}
		}

		{
			uint64		gen;

			SpinLockAcquire(&watch_shared->mutex);
			gen = watch_shared->generation;
			SpinLockRelease(&watch_shared->mutex);
			if (gen != seen_generation)
			{
				seen_generation = gen;
				reload_needed = true;
			}
		}
		if (reload_needed &&
			(reload_at == 0 || GetCurrentTimestamp() >= reload_at))
			reload_watched(false);

		foreach(lc, watched)
		{
			Watched    *w = lfirst(lc);

			if (w->fd >= 0)
				read_events(w);
		}

		/* what is due now, in name order; then when the next thing is */
		foreach(lc, watched)
		{
			Watched    *w = lfirst(lc);
			TimestampTz due = due_time(w);

			CHECK_FOR_INTERRUPTS();
			if (due == 0 || GetCurrentTimestamp() < due)
				continue;
			if (w->lost)
				watch_setup(w, gettext_noop("Its root was created again."));
			else if (w->polled && !w->full && w->npending == 0)
				refresh_backlog(w, true);
			else
				refresh_backlog(w, false);
		}
		/* a reload asked for by a refresh (reload_at 0) is due now */
		if (reload_needed)
			next = reload_at != 0 ? reload_at : GetCurrentTimestamp();
		foreach(lc, watched)
		{
			TimestampTz due = due_time(lfirst(lc));

			if (due != 0 && (next == 0 || due < next))
				next = due;
		}
		now = GetCurrentTimestamp();
		if (next == 0)
			timeout = -1;
		else if (next <= now)
			timeout = 0;
		else
			timeout = (long) ((next - now + 999) / 1000);

		if (wait_set_stale)
			rebuild_wait_set();
		report_watching();
		publish_pending();
		n = WaitEventSetWait(wait_set, timeout, events, lengthof(events),
							 PG_WAIT_EXTENSION);
		for (int i = 0; i < n; i++)
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
	}
}

/*
 * Reads the watched set from kabsd.backlogs, and the refresh function's
 * name, in a transaction of its own; backlogs no longer watched are
 * dropped, new ones set up (with a walk: what changed before is unknown).
 */
static void
reload_watched(bool starting)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	List	   *names = NIL;
	List	   *roots = NIL;
	List	   *keep = NIL;
	ListCell   *lc;
	bool		ok = true;

	reload_needed = false;
	reload_at = 0;
	pgstat_report_activity(STATE_RUNNING, "reading the watched backlogs");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		int			ret;

		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		ret = SPI_execute("SELECT pg_catalog.quote_ident(n.nspname) || '.kabsd_refresh',"
						  " EXISTS (SELECT 1 FROM pg_catalog.pg_proc p"
						  "  WHERE p.pronamespace = n.oid AND p.proname = 'kabsd_refresh'"
						  "  AND 'paths' = ANY (p.proargnames)),"
						  " EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a"
						  "  WHERE a.attrelid = pg_catalog.to_regclass('kabsd.backlogs')"
						  "  AND a.attname = 'watch' AND NOT a.attisdropped)"
						  " FROM pg_catalog.pg_extension e"
						  " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
						  " WHERE e.extname = 'kabsd_fdw'",
						  true, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_extension: %s", SPI_result_code_string(ret));
		if (SPI_processed == 1 &&
			strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), "t") == 0)
		{
			MemoryContext spicxt = MemoryContextSwitchTo(watch_cxt);

			if (refresh_function)
				pfree(refresh_function);
			refresh_function = pstrdup(SPI_getvalue(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1));
			refresh_has_paths = strcmp(SPI_getvalue(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2), "t") == 0;
			MemoryContextSwitchTo(spicxt);

			ret = SPI_execute("SELECT b.name, b.root FROM kabsd.backlogs b"
							  " WHERE b.watch ORDER BY b.name", true, 0);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "could not read kabsd.backlogs: %s", SPI_result_code_string(ret));
			spicxt = MemoryContextSwitchTo(watch_cxt);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1));
				roots = lappend(roots, SPI_getvalue(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 2));
			}
			MemoryContextSwitchTo(spicxt);
		}
		else if (refresh_function != NULL)
		{
			/* the extension is gone (or older): nothing to call now */
			pfree(refresh_function);
			refresh_function = NULL;
			refresh_has_paths = false;
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_stat(true);

	if (!ok)
	{
		/* tried again soon; what is watched stays as it was */
		ereport(LOG,
				(errmsg("could not read the watched backlogs of kabsd_fdw"),
				 errdetail("The watcher tries again in %d ms.", WATCH_RECHECK_MS)));
		reload_needed = true;
		reload_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												WATCH_RECHECK_MS);
		return;
	}

	/* those that stay watched, as they are; the others go */
	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);
		bool		stays = false;

		for (int i = 0; i < list_length(names); i++)
			if (strcmp(list_nth(names, i), w->name) == 0 &&
				strcmp(list_nth(roots, i), w->root) == 0)
				stays = true;
		if (stays)
			keep = lappend(keep, w);
		else
		{
			ereport(LOG,
					(errmsg("kabsd_fdw watcher stopped watching backlog \"%s\"",
							w->name)));
			watched_free(w);
		}
	}
	list_free(watched);
	watched = NIL;

	/* the new list, in name order, the kept ones reused */
	for (int i = 0; i < list_length(names); i++)
	{
		const char *name = list_nth(names, i);
		const char *root = list_nth(roots, i);
		Watched    *w = NULL;

		foreach(lc, keep)
		{
			Watched    *k = lfirst(lc);

			if (strcmp(k->name, name) == 0 && strcmp(k->root, root) == 0)
				w = k;
		}
		if (w == NULL)
		{
			w = watched_new(name, root);
			watch_setup(w, starting ? gettext_noop("The watcher started.") :
						gettext_noop("Watching began."));
		}
		MemoryContextSwitchTo(watch_cxt);
		watched = lappend(watched, w);
		MemoryContextSwitchTo(oldcxt);
	}
	list_free(keep);
	list_free_deep(names);
	list_free_deep(roots);
	wait_set_stale = true;
}

static Watched *
watched_new(const char *name, const char *root)
{
	MemoryContext cxt = AllocSetContextCreate(watch_cxt, "kabsd_fdw watched backlog",
											  ALLOCSET_SMALL_SIZES);
	Watched    *w = MemoryContextAllocZero(cxt, sizeof(Watched));

	w->cxt = cxt;
	w->name = MemoryContextStrdup(cxt, name);
	w->root = MemoryContextStrdup(cxt, root);
	w->fd = -1;
	w->rootwd = -1;
	clear_pending(w);
	return w;
}

static void
watched_free(Watched *w)
{
	watch_close(w);
	MemoryContextDelete(w->cxt);
}

/*
 * Starts following a backlog: in inotify mode a watch on each directory;
 * in poll mode, or when inotify cannot be used, a refresh on an interval.
 * Either way the first refresh walks the whole tree, for why.  A root that
 * is not there is looked for again every second.
 */
static void
watch_setup(Watched *w, const char *why)
{
	char		real[PATH_MAX];
	HASHCTL		ctl;
	bool		was_lost = w->lost;

	w->lost = false;
	if (current_mode == WATCH_MODE_POLL)
	{
		w->polled = true;
		w->next_check = GetCurrentTimestamp();
		need_full(w, why);
		return;
	}

	if (realpath(w->root, real) == NULL)
	{
		if (!was_lost)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not resolve root \"%s\" of backlog \"%s\": %m",
							w->root, w->name),
					 errdetail("The watcher looks for the root again every second.")));
		w->lost = true;
		w->next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													WATCH_RECHECK_MS);
		return;
	}
	if (w->realroot)
		pfree(w->realroot);
	w->realroot = MemoryContextStrdup(w->cxt, real);

	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
	{
		ereport(LOG,
				(errmsg("could not initialize inotify for backlog \"%s\": %m",
						w->name),
				 errdetail("The backlog is refreshed every kabsd_fdw.watch_poll_interval_ms instead."),
				 errhint("Raise fs.inotify.max_user_instances, then reload the configuration.")));
		go_polled(w);
		w->fallback = true;
		need_full(w, why);
		return;
	}
	wait_set_stale = true;

	/* the tables and their paths in a context of their own, for watch_close */
	w->dirs_cxt = AllocSetContextCreate(w->cxt, "kabsd_fdw watched directories",
										ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int);
	ctl.entrysize = sizeof(WatchedDir);
	ctl.hcxt = w->dirs_cxt;
	w->dirs = hash_create("kabsd_fdw watched directories", 256, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	w->links = path_table("kabsd_fdw symbolic links", sizeof(WatchLink), 16,
						  w->dirs_cxt);
	w->links_moved = false;
	w->rootwd = -1;
	if (!add_watches(w, ""))
		return;					/* polled: the LOG lines said why */
	if (w->rootwd < 0)
	{
		/* gone between realpath and the watch */
		watch_close(w);
		w->lost = true;
		w->next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													WATCH_RECHECK_MS);
		return;
	}
	need_full(w, why);
}

/*
 * Drops every watch of a backlog (closing the instance drops them all),
 * and the table of watched directories with their paths.
 */
static void
watch_close(Watched *w)
{
	if (w->fd >= 0)
	{
		close(w->fd);
		w->fd = -1;
		wait_set_stale = true;
	}
	if (w->dirs)
		nwatches -= (int) hash_get_num_entries(w->dirs);
	if (w->dirs_cxt)
	{
		MemoryContextDelete(w->dirs_cxt);
		w->dirs_cxt = NULL;
	}
	w->dirs = NULL;
	w->links = NULL;
	w->links_moved = false;
	w->rootwd = -1;
}

/* Inotify cannot follow this backlog: it is refreshed on an interval. */
static void
go_polled(Watched *w)
{
	watch_close(w);
	w->polled = true;
	w->next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												kabsd_watch_poll_interval_ms);
}

/*
 * A watch limit was reached adding the watch of directory abs: the
 * kernel's (errno says which), or kabsd_fdw.watch_max_directories (ours).
 * Either way the backlog is polled and walked whole; a reload of the
 * configuration tries inotify again.
 */
static void
watch_limit_reached(Watched *w, const char *abs, bool ours)
{
	if (ours)
		ereport(LOG,
				(errmsg("could not watch directory \"%s\" of backlog \"%s\"",
						abs, w->name),
				 errdetail("The watcher holds kabsd_fdw.watch_max_directories (%d) watches already. The backlog is refreshed every kabsd_fdw.watch_poll_interval_ms instead.",
						   kabsd_watch_max_directories),
				 errhint("Raise kabsd_fdw.watch_max_directories, then reload the configuration.")));
	else
		ereport(LOG,
				(errmsg("could not watch directory \"%s\" of backlog \"%s\": %m",
						abs, w->name),
				 errdetail("The backlog is refreshed every kabsd_fdw.watch_poll_interval_ms instead."),
				 errhint("Raise fs.inotify.max_user_watches, then reload the configuration.")));
	go_polled(w);
	w->fallback = true;
	need_full(w, gettext_noop("The inotify watch limit was reached."));
}

/* Is relpath one of paths (a List of strings)? */
static bool
has_path(const List *paths, const char *relpath)
{
	ListCell   *lc;

	foreach(lc, paths)
		if (strcmp(lfirst(lc), relpath) == 0)
			return true;
	return false;
}

/* Is path p relpath itself, or under it? */
static bool
path_under(const char *p, const char *relpath)
{
	size_t		len = strlen(relpath);

	return strncmp(p, relpath, len) == 0 && (p[len] == '\0' || p[len] == '/');
}

/*
 * Watches relpath and every directory under it that the walk enters: not
 * names starting with ".", not names that are not valid UTF-8, nor paths
 * too long for PATH_MAX; a symbolic link when its target is a directory
 * inside the root that is not already on the way down (walk.c's rules).
 * relpath is taken as the walk takes an entry of its parent: a directory
 * is watched, a link is recorded (and followed, or not).  The watch is
 * added before the directory is listed, so that what appears meanwhile is
 * seen by one or the other.  A directory watched already keeps its watch
 * descriptor (inotify returns the same one) and gains the path if it is a
 * new one, so that watching a subtree again is harmless.  Returns false
 * when a watch limit was reached (the backlog is then polled), true
 * otherwise.
 */
static bool
add_watches(Watched *w, const char *relpath)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "kabsd_fdw adding watches",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	List	   *todo = NIL;
	WatchFrame *up;
	bool		ok = true;

	up = frame_above(w, relpath);
	if (up == NULL)
		;						/* gone: its parent's event comes */
	else if (relpath[0] == '\0')
		todo = list_make1(up);
	else
	{
		const char *slash = strrchr(relpath, '/');

		todo = visit_child(w, up, slash ? slash + 1 : relpath, todo);
	}

	while (todo != NIL)
	{
		WatchFrame *f = llast(todo);
		int			wd;
		WatchedDir *d;
		DIR		   *dir;
		struct dirent *de;

		CHECK_FOR_INTERRUPTS();
		todo = list_delete_last(todo);
		wd = inotify_add_watch(w->fd, f->abs, WATCH_MASK);
		if (wd < 0)
		{
			if (errno == ENOSPC || errno == ENOMEM)
			{
				watch_limit_reached(w, f->abs, false);
				ok = false;
				break;
			}
			continue;			/* gone, or unreadable: not walked either */
		}
		d = hash_search(w->dirs, &wd, HASH_FIND, NULL);
		if (d == NULL)
		{
			if (kabsd_watch_max_directories > 0 &&
				nwatches >= kabsd_watch_max_directories)
			{
				inotify_rm_watch(w->fd, wd);
				watch_limit_reached(w, f->abs, true);
				ok = false;
				break;
			}
			d = hash_search(w->dirs, &wd, HASH_ENTER, NULL);
			d->paths = NIL;
			nwatches++;
		}
		if (!has_path(d->paths, f->rel))
		{
			MemoryContextSwitchTo(w->dirs_cxt);
			d->paths = lappend(d->paths, pstrdup(f->rel));
			MemoryContextSwitchTo(cxt);
		}
		if (f->rel[0] == '\0')
			w->rootwd = wd;

		dir = opendir(f->abs);
		if (dir == NULL)
			continue;
		while ((de = readdir(dir)) != NULL)
		{
			/* files need no stat: only directories and links are entered */
			if (de->d_type == DT_DIR || de->d_type == DT_LNK ||
				de->d_type == DT_UNKNOWN)
				todo = visit_child(w, f, de->d_name, todo);
		}
		closedir(dir);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	return ok;
}

/* Is real, a resolved path, the root or below it? */
static bool
inside_root(const Watched *w, const char *real)
{
	size_t		rootlen = strlen(w->realroot);

	return strncmp(real, w->realroot, rootlen) == 0 &&
		(real[rootlen] == '\0' || real[rootlen] == '/' || rootlen == 1);
}

/*
 * The directory that holds relpath, with those above it, each resolved as
 * the walk resolves it (following the links on the way); for "", the root
 * itself.  NULL when one of them is gone, is no directory, or resolves out
 * of the root (the tree changed since the event was queued: a link now
 * stands where a directory was).
 */
static WatchFrame *
frame_above(Watched *w, const char *relpath)
{
	WatchFrame *f = palloc0(sizeof(WatchFrame));
	struct stat st;
	const char *slash;

	if (stat(w->realroot, &st) != 0)
		return NULL;
	f->rel = "";
	f->abs = w->realroot;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	for (slash = strchr(relpath, '/'); slash != NULL; slash = strchr(slash + 1, '/'))
	{
		WatchFrame *down = palloc0(sizeof(WatchFrame));
		char		real[PATH_MAX];
		char	   *abs;

		down->rel = pnstrdup(relpath, slash - relpath);
		abs = psprintf("%s/%s", w->realroot, down->rel);
		if (realpath(abs, real) == NULL || !inside_root(w, real) ||
			stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
			return NULL;
		down->abs = pstrdup(real);
		down->dev = st.st_dev;
		down->ino = st.st_ino;
		down->up = f;
		f = down;
	}
	return f;
}

/* Is a directory of this device and inode on the way down to up? */
static bool
on_the_way(const WatchFrame *up, const struct stat *st)
{
	for (; up != NULL; up = up->up)
		if (up->dev == st->st_dev && up->ino == st->st_ino)
			return true;
	return false;
}

/*
 * An entry name of directory up, as the walk takes it: a directory to
 * enter is added to todo, a link recorded (and its target added when the
 * walk follows it).  Returns todo.
 */
static List *
visit_child(Watched *w, WatchFrame *up, const char *name, List *todo)
{
	size_t		len = strlen(name);
	size_t		bad_at;
	bool		nul;
	char	   *rel;
	char	   *abs;
	struct stat st;
	WatchFrame *f;

	if (name[0] == '.' || !kb_check_utf8(name, len, &bad_at, &nul))
		return todo;
	rel = up->rel[0] ? psprintf("%s/%s", up->rel, name) : pstrdup(name);
	abs = psprintf("%s/%s", up->abs, name);
	if (strlen(rel) >= PATH_MAX || strlen(abs) >= PATH_MAX)
		return todo;			/* the walk lists it with an error */
	if (lstat(abs, &st) != 0)
		return todo;
	if (S_ISLNK(st.st_mode))
	{
		char		target[PATH_MAX];
		bool		follows = walk_follows(w, up, abs, target, &st);

		record_link(w, rel, follows ? target : NULL, &st);
		if (!follows)
			return todo;
		abs = pstrdup(target);
	}
	else if (!S_ISDIR(st.st_mode) || on_the_way(up, &st))
		return todo;
	f = palloc0(sizeof(WatchFrame));
	f->rel = rel;
	f->abs = abs;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->up = up;
	return lappend(todo, f);
}

/*
 * Does the walk enter the symbolic link abs, an entry of directory up?  It
 * does when the link resolves to a directory inside the root that is not
 * one of up's ancestors nor on the way down.  Sets target (PATH_MAX bytes)
 * and st to what it resolves to.
 */
static bool
walk_follows(Watched *w, const WatchFrame *up, const char *abs, char *target,
			 struct stat *st)
{
	size_t		tl;

	if (realpath(abs, target) == NULL || !inside_root(w, target))
		return false;
	if (stat(target, st) != 0 || !S_ISDIR(st->st_mode))
		return false;
	tl = strlen(target);
	if (strncmp(up->abs, target, tl) == 0 &&
		(up->abs[tl] == '\0' || up->abs[tl] == '/'))
		return false;
	return !on_the_way(up, st);
}

/* A link met, and what it resolved to (NULL: not followed). */
static void
record_link(Watched *w, const char *relpath, const char *target,
			const struct stat *st)
{
	char	   *key = (char *) relpath;
	bool		found;
	WatchLink  *l = hash_search(w->links, &key, HASH_ENTER, &found);

	if (!found)
		l->relpath = MemoryContextStrdup(w->dirs_cxt, relpath);
	else if (l->target)
		pfree(l->target);
	l->target = target ? MemoryContextStrdup(w->dirs_cxt, target) : NULL;
	l->dev = target ? st->st_dev : 0;
	l->ino = target ? st->st_ino : 0;
}

/*
 * After a directory or a link came, moved or went: each link met is
 * resolved again, and one that now resolves differently (or is gone) has
 * its subtree refreshed and watched again.  Few backlogs have links; this
 * costs a few stats for each.  Returns false when the backlog became
 * polled.
 */
static bool
recheck_links(Watched *w)
{
	HASH_SEQ_STATUS seq;
	WatchLink  *l;
	List	   *changed = NIL;
	ListCell   *lc;

	w->links_moved = false;
	if (w->links == NULL || hash_get_num_entries(w->links) == 0)
		return true;
	hash_seq_init(&seq, w->links);
	while ((l = hash_seq_search(&seq)) != NULL)
	{
		WatchFrame *up;
		char	   *abs = psprintf("%s/%s", w->realroot, l->relpath);
		char		target[PATH_MAX];
		struct stat st;
		bool		same;

		/* SIGINT is ignored: only die() ends the worker, from inside the scan */
		CHECK_FOR_INTERRUPTS();
		up = frame_above(w, l->relpath);
		if (up == NULL || lstat(abs, &st) != 0 || !S_ISLNK(st.st_mode))
			same = false;
		else if (walk_follows(w, up, abs, target, &st))
			same = l->target != NULL && strcmp(l->target, target) == 0 &&
				l->dev == st.st_dev && l->ino == st.st_ino;
		else
			same = l->target == NULL;
		if (!same)
			changed = lappend(changed, pstrdup(l->relpath));
	}
	foreach(lc, changed)
	{
		const char *relpath = lfirst(lc);

		drop_watches_under(w, relpath);
		add_pending(w, relpath);
		if (!add_watches(w, relpath))
			return false;
	}
	return true;
}

/*
 * A directory or link moved away (or changed): its path, and those under
 * it, go from the watched directories and the links met; a directory left
 * with no path loses its watch.
 */
static void
drop_watches_under(Watched *w, const char *relpath)
{
	HASH_SEQ_STATUS seq;
	WatchedDir *d;
	WatchLink  *l;

	hash_seq_init(&seq, w->dirs);
	while ((d = hash_seq_search(&seq)) != NULL)
	{
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		foreach(lc, d->paths)
		{
			char	   *p = lfirst(lc);

			if (path_under(p, relpath))
			{
				d->paths = foreach_delete_current(d->paths, lc);
				pfree(p);
			}
		}
		if (d->paths == NIL)
		{
			inotify_rm_watch(w->fd, d->wd);
			forget_dir(w, d);
		}
	}
	hash_seq_init(&seq, w->links);
	while ((l = hash_seq_search(&seq)) != NULL)
	{
		char	   *p = l->relpath;

		CHECK_FOR_INTERRUPTS();
		if (!path_under(p, relpath))
			continue;
		if (l->target)
			pfree(l->target);
		hash_search(w->links, &p, HASH_REMOVE, NULL);
		pfree(p);
	}
}

/* A directory no longer watched (its watch removed): its entry goes. */
static void
forget_dir(Watched *w, WatchedDir *d)
{
	list_free_deep(d->paths);
	hash_search(w->dirs, &d->wd, HASH_REMOVE, NULL);
	nwatches--;
}

/*
 * Reads the events queued for a backlog, without waiting: at most
 * WATCH_MAX_READS buffers; what is left is read in the next pass, the
 * descriptor being still readable then.  Then, if a directory or a link
 * came or went, the links met are resolved again.
 */
static void
read_events(Watched *w)
{
	char		buf[8192] pg_attribute_aligned(__alignof__(struct inotify_event));

	for (int reads = 0; w->fd >= 0 && reads < WATCH_MAX_READS; reads++)
	{
		ssize_t		len;
		char	   *p;

		CHECK_FOR_INTERRUPTS();
		len = read(w->fd, buf, sizeof(buf));
		if (len < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
			{
				ereport(LOG,
						(errmsg("could not read inotify events of backlog \"%s\": %m",
								w->name)));
				watch_close(w);
				watch_setup(w, gettext_noop("Its inotify events could not be read."));
				return;
			}
			break;
		}
		for (p = buf; p < buf + len;)
		{
			const struct inotify_event *ev = (const struct inotify_event *) p;

			/* the rest of the buffer is another instance's, or none's */
			if (!handle_event(w, ev))
				return;
			p += sizeof(struct inotify_event) + ev->len;
		}
	}
	if (w->fd >= 0 && w->links_moved)
		(void) recheck_links(w);
}

/*
 * One event: the path it names becomes pending (a directory meaning its
 * subtree), at each path of the directory it happened in; a directory or
 * a link to one that appears is watched, one moved away is no longer.
 * What the walk skips is skipped: names starting with ".", and files whose
 * names do not end in ".md" (links aside).  Returns false when the backlog
 * no longer reads this inotify instance (set up again, polled, or its root
 * lost): the events after this one are not its.
 */
static bool
handle_event(Watched *w, const struct inotify_event *ev)
{
	WatchedDir *d;
	bool		isdir = (ev->mask & IN_ISDIR) != 0;
	bool		md;
	bool		came = (ev->mask & (IN_CREATE | IN_MOVED_TO)) != 0;
	bool		went = (ev->mask & (IN_DELETE | IN_MOVED_FROM)) != 0;
	size_t		len;
	size_t		bad_at;
	bool		nul;
	List	   *paths;
	ListCell   *lc;

	if (ev->mask & IN_Q_OVERFLOW)
	{
		/*
		 * Events were lost: which directories and links came or went among
		 * them.  The backlog is watched again from nothing, in a new
		 * instance (the old one's queue is dropped with it), and walked
		 * whole.
		 */
		watch_close(w);
		watch_setup(w, gettext_noop("The inotify event queue overflowed."));
		return false;
	}
	d = hash_search(w->dirs, &ev->wd, HASH_FIND, NULL);
	if (d == NULL)
		return true;			/* a watch dropped already */
	if (ev->wd == w->rootwd &&
		(ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED)))
	{
		ereport(LOG,
				(errmsg("root \"%s\" of backlog \"%s\" was removed or moved",
						w->root, w->name),
				 errdetail("The watcher looks for it every second and refreshes the backlog when it is back.")));
		watch_close(w);
		w->lost = true;
		w->next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													WATCH_RECHECK_MS);
		return false;
	}
	if (ev->mask & IN_IGNORED)
	{
		/* gone: a link to it now resolves to nothing */
		forget_dir(w, d);
		w->links_moved = true;
		return true;
	}
	/* the parent's event names it */
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT))
		return true;
	if (ev->len == 0 || ev->name[0] == '\0' || ev->name[0] == '.')
		return true;
	len = strlen(ev->name);
	md = len >= 3 && strcmp(ev->name + len - 3, ".md") == 0;
	/* a name that is no Markdown may be a link that came or went */
	if (!isdir && !md && !came && !went)
		return true;
	if (!kb_check_utf8(ev->name, len, &bad_at, &nul))
	{
		/* listed by the walk with an escaped path: no path to pass */
		need_full(w, gettext_noop("A name that is not valid UTF-8 changed."));
		return true;
	}

	/* its paths, copied: watches added and dropped change them */
	paths = NIL;
	foreach(lc, d->paths)
		paths = lappend(paths, pstrdup(lfirst(lc)));
	foreach(lc, paths)
	{
		const char *dirpath = lfirst(lc);
		char	   *relpath = dirpath[0] ? psprintf("%s/%s", dirpath, ev->name)
			: pstrdup(ev->name);

		if (isdir)
		{
			if (ev->mask & IN_MOVED_FROM)
				drop_watches_under(w, relpath);
			if (came || went)
				w->links_moved = true;
			if ((came || (ev->mask & IN_ATTRIB)) && !add_watches(w, relpath))
				return false;	/* polled from now on */
		}
		else if (came || went)
		{
			char	   *key = relpath;
			bool		link = false;

			if (went)
				link = hash_search(w->links, &key, HASH_FIND, NULL) != NULL;
			else
			{
				char	   *abs = psprintf("%s/%s", w->realroot, relpath);
				struct stat st;

				link = lstat(abs, &st) == 0 && S_ISLNK(st.st_mode);
				pfree(abs);
			}
			if (link)
			{
				/* what it leads to is refreshed (and watched) whole */
				drop_watches_under(w, relpath);
				w->links_moved = true;
				if (came && !add_watches(w, relpath))
					return false;
			}
			else if (!md)
			{
				pfree(relpath);
				continue;
			}
		}
		add_pending(w, relpath);
		pfree(relpath);
	}
	list_free_deep(paths);
	return true;
}

/*
 * A path changed: refreshed after the quiet period, or the cap.  While a
 * whole-tree refresh is due the paths are still counted, for
 * kabsd_status(); up to WATCH_MAX_PATHS of them either way.
 */
static void
add_pending(Watched *w, const char *relpath)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		found;
	PendingPath *p;
	char	   *key = (char *) relpath;

	if (w->first_event == 0)
		w->first_event = now;
	if (w->pending_since == 0)
		w->pending_since = now;
	w->last_event = now;
	if (w->npending >= WATCH_MAX_PATHS)
	{
		/* a constant, so that it is translated: it names WATCH_MAX_PATHS */
		StaticAssertStmt(WATCH_MAX_PATHS == 10000, "the message says 10000");
		if (!w->full)
			need_full(w, gettext_noop("More than 10000 paths changed."));
		return;
	}
	if (!w->full && GetDatabaseEncoding() != PG_UTF8 && !pg_is_ascii(relpath))
	{
		/* XXX the path as the snapshot holds it is not built here */
		need_full(w, gettext_noop("A name that is not ASCII changed in a database that is not UTF8."));
	}
	p = hash_search(w->pending, &key, HASH_ENTER, &found);
	if (!found)
	{
		p->path = MemoryContextStrdup(w->pending_cxt, relpath);
		w->npending++;
	}
}

/*
 * The next refresh walks the whole tree; the LOG line says why.  why is a
 * sentence marked with gettext_noop() by the caller, translated here.  The
 * paths pending stay, counted (the refresh does not read them).
 */
static void
need_full(Watched *w, const char *why)
{
	TimestampTz now = GetCurrentTimestamp();

	ereport(LOG,
			(errmsg("full refresh of backlog \"%s\"", w->name),
			 errdetail("%s", _(why))));
	w->full = true;
	if (w->pending_since == 0)
		w->pending_since = now;
	/* at once: nothing says more is coming */
	w->first_event = TimestampTzPlusMilliseconds(now, -kabsd_watch_max_delay_ms);
	w->last_event = w->first_event;
}

static void
clear_pending(Watched *w)
{
	if (w->pending_cxt == NULL)
		w->pending_cxt = AllocSetContextCreate(w->cxt, "kabsd_fdw pending paths",
											   ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(w->pending_cxt);
	w->pending = path_table("kabsd_fdw pending paths", sizeof(PendingPath), 64,
							w->pending_cxt);
	w->npending = 0;
	w->first_event = 0;
	w->last_event = 0;
	w->pending_since = 0;
}

/*
 * A hash table in cxt of entries whose first field is a path (char *), the
 * key, compared as text.
 */
static HTAB *
path_table(const char *name, Size entrysize, long nelem, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = entrysize;
	ctl.hash = path_hash;
	ctl.match = path_match;
	ctl.hcxt = cxt;
	return hash_create(name, nelem, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static uint32
path_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return string_hash(s, strlen(s) + 1);
}

static int
path_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/*
 * When something is next due for a backlog, 0 when nothing is: a look for
 * a lost root, a poll, or the pending changes after the quiet period (at
 * most the cap after the first); a failure delays it to the retry time.
 */
static TimestampTz
due_time(Watched *w)
{
	TimestampTz due = 0;

	if (w->lost)
		return w->next_check;
	if (w->full || w->npending > 0)
	{
		TimestampTz quiet = TimestampTzPlusMilliseconds(w->last_event,
														kabsd_watch_quiet_ms);
		TimestampTz cap = TimestampTzPlusMilliseconds(w->first_event,
													  kabsd_watch_max_delay_ms);

		due = Min(quiet, cap);
	}
	else if (w->polled)
		due = w->next_check;
	if (due != 0 && w->retry_ms > 0 && due < w->retry_at)
		due = w->retry_at;
	return due;
}

/*
 * Refreshes a backlog in a transaction of its own: the pending paths only,
 * or the whole tree (a walk, whose unchanged case reads nothing) when a
 * full refresh is due, when polled, or when kabsd_refresh() takes no
 * paths.  A failure is logged and tried again later, 1 s doubling to 60 s,
 * and makes the watched set and the function's name be read again (a DROP
 * EXTENSION fires no trigger of kabsd.backlogs).  A backlog no longer
 * watched (unwatched or detached meanwhile) makes them be read again too.
 *
 * The refresh runs as the backlog's owner (the owner of its foreign
 * server, the role kabsd_refresh() requires), not as the bootstrap
 * superuser the watcher connects as: the snapshot tables are the owner's,
 * and so may be their triggers, index expressions and defaults.  As
 * autovacuum and REFRESH MATERIALIZED VIEW do, the switch is a security-
 * restricted operation with search_path set to "pg_catalog, pg_temp", so
 * that nothing the owner plants runs with more than the owner's rights.
 * kabsd_refresh() does nothing a restricted operation refuses: its tables
 * are not temporary, NOTIFY is allowed, and kabsd_record_failure() starts
 * its worker as the session's user, which then writes as this role.
 */
static void
refresh_backlog(Watched *w, bool polled)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		whole = polled || w->full || !refresh_has_paths;
	char	   *activity;
	char	   *volatile failure = NULL;
	volatile bool gone = false;

	if (refresh_function == NULL)
		return;
	if (whole)
		activity = psprintf("refreshing backlog %s", w->name);
	else
		activity = psprintf("refreshing backlog %s: %d paths", w->name, w->npending);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		ForeignServer *server;
		Oid			save_userid;
		int			save_sec_context;
		int			save_nestlevel;

		pgstat_report_activity(STATE_RUNNING, activity);
		server = GetForeignServerByName(w->name, true);
		if (server == NULL)
			gone = true;		/* detached meanwhile */
		else
		{
			char	   *why = NULL;
			bool		none = false;

			GetUserIdAndSecContext(&save_userid, &save_sec_context);
			SetUserIdAndSecContext(server->owner,
								   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
			save_nestlevel = NewGUCNestLevel();
			(void) set_config_option("search_path", "pg_catalog, pg_temp",
									 PGC_USERSET, PGC_S_SESSION,
									 GUC_ACTION_SAVE, true, 0, false);
			why = run_refresh(w, whole, &none);
			AtEOXact_GUC(false, save_nestlevel);
			SetUserIdAndSecContext(save_userid, save_sec_context);
			failure = why;
			gone = none;
		}
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* the abort puts the user, its context and the settings back */
		ErrorData  *edata;

		MemoryContextSwitchTo(watch_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		failure = edata->message ? pstrdup(edata->message) : pstrdup("unknown error");
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_stat(true);
	pfree(activity);

	if (polled)
		w->next_check = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													kabsd_watch_poll_interval_ms);
	if (gone)
	{
		reload_needed = true;
		clear_pending(w);
		w->full = false;
		return;
	}
	if (failure != NULL)
	{
		w->retry_ms = w->retry_ms == 0 ? WATCH_RETRY_MIN_MS
			: Min(w->retry_ms * 2, WATCH_RETRY_MAX_MS);
		w->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  w->retry_ms);
		ereport(LOG,
				(errmsg("could not refresh backlog \"%s\": %s", w->name, failure),
				 errdetail("The watcher tries again in %d ms.", w->retry_ms)));
		pfree(failure);
		/* the backlog, or the extension, may be gone: read them again */
		reload_needed = true;
		/* a polled backlog is tried again at the retry time too */
		if (polled)
			w->next_check = w->retry_at;
		return;
	}
	if (message_level_is_interesting(DEBUG1))
	{
		StringInfoData buf;

		initStringInfo(&buf);
		if (whole)
			appendStringInfoString(&buf, "the whole tree");
		else
		{
			char	  **paths = sorted_pending(w);

			appendStringInfo(&buf, "%d paths:", w->npending);
			for (int i = 0; i < w->npending && i < 20; i++)
				appendStringInfo(&buf, " %s", paths[i]);
		}
		ereport(DEBUG1,
				(errmsg_internal("kabsd_fdw watcher refreshed backlog \"%s\", %s",
								 w->name, buf.data)));
		pfree(buf.data);
	}

	/* what changes from now on is read from the queue after this */
	w->retry_ms = 0;
	w->retry_at = 0;
	w->full = false;
	clear_pending(w);
}

/*
 * The refresh's query, as the backlog's owner, in the caller's transaction:
 * kabsd_refresh() through the kabsd.backlogs row, so that a backlog
 * unwatched meanwhile is not refreshed (*gone is then set).  The function
 * and the table are named with their schemas, search_path being
 * pg_catalog's only.  Returns the error of a failed refresh, in watch_cxt,
 * or NULL.
 */
static char *
run_refresh(Watched *w, bool whole, bool *gone)
{
	char	   *failure = NULL;
	StringInfoData sql;
	Datum		args[2];
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	int			ret;

	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT r.status, r.error FROM kabsd.backlogs b,"
					 " LATERAL %s(b.name%s) r"
					 " WHERE b.name = $1 AND b.watch",
					 refresh_function, whole ? "" : ", paths => $2");
	args[0] = CStringGetTextDatum(w->name);
	if (whole)
		args[1] = (Datum) 0;
	else
	{
		Datum	   *elems = palloc(sizeof(Datum) * w->npending);
		char	  **paths = sorted_pending(w);

		for (int i = 0; i < w->npending; i++)
			elems[i] = CStringGetTextDatum(paths[i]);
		args[1] = PointerGetDatum(construct_array(elems, w->npending, TEXTOID,
												  -1, false, TYPALIGN_INT));
	}
	ret = SPI_execute_with_args(sql.data, whole ? 1 : 2, types, args,
								NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not refresh backlog \"%s\": %s", w->name,
			 SPI_result_code_string(ret));
	if (SPI_processed == 0)
		*gone = true;
	else
	{
		char	   *status = SPI_getvalue(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1);

		if (status == NULL || strcmp(status, "failed") == 0)
		{
			char	   *error = SPI_getvalue(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 2);

			failure = MemoryContextStrdup(watch_cxt, error ? error : "unknown error");
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	return failure;
}

static int
compare_paths(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The pending paths, sorted (a stable order for the refresh and the log). */
static char **
sorted_pending(Watched *w)
{
	char	  **paths = palloc(sizeof(char *) * Max(w->npending, 1));
	HASH_SEQ_STATUS seq;
	PendingPath *p;
	int			i = 0;

	hash_seq_init(&seq, w->pending);
	while ((p = hash_seq_search(&seq)) != NULL)
		paths[i++] = p->path;
	qsort(paths, i, sizeof(char *), compare_paths);
	return paths;
}

/* The latch, the postmaster, and each backlog's inotify descriptor. */
static void
rebuild_wait_set(void)
{
	ListCell   *lc;
	int			n = 2;

	if (wait_set)
		FreeWaitEventSet(wait_set);
	foreach(lc, watched)
		if (((Watched *) lfirst(lc))->fd >= 0)
			n++;
	wait_set = CreateWaitEventSet(watch_cxt, n);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);

		if (w->fd >= 0)
			AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, w->fd, NULL, w);
	}
	wait_set_stale = false;
}

/* What pg_stat_activity shows while the watcher waits. */
static void
report_watching(void)
{
	char		buf[128];
	int			npending = 0;
	ListCell   *lc;

	foreach(lc, watched)
	{
		Watched    *w = lfirst(lc);

		if (w->full || w->npending > 0)
			npending++;
	}
	if (npending > 0)
		snprintf(buf, sizeof(buf), "watching %d backlogs, %d with changes pending",
				 list_length(watched), npending);
	else
		snprintf(buf, sizeof(buf), "watching %d backlogs", list_length(watched));
	pgstat_report_activity(STATE_IDLE, buf);
}
