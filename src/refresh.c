/*-------------------------------------------------------------------------
 *
 * refresh.c
 *		  kabsd_snapshot_apply(), the SQL entry point of a refresh: one walk
 *		  of the tree, compared with the stored fingerprint; when something
 *		  changed, the files whose stamp changed (every file when full) are
 *		  read, parsed and compared with the snapshot, and only the rows
 *		  that differ are written.  It returns the tables' row counts, so
 *		  the SQL layer counts nothing.
 *
 * The work is cut by concern, each file called from here:
 *   refresh_stamps.c    fingerprint, stamps, the paths the snapshot knows
 *   refresh_worklist.c  the files to read, serialized
 *   refresh_parallel.c  the reading shared with parallel workers
 *   refresh_diff.c      a file's rows against each table's
 *   refresh_targets.c   links.target_uid
 *   refresh_write.c     the writing, the snapshot's only writer
 *
 * src/refresh.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(kabsd_snapshot_apply);
PG_FUNCTION_INFO_V1(kabsd_stage_load);

/* The counts a refresh returns: the seven tables, then files with an error. */
#define NCOUNTS (KT_COUNT + 1)

/*
 * Up to this many files to read, links' targets are looked up in the id
 * indexes rather than mapped from every item and decision.
 */
#define FEW_FILES	64

/* The seven tables of the refresh's argument, in the data model's order. */
static void
seven_relations(ArrayType *arr, Oid *relids)
{
	Datum	   *values;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &values, &nulls, &n);
	if (n != KT_COUNT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("array of snapshot tables must have %d elements", KT_COUNT)));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("array of snapshot tables must not contain nulls")));
		relids[i] = DatumGetObjectId(values[i]);
	}
}

/* The counts of the last refresh, when the caller knows them. */
static bool
known_counts(ArrayType *arr, int64 *counts)
{
	Datum	   *values;
	bool	   *nulls;
	int			n;

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &values, &nulls, &n);
	if (n != NCOUNTS)
		return false;
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			return false;
		counts[i] = DatumGetInt64(values[i]);
	}
	return true;
}

static int
path_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * The paths of a targeted refresh, each checked: relative to the root,
 * without "." or ".." parts (a trailing "/" is dropped).  They come out
 * sorted in bytes' order, without repeats, as kb_walk_restrict() wants
 * them: a path is then matched with them by binary search.
 */
static int
target_paths(ArrayType *arr, const char ***paths)
{
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			k = 0;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &values, &nulls, &n);
	*paths = palloc(sizeof(char *) * Max(1, n));
	for (int i = 0; i < n; i++)
	{
		char	   *p;
		size_t		len;

		if (nulls[i])
			continue;
		p = TextDatumGetCString(values[i]);
		len = strlen(p);
		while (len > 1 && p[len - 1] == '/')
			p[--len] = '\0';
		if (!kb_relpath_valid(p))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid path to refresh: \"%s\"", p),
					 errdetail("Paths to refresh are relative to the backlog root, without \".\" or \"..\" parts.")));
		(*paths)[k++] = p;
	}
	if (k > 1)
	{
		int			n = 1;

		qsort(*paths, k, sizeof(char *), path_cmp);
		for (int i = 1; i < k; i++)
			if (strcmp((*paths)[i], (*paths)[n - 1]) != 0)
				(*paths)[n++] = (*paths)[i];
		k = n;
	}
	return k;
}

/* Rows of a table the snapshot sees; with att, only those where it is set. */
static int64
count_rows(Relation rel, Snapshot snapshot, AttrNumber att)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	int64		n = 0;

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (att)
		{
			slot_getsomeattrs(slot, att);
			if (slot->tts_isnull[att - 1])
				continue;
		}
		n++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

/*
 * The tables' row counts after the refresh: from the counts before and
 * what was written when they add up, else counted.  files_rows is the
 * files table's row count when the refresh began (-1: unknown).
 */
