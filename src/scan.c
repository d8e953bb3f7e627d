/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The walk-and-analyse loop, in memory contexts, with interrupts and
 *		  an error context naming the file.  The executor's scan, ANALYZE's
 *		  sampling and the refresh all drive it one file at a time.
 *
 * Memory: the walk lives in the scan context and frees each directory's
 * listing as it leaves it; each file is read and analysed in a context that
 * is reset before the next one, so a scan holds one file at a time.
 *
 * src/scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

struct KabsdScan
{
	MemoryContext scan_cxt;		/* the walk */
	MemoryContext file_cxt;		/* the current file, reset for each */
	KbAlloc		scan_alloc;
	KbAlloc		file_alloc;
	KbWalk	   *walk;
	KbScope		scope;
	int			need;			/* KB_NEED_* */
	KbFileOptions fopts;
	int			root_fd;		/* root_path held open, or -1 */
	char	   *root_path;
	MemoryContextCallback root_closer;
	KbEntry		entry;
	KbFile		file;
	int64		walked;			/* counters for EXPLAIN ANALYZE */
	int64		read;
	int64		errors;
};

/* ---------------------------------------------------------------------
 * KbAlloc on a memory context.  Allocation failures come back as NULL so
 * that the core can release libyaml before anything raises; only cmark's
 * hook raises, and cmark holds nothing outside the context.
 * ---------------------------------------------------------------------
 */
static void *
cxt_alloc(void *ctx, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) ctx, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void *
cxt_realloc(void *ctx, void *ptr, size_t oldsize, size_t newsize)
{
	void	   *p = cxt_alloc(ctx, newsize);

	if (p == NULL)
		return NULL;
	memcpy(p, ptr, Min(oldsize, newsize));
	pfree(ptr);
	return p;
}

static void
cxt_free(void *ctx, void *ptr)
{
	pfree(ptr);
}

static void
cxt_oom(void *ctx)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("Failed while parsing the Markdown of a backlog file.")));
}

static void
init_alloc(KbAlloc *a, MemoryContext cxt)
{
	a->ctx = cxt;
	a->alloc = cxt_alloc;
	a->realloc = cxt_realloc;
	a->free = cxt_free;
	a->oom = cxt_oom;
}

static void
report_oom(const char *path)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 path ? errdetail("Failed while reading backlog file \"%s\".", path) : 0));
}

/* Error context: which file was being read. */
static void
file_error_context(void *arg)
{
	const char *path = arg;

	if (path)
		errcontext("backlog file \"%s\"", path);
}

/* Does a scan of this scope look at files of this kind? */
static bool
scope_wants(KbScope scope, KbKind kind)
{
	switch (scope)
	{
		case KB_SCOPE_ITEMS:
			return kind == KB_KIND_ITEM;
		case KB_SCOPE_DECISIONS:
			return kind == KB_KIND_DECISION;
		case KB_SCOPE_ITEMS_DECISIONS:
			return kind == KB_KIND_ITEM || kind == KB_KIND_DECISION;
		default:
			return true;
	}
}

static void
close_root(void *arg)
{
	KabsdScan  *scan = arg;

	if (scan->root_fd >= 0)
	{
		close(scan->root_fd);
		ReleaseExternalFD();
		scan->root_fd = -1;
	}
}

/*
 * Holds root open for the scan's life, so that each file is opened
 * relative to it rather than after opening root again.  The descriptor
 * goes with the scan's memory (a callback closes it), so an error, or a
 * subtransaction's end, closes it exactly when the scan itself is gone.
 * Where root cannot be held open, each file opens it.
 */
static void
open_root(KabsdScan *scan, const char *root)
{
	int			fd;

	if (!(scan->need & KB_NEED_READ) || root == NULL || !AcquireExternalFD())
		return;
	fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
	{
		ReleaseExternalFD();
		return;
	}
	scan->root_fd = fd;
	scan->root_path = MemoryContextStrdup(scan->scan_cxt, root);
	scan->root_closer.func = close_root;
	scan->root_closer.arg = scan;
	MemoryContextRegisterResetCallback(scan->scan_cxt, &scan->root_closer);
}

/* A scan that has not started walking. */
static KabsdScan *
scan_create(int64 max_file_size, KbScope scope, int need, MemoryContext parent)
{
	KabsdScan  *scan;
	int			enc = GetDatabaseEncoding();

	if (enc != PG_UTF8 && enc != PG_SQL_ASCII)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("kabsd_fdw requires a database with encoding UTF8"),
				 errdetail("The database encoding is %s; backlog files are UTF-8.",
						   GetDatabaseEncodingName())));

	scan = MemoryContextAllocZero(parent, sizeof(KabsdScan));
	scan->scan_cxt = AllocSetContextCreate(parent, "kabsd_fdw scan",
										   ALLOCSET_DEFAULT_SIZES);
	scan->file_cxt = AllocSetContextCreate(scan->scan_cxt, "kabsd_fdw file",
										   ALLOCSET_DEFAULT_SIZES);
	init_alloc(&scan->scan_alloc, scan->scan_cxt);
	init_alloc(&scan->file_alloc, scan->file_cxt);
	scan->scope = scope;
	scan->need = kb_need_closure(need);
	scan->root_fd = -1;
	scan->fopts.max_file_size = max_file_size;
	scan->fopts.yaml.max_nodes = KB_YAML_MAX_NODES;
	scan->fopts.yaml.max_depth = KB_YAML_MAX_DEPTH;
	return scan;
}

