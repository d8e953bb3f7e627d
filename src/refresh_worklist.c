/*-------------------------------------------------------------------------
 *
 * refresh_worklist.c
 *		  The files a refresh must read, as the walk found them: one
 *		  serialized entry each, so that the list can live in a backend's
 *		  memory or, as it is, in shared memory for parallel workers.
 *
 * src/refresh_worklist.c
 *
 *-------------------------------------------------------------------------
 */
#include "kabsd_fdw.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"

typedef struct WorkEntry
{
	int64		size;
	int64		mtime_sec;
	int64		ctime_sec;
	uint64		dev;
	uint64		ino;
	int32		mtime_nsec;
	int32		ctime_nsec;
	uint32		relpath_len;
	uint32		openpath_len;	/* 0: root/relpath */
	uint32		error_len;
	bool		has_error;
	ItemPointerData files_tid;
	/* then relpath, openpath and error, each NUL-terminated */
} WorkEntry;

/* Room for one more entry of more bytes; false when a fixed list is full. */
static bool
worklist_reserve(WorkList *wl, Size more)
{
	if (wl->cxt == NULL)
		return wl->len + more <= wl->cap && wl->n < wl->cap_n;
	if (wl->len + more > wl->cap)
	{
		Size		cap = Max(wl->cap * 2, wl->len + more + 8192);

		wl->data = wl->data == NULL ?
			MemoryContextAllocExtended(wl->cxt, cap, MCXT_ALLOC_HUGE) :
			repalloc_huge(wl->data, cap);
		wl->cap = cap;
	}
	if (wl->n == wl->cap_n)
	{
		wl->cap_n = Max(1024, wl->cap_n * 2);
		wl->offsets = wl->offsets == NULL ?
			MemoryContextAllocExtended(wl->cxt, sizeof(Size) * wl->cap_n,
									   MCXT_ALLOC_HUGE) :
			repalloc_huge(wl->offsets, sizeof(Size) * wl->cap_n);
	}
	return true;
}

/* The bytes an entry of a plain file takes (no link target, no error). */
Size
kabsd_worklist_entry_size(Size relpath_len)
{
	return MAXALIGN(sizeof(WorkEntry) + relpath_len + 2);
}

/* Lists an entry; false when a fixed list has no room left for it. */
bool
kabsd_worklist_add(WorkList *wl, const KbEntry *e, ItemPointer files_tid)
{
	WorkEntry	w;
	bool		plain = e->relpath_len + e->root_len + 1 == strlen(e->openpath) &&
		strncmp(e->openpath, e->root, e->root_len) == 0 &&
		e->openpath[e->root_len] == '/' &&
		strcmp(e->openpath + e->root_len + 1, e->relpath) == 0;
	Size		need;
	char	   *p;

	if (wl->root == NULL)
		wl->root = MemoryContextStrdup(wl->cxt ? wl->cxt : CurrentMemoryContext,
									   e->root);
	Assert(strcmp(wl->root, e->root) == 0);
	memset(&w, 0, sizeof(w));
	w.size = e->size;
	w.mtime_sec = e->mtime_sec;
	w.mtime_nsec = e->mtime_nsec;
	w.ctime_sec = e->ctime_sec;
	w.ctime_nsec = e->ctime_nsec;
	w.dev = e->dev;
	w.ino = e->ino;
	w.relpath_len = e->relpath_len;
	w.openpath_len = plain ? 0 : strlen(e->openpath);
	w.has_error = e->error != NULL;
	w.files_tid = *files_tid;
	w.error_len = e->error ? strlen(e->error) : 0;
	need = MAXALIGN(sizeof(WorkEntry) + w.relpath_len + 1 +
					(plain ? 0 : w.openpath_len + 1) + w.error_len + 1);
	if (!worklist_reserve(wl, need))
		return false;
	wl->offsets[wl->n++] = wl->len;
	p = wl->data + wl->len;
	memcpy(p, &w, sizeof(w));
	p += sizeof(w);
	memcpy(p, e->relpath, w.relpath_len + 1);
	p += w.relpath_len + 1;
	if (!plain)
	{
		memcpy(p, e->openpath, w.openpath_len + 1);
		p += w.openpath_len + 1;
	}
	if (e->error)
		memcpy(p, e->error, w.error_len + 1);
	wl->len += need;
	return true;
}

/*
 * Entry i of the list.  Its strings point into the list, or into pathbuf
 * when the file is opened as root/relpath.
 */
void
kabsd_worklist_entry(const WorkList *wl, int64 i, StringInfo pathbuf,
					 KbEntry *e, ItemPointer files_tid)
{
	const char *data = wl->data + wl->offsets[i];
	const char *p = data + sizeof(WorkEntry);
	WorkEntry	w;

	memcpy(&w, data, sizeof(w));
	memset(e, 0, sizeof(*e));
	e->root = wl->root;
	e->root_len = strlen(wl->root);
	e->relpath = p;
	e->relpath_len = w.relpath_len;
	p += w.relpath_len + 1;
	if (w.openpath_len == 0)
	{
		resetStringInfo(pathbuf);
		appendStringInfo(pathbuf, "%s/%s", wl->root, e->relpath);
		e->openpath = pathbuf->data;
	}
	else
	{
		e->openpath = p;
		p += w.openpath_len + 1;
	}
	e->error = w.has_error ? p : NULL;
	e->size = w.size;
	e->mtime_sec = w.mtime_sec;
	e->mtime_nsec = w.mtime_nsec;
	e->ctime_sec = w.ctime_sec;
	e->ctime_nsec = w.ctime_nsec;
	e->dev = w.dev;
	e->ino = w.ino;
	*files_tid = w.files_tid;
}