static void
final_counts(RefreshState *rs, bool have, const int64 *before, int64 *counts,
			 int64 files_rows)
{
	Snapshot	snapshot;
	SnapTable  *files = &rs->t[KT_FILES];
	bool		known = true;

	for (int t = 0; t < KT_COUNT; t++)
	{
		SnapTable  *st = &rs->t[t];

		if (st->empty)
			counts[t] = st->inserted - st->deleted;
		else if (have)
			counts[t] = before[t] + st->inserted - st->deleted;
		else
			known = false;
	}
	if (files->empty)
		counts[KT_COUNT] = rs->errors_delta;
	else if (have)
		counts[KT_COUNT] = before[KT_COUNT] + rs->errors_delta;
	else
		known = false;

	/*
	 * Rows deleted past the guard make the counts before wrong.  The files
	 * table's count, which the stamps' scan found when the refresh began,
	 * tells; every table is counted when it does not add up.  A targeted
	 * refresh read only some rows, and counting the rest would cost more
	 * than its work: it goes by the counts on record, and the next whole
	 * refresh checks them.
	 */
	if (known && !files->empty && files_rows >= 0)
		known = files_rows == before[KT_FILES];
	if (!known)
	{
		CommandCounterIncrement();
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		for (int t = 0; t < KT_COUNT; t++)
			counts[t] = count_rows(rs->t[t].rel, snapshot, 0);
		counts[KT_COUNT] = count_rows(files->rel, snapshot, files->error_att);
		UnregisterSnapshot(snapshot);
	}
}

/*
 * The commit checked out in the Git repository holding root, read from
 * Git's files (git is never run); NULL outside a work tree or on a branch
 * with no commit yet.  A repository that cannot be read is no reason to
 * fail the refresh: it says why, and the commit is NULL.
 */
static char *
git_commit(const char *root)
{
	KbGitHead	head;

	switch (kb_git_head(root, &head))
	{
		case KB_GIT_COMMIT:
			return pstrdup(head.commit);
		case KB_GIT_ERROR:
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not read the Git commit of backlog root \"%s\"", root),
					 errdetail_internal("%s", head.error),
					 errhint("The refresh records no commit until the server's user can read the repository's .git files.")));
			return NULL;
		default:
			return NULL;
	}
}