/*
 * Starts a scan of root.  A root that is gone, is no directory or cannot
 * be read is an error of the query (unlike a bad file, which is a row).
 */
KabsdScan *
kabsd_scan_begin(const char *root, int64 max_file_size, KbScope scope,
				 const char *product, int need, MemoryContext parent)
{
	KabsdScan  *scan = scan_create(max_file_size, scope, need, parent);
	int			err;

	scan->walk = kb_walk_open(&scan->scan_alloc, root, scope, product, &err);
	if (scan->walk == NULL)
	{
		if (err == ENOMEM)
			report_oom(NULL);
		errno = err;
		if (err == ENOTDIR)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("backlog root \"%s\" is not a directory", root),
					 errhint("Point the server's option \"root\" at the backlog directory.")));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open backlog root \"%s\": %m", root),
				 errhint("Check that the directory exists and that the database server's operating system user can read it.")));
	}
	open_root(scan, kb_walk_root(scan->walk));
	return scan;
}

/* Restricts a scan that has not started to paths (see kb_walk_restrict). */
void
kabsd_scan_restrict(KabsdScan *scan, const char *const *paths, int n)
{
	kb_walk_restrict(scan->walk, paths, (size_t) n);
}

/*
 * A scan that walks nothing: it analyses the entries it is given, which
 * another walk of root found (kabsd_scan_analyze_entry).
 */
KabsdScan *
kabsd_analyzer_begin(const char *root, int64 max_file_size, int need,
					 MemoryContext parent)
{
	KabsdScan  *scan = scan_create(max_file_size, KB_SCOPE_ALL, need, parent);

	open_root(scan, root);
	return scan;
}

/*
 * Moves to the next file the scan wants, without opening it.  Returns false
 * at the end.  The previous file's memory is gone.
 */
bool
kabsd_scan_next_entry(KabsdScan *scan, KbEntry **entry)
{
	for (;;)
	{
		KbText		product;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(scan->file_cxt);
		rc = kb_walk_next(scan->walk, &scan->entry);
		if (rc == 0)
			return false;
		if (rc != 1)
			report_oom(NULL);
		scan->walked++;
		if (!scope_wants(scan->scope, kb_classify_path(scan->entry.relpath, &product)))
			continue;
		*entry = &scan->entry;
		return true;
	}
}

/* Analyses the current entry as far as the scan needs. */
KbFile *
kabsd_scan_analyze(KabsdScan *scan)
{
	ErrorContextCallback errcb;
	int			rc;

	/* files under the root the scan holds open are opened relative to it */
	scan->fopts.has_root_fd = scan->root_fd >= 0 &&
		strcmp(scan->entry.root, scan->root_path) == 0;
	scan->fopts.root_fd = scan->root_fd;

	errcb.callback = file_error_context;
	errcb.arg = (void *) scan->entry.relpath;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	rc = kb_file_analyze(&scan->file_alloc, &scan->entry, &scan->fopts,
						 scan->need, &scan->file);
	if (rc != KB_OK)
		report_oom(scan->entry.relpath);
	error_context_stack = errcb.previous;

	if (scan->file.was_read)
		scan->read++;
	if (kb_file_error(&scan->file) != NULL)
		scan->errors++;
	return &scan->file;
}

/*
 * Analyses an entry another walk found; the previous file's memory is
 * gone.  The entry's strings must outlive the file.
 */
KbFile *
kabsd_scan_analyze_entry(KabsdScan *scan, const KbEntry *e)
{
	CHECK_FOR_INTERRUPTS();
	MemoryContextReset(scan->file_cxt);
	scan->entry = *e;
	return kabsd_scan_analyze(scan);
}

/* The next file the scan wants, analysed.  Returns false at the end. */
bool
kabsd_scan_next_file(KabsdScan *scan, KbEntry **entry, KbFile **file)
{
	if (!kabsd_scan_next_entry(scan, entry))
		return false;
	*file = kabsd_scan_analyze(scan);
	return true;
}

void
kabsd_scan_end(KabsdScan *scan)
{
	/* the walk holds no descriptors, and root goes with the memory */
	MemoryContextDelete(scan->scan_cxt);
	pfree(scan);
}

void
kabsd_scan_counts(const KabsdScan *scan, int64 *walked, int64 *read,
				  int64 *errors)
{
	*walked = scan->walked;
	*read = scan->read;
	*errors = scan->errors;
}