static Datum
int8_array(const int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* The files of the list, read by this backend alone or with workers. */
static int
read_listed(RefreshState *rs, WorkList *wl, const Oid *relids,
			const KabsdOptions *opts, int nworkers, MemoryContext filecxt)
{
	ParallelRefresh *pr = NULL;
	KabsdScan  *analyzer = NULL;
	StringInfoData pathbuf;
	KbEntry		e;
	ItemPointerData files_tid;

	if (wl->n >= Max(1, kabsd_min_parallel_refresh_files) && nworkers > 0)
	{
		kabsd_write_keep(rs, CurrentMemoryContext);
		pr = kabsd_parallel_begin(rs, relids, opts, wl->root, wl->n, wl->len,
								  nworkers);
	}
	else
	{
		/*
		 * A few files (or none, the others being gone): links' targets are
		 * looked up, not mapped, and so are the links they could change
		 */
		if (wl->n <= FEW_FILES)
			kabsd_targets_by_index(rs);
		if (wl->n == 0)
			return 0;
		analyzer = kabsd_analyzer_begin(wl->root, opts->max_file_size,
										KB_NEED_ALL, CurrentMemoryContext);
	}
	initStringInfo(&pathbuf);
	for (int64 i = 0; i < wl->n; i++)
	{
		kabsd_worklist_entry(wl, i, &pathbuf, &e, &files_tid);
		if (pr)
			kabsd_parallel_add(pr, rs, &e, &files_tid);
		else
			kabsd_diff_file(rs, analyzer, &e, &files_tid, filecxt);
	}
	if (analyzer)
		kabsd_scan_end(analyzer);
	if (pr == NULL)
		return 0;
	return kabsd_parallel_finish(pr, rs);
}

/*
 * kabsd_snapshot_apply(server, tables regclass[7], full, fingerprint,
 * counts bigint[8], paths text[]): refreshes the snapshot of a backlog (its
 * seven tables, in the order files, items, decisions, links, worklog,
 * sections, checklist).  fingerprint and counts are those the last refresh
 * returned (NULL: none): a walk that gives the same fingerprint writes
 * nothing, and a table found empty that had rows makes the refresh read
 * every file, as full does.  paths, when given, restricts the refresh to
 * those files and directories: nothing else is walked or stat'ed, and its
 * result for them is a whole refresh's (it returns no fingerprint, since
 * it did not see the whole tree).
 *
 * Returns the status ("unchanged", "refreshed" or "rebuilt"), the counts,
 * the rows inserted and deleted in each table, the files read, the new
 * fingerprint, the number of parallel workers that shared the reading and
 * the Git commit checked out (NULL outside a Git work tree).
 */
Datum
kabsd_snapshot_apply(PG_FUNCTION_ARGS)
{
	KabsdOptions opts;
	RefreshState rs;
	KnownPaths *kp;
	Oid			relids[KT_COUNT];
	KabsdScan  *scan;
	KbEntry    *entry;
	WorkList	wl;
	MemoryContext filecxt;
	TupleDesc	resdesc;
	Datum		result[8];
	bool		resnull[8] = {false, false, false, false, false, false, false, false};
	int64		before[NCOUNTS] = {0},
				counts[NCOUNTS],
				ins[KT_COUNT],
				del[KT_COUNT];
	bool		have_counts;
	bool		full;
	bool		rebuild;
	bool		stream;
	uint64		salt,
				h;
	int64		nfiles = 0;
	int			nworkers;
	int			workers = 0;
	ParallelRefresh *pr = NULL;
	ItemPointerData files_tid;
	const char *status;
	const char *gone;
	const char **paths = NULL;
	int			npaths = 0;
	bool		targeted;
	char	   *commit;
	int64		files_rows;

	if (PG_NARGS() != 6)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL objects of kabsd_fdw are older than its library"),
				 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &resdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	kabsd_server_options(PG_GETARG_NAME(0), &opts);
	seven_relations(PG_GETARG_ARRAYTYPE_P(1), relids);
	full = PG_GETARG_BOOL(2);
	have_counts = !PG_ARGISNULL(4) && known_counts(PG_GETARG_ARRAYTYPE_P(4), before);

	/* the commit checked out as the refresh begins: what it reflects */
	commit = git_commit(opts.root);

	kabsd_diff_begin(&rs, NameStr(*PG_GETARG_NAME(0)), relids,
					 GetLatestSnapshot(), true);
	kabsd_write_begin(&rs);
	filecxt = AllocSetContextCreate(CurrentMemoryContext, "kabsd_fdw refresh file",
									ALLOCSET_DEFAULT_SIZES);

	/*
	 * A rebuild reads every file: no counts on record, or a table that had
	 * rows has none (emptied, dropped, or restored without data).
	 */
	rebuild = !have_counts;
	for (int t = 0; t < KT_COUNT; t++)
		rebuild |= rs.t[t].empty && before[t] > 0;
	full |= rebuild;
	/* a rebuild reads every file, whatever paths were given */
	targeted = !PG_ARGISNULL(5) && !rebuild;
	if (targeted)
		npaths = target_paths(PG_GETARG_ARRAYTYPE_P(5), &paths);

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
	{
		bool		all_empty = true;

		for (int t = 0; t < KT_COUNT; t++)
			all_empty &= rs.t[t].empty && rs.t[t].rri->ri_NumIndices == 0;
		if (all_empty)
			nworkers = 0;
	}
	salt = h = kabsd_fingerprint_start(&opts);

	if (targeted && npaths == 0)
	{
		memcpy(counts, before, sizeof(counts));
		status = "unchanged";
		kp = NULL;
	}
	else if (!full || targeted)
	{
		/*
		 * The walk lists every file (every file of paths) and gives the
		 * fingerprint; only when it differs from the stored one (or the
		 * files table lost rows) are the stamps compared.
		 */
		WorkList	walked;
		StringInfoData pathbuf;
		KbEntry		e;

		memset(&walked, 0, sizeof(walked));
		walked.cxt = CurrentMemoryContext;
		ItemPointerSetInvalid(&files_tid);
		scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL,
								NULL, 0, CurrentMemoryContext);
		if (targeted)
			kabsd_scan_restrict(scan, paths, npaths);
		while (kabsd_scan_next_entry(scan, &entry))
		{
			h = kabsd_fingerprint_entry(h, entry);
			nfiles++;
			kabsd_worklist_add(&walked, entry, &files_tid);
		}
		kabsd_scan_end(scan);

		if (!targeted && !PG_ARGISNULL(3) &&
			strcmp(TextDatumGetCString(PG_GETARG_DATUM(3)),
				   TextDatumGetCString(kabsd_fingerprint_text(h, nfiles))) == 0 &&
			count_rows(rs.t[KT_FILES].rel, rs.snapshot, 0) == before[KT_FILES])
		{
			memcpy(counts, before, sizeof(counts));
			status = "unchanged";
			kp = NULL;
		}
		else
		{
			kp = kabsd_known_load(&rs, paths, npaths, CurrentMemoryContext);
			initStringInfo(&pathbuf);
			for (int64 i = 0; i < walked.n; i++)
			{
				kabsd_worklist_entry(&walked, i, &pathbuf, &e, &files_tid);
				if (kabsd_known_walked(kp, &e, kabsd_file_stamp(salt, &e), full,
									   &files_tid))
					kabsd_worklist_add(&wl, &e, &files_tid);
			}
			status = "refreshed";
		}
	}
	else
	{
		/*
		 * Every file is read.  When there are many, the workers start
		 * first and read while the walk goes on.
		 */
		kp = kabsd_known_load(&rs, NULL, 0, CurrentMemoryContext);
		stream = nworkers > 0 &&
			kabsd_known_count(kp) >= (uint64) Max(1, kabsd_min_parallel_refresh_files);
		if (stream)
		{
			kabsd_write_keep(&rs, CurrentMemoryContext);
			kabsd_known_keep_stamps(kp, true);
		}
		scan = kabsd_scan_begin(opts.root, opts.max_file_size, KB_SCOPE_ALL,
								NULL, 0, CurrentMemoryContext);
		while (kabsd_scan_next_entry(scan, &entry))
		{
			h = kabsd_fingerprint_entry(h, entry);
			nfiles++;
			if (!kabsd_known_walked(kp, entry, kabsd_file_stamp(salt, entry),
									true, &files_tid))
				continue;
			if (!stream)
				kabsd_worklist_add(&wl, entry, &files_tid);
			else
			{
				/* room for a tenth more files than the snapshot knows */
				if (pr == NULL)
					pr = kabsd_parallel_begin(&rs, relids, &opts, entry->root,
											  kabsd_known_count(kp) * 11 / 10 + 1024,
											  kabsd_known_list_bytes(kp) * 11 / 10 +
											  1024 * kabsd_worklist_entry_size(MAXPGPATH),
											  nworkers);
				kabsd_parallel_add(pr, &rs, entry, &files_tid);
			}
		}
		kabsd_scan_end(scan);
		if (pr)
			workers = kabsd_parallel_finish(pr, &rs);
		status = rebuild ? "rebuilt" : "refreshed";
	}

	if (kp)
	{
		workers += read_listed(&rs, &wl, relids, &opts, nworkers, filecxt);
		/* parallel mode is over: what was kept is written */
		kabsd_known_keep_stamps(kp, false);
		if (rs.keep_cxt)
			kabsd_write_kept(&rs, filecxt);
		while (kabsd_known_next_gone(kp, &gone, &files_tid))
		{
			MemoryContext old = MemoryContextSwitchTo(filecxt);

			kabsd_diff_gone(&rs, gone, &files_tid);
			MemoryContextSwitchTo(old);
			MemoryContextReset(filecxt);
		}
		files_rows = kabsd_known_files_rows(kp);
		kabsd_known_end(kp);
		kabsd_diff_end_scans(&rs);
		if (!kabsd_write_deferred_links(&rs, filecxt) && rs.targets_sum != 0)
		{
			kabsd_write_flush(&rs);
			kabsd_diff_retarget_links(&rs, filecxt);
		}
		kabsd_write_flush(&rs);
		final_counts(&rs, have_counts, before, counts, files_rows);
	}

	for (int t = 0; t < KT_COUNT; t++)
	{
		ins[t] = rs.t[t].inserted;
		del[t] = rs.t[t].deleted;
	}
	result[0] = CStringGetTextDatum(status);
	result[1] = int8_array(counts, NCOUNTS);
	result[2] = int8_array(ins, KT_COUNT);
	result[3] = int8_array(del, KT_COUNT);
	result[4] = Int64GetDatum(rs.files_read);
	result[5] = kabsd_fingerprint_text(h, nfiles);
	resnull[5] = targeted;
	result[6] = Int32GetDatum(workers);
	result[7] = commit ? CStringGetTextDatum(commit) : (Datum) 0;
	resnull[7] = commit == NULL;
	kabsd_write_end(&rs);
	kabsd_diff_end(&rs);
	MemoryContextDelete(filecxt);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resdesc),
													  result, resnull)));
}

/*
 * kabsd_stage_load() was the rebuild of 0.1.0.  Its SQL definition stays
 * in a database whose extension was not updated yet: say what to do.
 */
Datum
kabsd_stage_load(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the SQL objects of kabsd_fdw are older than its library"),
			 errhint("Run ALTER EXTENSION kabsd_fdw UPDATE.")));
	PG_RETURN_NULL();			/* keep the compiler quiet */
}
