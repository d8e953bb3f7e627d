/*-------------------------------------------------------------------------
 *
 * walk.c
 *		  The walk of a backlog directory, and reading one file.
 *
 * The walk is an iterator: the caller asks for one entry at a time, so it
 * can check for interrupts between entries.  Each directory is listed whole
 * and closed at once, its names sorted (a stable order for tests and for
 * ANALYZE), so no file descriptor is open between calls and an error raised
 * by the caller leaks nothing but memory in the caller's own context.
 *
 * A symbolic link is followed only when its resolved target stays inside
 * the (resolved) root; a directory link back into one of its own ancestors,
 * or to a directory already on the walk's stack, is not descended again.
 * Every open then goes through open_beneath(): the path the walk resolved
 * is opened relative to root and refused if any component has become a
 * symbolic link since, so a link swapped in between the walk and the open
 * cannot lead out of root.
 *
 * What no table can hold is listed, never read: a file or directory whose
 * name is not valid UTF-8 is an entry with an error (never descended), its
 * relpath with each invalid byte written as \xNN; so is a path too long for
 * PATH_MAX, its relpath shortened to a prefix and a hash of the whole (see
 * KbEntry).  Only such entries' names are escaped: every other relpath is
 * the path's own bytes.
 *
 * src/core/walk.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

/*
 * A directory is descended only when both its paths fit PATH_MAX, and a
 * name from readdir fits NAME_MAX: a child's path always fits this.
 */
#define KB_PATH_BUF		(PATH_MAX + NAME_MAX + 2)

/* A relpath as listed: an escaped name (four bytes for one), a hash. */
#define KB_SHOWN_BUF	(PATH_MAX + 4 * NAME_MAX + 32)

#define KB_STR(x)		#x
#define KB_XSTR(x)		KB_STR(x)
#define KB_BAD_NAME_ERROR	"name is not valid UTF-8"
#define KB_LONG_PATH_ERROR	"path is longer than PATH_MAX (" KB_XSTR(PATH_MAX) " bytes)"

/* One directory being walked. */
typedef struct KbDirFrame
{
	char	   *rel;			/* path relative to root, "" for root */
	size_t		rel_len;
	char	   *abs;			/* its real absolute path */
	size_t		abs_len;
	char	  **names;			/* sorted entries, "." names left out */
	size_t		n;
	size_t		next;
	uint64_t	dev;
	uint64_t	ino;
} KbDirFrame;

/*
 * Opens path (absolute, inside root, with no symbolic links: the walk
 * resolved it) relative to root, refusing any symbolic link on the way
 * (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, Linux 5.6).  Where
 * the kernel lacks openat2, the last component is still opened O_NOFOLLOW.
 * root_fd is root opened by the caller, or -1: then root is opened here
 * (an open and a close more for each file).
 */
static int
open_beneath(const char *root, size_t rootlen, int root_fd, const char *path,
			 int flags)
{
#ifdef SYS_openat2
	const char *rel;
	int			dirfd = root_fd;
	int			fd;
	int			save;
	struct open_how how;

	/* path is below root, or it is not opened: checked before reading past */
	if (strncmp(path, root, rootlen) != 0)
	{
		errno = EXDEV;
		return -1;
	}
	rel = path + rootlen;
	while (*rel == '/')
		rel++;
	if (dirfd < 0)
		dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int) syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
	save = errno;
	if (dirfd != root_fd)
		close(dirfd);
	errno = save;
	if (fd >= 0 || errno != ENOSYS)
		return fd;
#endif
	return open(path, flags | O_NOFOLLOW | O_CLOEXEC);
}

struct KbWalk
{
	const KbAlloc *a;
	char	   *root;			/* realpath of root */
	size_t		rootlen;
	KbScope		scope;
	char	   *product;		/* restrict to products/<product>, or NULL */
	const char *const *paths;	/* restrict to these paths, when npaths > 0 */
	size_t		npaths;
	KbDirFrame *stack;
	size_t		depth;
	size_t		cap;
	char		rel[KB_PATH_BUF];	/* the current entry's paths, whole */
	char		abs[KB_PATH_BUF];
	char		target[PATH_MAX];
	char		shown[KB_SHOWN_BUF];	/* its relpath, when not rel */
};

static int
compare_names(const void *x, const void *y)
{
	return strcmp(*(char *const *) x, *(char *const *) y);
}

static void
free_frame(const KbAlloc *a, KbDirFrame *f)
{
	for (size_t i = 0; i < f->n; i++)
		a->free(a->ctx, f->names[i]);
	if (f->names)
		a->free(a->ctx, f->names);
	a->free(a->ctx, f->rel);
	a->free(a->ctx, f->abs);
}

/*
 * Should the walk enter this directory (path relative to root)?  Depth 1
 * is "products", depth 2 "products/<p>", depth 3 its "items"/"decisions".
 */
static bool
want_dir(const KbWalk *w, const char *rel)
{
	const char *parts[3] = {NULL, NULL, NULL};
	size_t		lens[3] = {0, 0, 0};
	int			depth = 0;
	const char *p = rel;

	while (depth < 3 && *p)
	{
		const char *slash = strchr(p, '/');

		parts[depth] = p;
		lens[depth] = slash ? (size_t) (slash - p) : strlen(p);
		depth++;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (w->scope == KB_SCOPE_ALL && w->product == NULL)
		return true;
	if (depth >= 1 && !(lens[0] == 8 && memcmp(parts[0], "products", 8) == 0))
		return false;
	if (depth >= 2 && w->product != NULL &&
		!(lens[1] == strlen(w->product) &&
		  memcmp(parts[1], w->product, lens[1]) == 0))
		return false;
	if (depth >= 3 && w->scope != KB_SCOPE_ALL)
	{
		bool		items = lens[2] == 5 && memcmp(parts[2], "items", 5) == 0;
		bool		decisions = lens[2] == 9 && memcmp(parts[2], "decisions", 9) == 0;

		if (w->scope == KB_SCOPE_ITEMS)
			return items;
		if (w->scope == KB_SCOPE_DECISIONS)
			return decisions;
		return items || decisions;
	}
	return true;
}

/*
 * Lists a directory into a new frame on the stack.  An unreadable one is
 * counted and skipped.  Returns KB_OK or KB_ENOMEM.
 */
static int
push_dir(KbWalk *w, const char *rel, const char *abs, uint64_t dev,
		 uint64_t ino)
{
	const KbAlloc *a = w->a;
	DIR		   *dir;
	struct dirent *de;
	char	  **names = NULL;
	size_t		n = 0,
				cap = 0;
	KbDirFrame *f;

	/* a directory already on the stack: a loop through links */
	for (size_t i = 0; i < w->depth; i++)
		if (w->stack[i].dev == dev && w->stack[i].ino == ino)
			return KB_OK;

	{
		int			fd = open_beneath(w->root, w->rootlen, -1, abs,
									  O_RDONLY | O_DIRECTORY | O_NONBLOCK);

		dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (dir == NULL)
		{
			/* an unreadable directory is skipped */
			if (fd >= 0)
				close(fd);
			return KB_OK;
		}
	}
	while ((de = readdir(dir)) != NULL)
	{
		char	  **grown;

		if (de->d_name[0] == '.')
			continue;
		grown = kb_array_grow(a, names, sizeof(char *), &cap, n + 1);
		if (grown == NULL)
			goto oom;
		names = grown;
		names[n] = kb_strndup(a, de->d_name, strlen(de->d_name));
		if (names[n] == NULL)
			goto oom;
		n++;
	}
	closedir(dir);
	dir = NULL;
	if (n > 1)
		qsort(names, n, sizeof(char *), compare_names);

	{
		KbDirFrame *stack = kb_array_grow(a, w->stack, sizeof(KbDirFrame),
										  &w->cap, w->depth + 1);

		if (stack == NULL)
			goto oom;
		w->stack = stack;
	}
	f = &w->stack[w->depth];
	memset(f, 0, sizeof(*f));
	f->names = names;
	f->n = n;
	f->dev = dev;
	f->ino = ino;
	f->rel_len = strlen(rel);
	f->abs_len = strlen(abs);
	f->rel = kb_strndup(a, rel, f->rel_len);
	f->abs = kb_strndup(a, abs, f->abs_len);
	if (f->rel == NULL || f->abs == NULL)
	{
		free_frame(a, f);
		return KB_ENOMEM;
	}
	w->depth++;
	return KB_OK;

oom:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < n; i++)
		a->free(a->ctx, names[i]);
	if (names)
		a->free(a->ctx, names);
	return KB_ENOMEM;
}

KbWalk *
kb_walk_open(const KbAlloc *a, const char *root, KbScope scope,
			 const char *product, int *err)
{
	char		real[PATH_MAX];
	struct stat st;
	KbWalk	   *w;

	*err = 0;
	if (realpath(root, real) == NULL)
	{
		*err = errno;
		return NULL;
	}
	if (stat(real, &st) != 0)
	{
		*err = errno;
		return NULL;
	}
	if (!S_ISDIR(st.st_mode))
	{
		*err = ENOTDIR;
		return NULL;
	}
	w = a->alloc(a->ctx, sizeof(KbWalk));
	if (w == NULL)
	{
		*err = ENOMEM;
		return NULL;
	}
	memset(w, 0, sizeof(*w));
	w->a = a;
	w->scope = scope;
	w->root = kb_strndup(a, real, strlen(real));
	w->rootlen = strlen(real);
	if (product != NULL)
		w->product = kb_strndup(a, product, strlen(product));
	if (w->root == NULL || (product != NULL && w->product == NULL) ||
		push_dir(w, "", real, (uint64_t) st.st_dev, (uint64_t) st.st_ino) != KB_OK)
	{
		*err = ENOMEM;
		kb_walk_close(w);
		return NULL;
	}
	if (w->depth == 0)
	{
		/* root itself could not be listed */
		*err = EACCES;
		kb_walk_close(w);
		return NULL;
	}
	return w;
}

/* Is the resolved path root itself or below it? */
static bool
inside_root(const KbWalk *w, const char *path)
{
	return strncmp(path, w->root, w->rootlen) == 0 &&
		(path[w->rootlen] == '\0' || path[w->rootlen] == '/' ||
		 w->rootlen == 1);
}

static void
fill_stat(KbEntry *e, const struct stat *st)
{
	e->size = (int64_t) st->st_size;
	e->mtime_sec = (int64_t) st->st_mtim.tv_sec;
	e->mtime_nsec = (int32_t) st->st_mtim.tv_nsec;
	e->ctime_sec = (int64_t) st->st_ctim.tv_sec;
	e->ctime_nsec = (int32_t) st->st_ctim.tv_nsec;
	e->dev = (uint64_t) st->st_dev;
	e->ino = (uint64_t) st->st_ino;
}

static const char *
special_file_error(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "not a regular file (a FIFO)";
	if (S_ISSOCK(mode))
		return "not a regular file (a socket)";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "not a regular file (a device)";
	if (S_ISDIR(mode))
		return "not a regular file (a directory)";
	return "not a regular file";
}

/* FNV-1a, 64 bits: tells apart the long paths that share a prefix. */
static uint64_t
fnv1a(const char *s, size_t len)
{
	uint64_t	h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char) s[i]) * UINT64_C(1099511628211);
	return h;
}

/*
 * Writes s[0..len) to out with each byte that is not part of a valid UTF-8
 * character as \xNN, stopping where more would exceed limit bytes (never
 * inside a character or an escape).  Returns the bytes written; no NUL.
 * kb_check_utf8 finds each bad byte, so valid text is copied in runs.
 */
static size_t
escape_utf8(char *out, size_t limit, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		o = 0;
	size_t		i = 0;

	while (i < len)
	{
		size_t		run;
		bool		nul;
		unsigned char c;

		if (kb_check_utf8(s + i, len - i, &run, &nul))
			run = len - i;
		if (run > limit - o)
		{
			run = kb_utf8_clip(s + i, limit - o);
			memcpy(out + o, s + i, run);
			return o + run;
		}
		memcpy(out + o, s + i, run);
		o += run;
		i += run;
		if (i >= len || limit - o < 4)
			break;
		c = (unsigned char) s[i++];
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	return o;
}

/* Does a name hold text that reads like an escape ("\x" and two digits)? */
static bool
has_escape_text(const char *name)
{
	for (const char *p = strstr(name, "\\x"); p != NULL; p = strstr(p + 1, "\\x"))
		if (p[2] && strchr("0123456789ABCDEF", p[2]) &&
			p[3] && strchr("0123456789ABCDEF", p[3]))
			return true;
	return false;
}

/*
 * Lists the current entry, whose name is not valid UTF-8, with that error:
 * its relpath is the parent's (valid: such a directory is never entered)
 * and the name escaped.  Escaping could make two paths one: a sibling named
 * as written or another bad name holding "\xNN" as text.  Then a "#" and a
 * hash of the real path keep it unique, since paths are the tables' keys.
 * Returns 1, as kb_walk_next does for an entry.
 */
static int
bad_name_entry(KbWalk *w, const KbDirFrame *top, const char *name,
			   size_t name_len, size_t rel_len, KbEntry *e)
{
	size_t		n = 0;
	char	   *shown_name;

	if (top->rel_len > 0)
	{
		memcpy(w->shown, top->rel, top->rel_len);
		n = top->rel_len;
		w->shown[n++] = '/';
	}
	shown_name = w->shown + n;
	n += escape_utf8(shown_name, sizeof(w->shown) - n - 18, name, name_len);
	w->shown[n] = '\0';
	if (has_escape_text(name) ||
		bsearch(&shown_name, top->names, top->n, sizeof(char *),
				compare_names) != NULL)
		n += (size_t) snprintf(w->shown + n, sizeof(w->shown) - n,
							   "#%016" PRIx64, fnv1a(w->rel, rel_len));
	e->relpath = w->shown;
	e->relpath_len = n;
	e->error = KB_BAD_NAME_ERROR;
	return 1;
}

/*
 * The current entry's path (relative or absolute) does not fit PATH_MAX:
 * it could not be opened by that path, so it is listed with an error,
 * never read nor descended, if it is Markdown or a directory the walk
 * wants.  Its stat comes through its parent, which fits.  Its relpath,
 * a key of the tables, must stay short enough for a btree and unique: the
 * first KB_RELPATH_PREFIX bytes, "...#" and a hash of the whole.
 * Returns 1 when it is listed, 0 when it is skipped.
 */
static int
long_path_entry(KbWalk *w, const KbDirFrame *top, const char *name,
				size_t rel_len, bool md, KbEntry *e)
{
	struct stat st;
	bool		dir = false;
	bool		have = false;
	int			dfd;
	size_t		n;

	dfd = open_beneath(w->root, w->rootlen, -1, top->abs,
					   O_PATH | O_DIRECTORY);
	if (dfd >= 0)
	{
		struct stat tst;

		have = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		dir = have && (S_ISDIR(st.st_mode) ||
					   (S_ISLNK(st.st_mode) &&
						fstatat(dfd, name, &tst, 0) == 0 &&
						S_ISDIR(tst.st_mode)));
		close(dfd);
	}
	if (!have)
		return 0;				/* gone since the directory was listed */
	if (!md && !(dir && want_dir(w, w->rel)))
		return 0;
	fill_stat(e, &st);
	n = escape_utf8(w->shown, KB_RELPATH_PREFIX, w->rel, rel_len);
	n += (size_t) snprintf(w->shown + n, sizeof(w->shown) - n,
						   "...#%016" PRIx64, fnv1a(w->rel, rel_len));
	e->relpath = w->shown;
	e->relpath_len = n;
	e->error = KB_LONG_PATH_ERROR;
	return 1;
}

void
kb_walk_restrict(KbWalk *w, const char *const *paths, size_t n)
{
	w->paths = paths;
	w->npaths = n;
}

bool
kb_relpath_valid(const char *p)
{
	if (*p == '\0')
		return false;
	for (;;)
	{
		const char *slash = strchr(p, '/');
		size_t		len = slash ? (size_t) (slash - p) : strlen(p);

		if (len == 0 || (len == 1 && p[0] == '.') ||
			(len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

/*
 * The first of the n sorted paths not less than key (len bytes) followed
 * by sep (when sep is not '\0'), in bytes' order; n when none.
 */
static size_t
lower_bound(const char *const *paths, size_t n, const char *key, size_t len,
			char sep)
{
	size_t		lo = 0;
	size_t		hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		const char *p = paths[mid];
		size_t		pl = strlen(p);
		int			c = memcmp(p, key, pl < len ? pl : len);

		if (c == 0)
		{
			/* p and key agree on their common length */
			if (pl < len)
				c = -1;
			else if (sep == '\0')
				c = pl > len;
			else if (pl == len)
				c = -1;
			else
				c = (unsigned char) p[len] < (unsigned char) sep ? -1 :
					(unsigned char) p[len] > (unsigned char) sep ? 1 : 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is key (len bytes) one of the n sorted paths? */
static bool
has_path(const char *const *paths, size_t n, const char *key, size_t len)
{
	size_t		i = lower_bound(paths, n, key, len, '\0');

	return i < n && strlen(paths[i]) == len && memcmp(paths[i], key, len) == 0;
}

bool
kb_path_within(const char *path, size_t len, const char *const *paths,
			   size_t n)
{
	/* path itself, or the directories it is below: each a prefix up to a "/" */
	for (size_t k = 1; k <= len; k++)
		if ((k == len || path[k] == '/') && has_path(paths, n, path, k))
			return true;
	return false;
}

/* Is rel one of the walk's paths, below one, or on the way to one? */
static bool
on_the_way(const KbWalk *w, const char *rel, size_t len)
{
	size_t		i;

	if (kb_path_within(rel, len, w->paths, w->npaths))
		return true;
	/* the first path that begins with rel + "/", if any, sorts first */
	i = lower_bound(w->paths, w->npaths, rel, len, '/');
	return i < w->npaths && strlen(w->paths[i]) > len &&
		memcmp(w->paths[i], rel, len) == 0 && w->paths[i][len] == '/';
}

const char *
kb_walk_root(const KbWalk *w)
{
	return w->root;
}

int
kb_walk_next(KbWalk *w, KbEntry *e)
{
	while (w->depth > 0)
	{
		KbDirFrame *top = &w->stack[w->depth - 1];
		const char *name;
		size_t		name_len;
		size_t		rel_len;
		size_t		abs_len;
		size_t		bad_at;
		bool		nul;
		struct stat st;
		bool		md;
		bool		bad;

		if (top->next >= top->n)
		{
			free_frame(w->a, top);
			w->depth--;
			continue;
		}
		name = top->names[top->next++];
		name_len = strlen(name);
		if (name_len > NAME_MAX)
			continue;			/* cannot happen: readdir's d_name holds it */
		md = name_len >= 3 && memcmp(name + name_len - 3, ".md", 3) == 0;

		/* both paths whole: the parent's fit PATH_MAX, so these fit */
		rel_len = 0;
		if (top->rel_len > 0)
		{
			memcpy(w->rel, top->rel, top->rel_len);
			rel_len = top->rel_len;
			w->rel[rel_len++] = '/';
		}
		memcpy(w->rel + rel_len, name, name_len + 1);
		rel_len += name_len;
		memcpy(w->abs, top->abs, top->abs_len);
		abs_len = top->abs_len;
		w->abs[abs_len++] = '/';
		memcpy(w->abs + abs_len, name, name_len + 1);
		abs_len += name_len;

		/* a restricted walk stats nothing off the way to its paths */
		if (w->npaths > 0 && !on_the_way(w, w->rel, rel_len))
			continue;

		memset(e, 0, sizeof(*e));
		e->root = w->root;
		e->root_len = w->rootlen;
		e->relpath = w->rel;
		e->relpath_len = rel_len;
		e->openpath = w->abs;

		if (rel_len >= PATH_MAX || abs_len >= PATH_MAX)
		{
			if (long_path_entry(w, top, name, rel_len, md, e))
				return 1;
			continue;
		}
		/* most names are ASCII: checked a word at a time */
		bad = !kb_check_utf8(name, name_len, &bad_at, &nul);

		if (lstat(w->abs, &st) != 0)
			continue;			/* gone since the directory was listed */

		if (S_ISLNK(st.st_mode))
		{
			struct stat tst;

			fill_stat(e, &st);
			if (realpath(w->abs, w->target) == NULL)
			{
				if (!md)
					continue;
				e->error = errno == ELOOP ? "symbolic link loop"
					: errno == ENOENT ? "dangling symbolic link"
					: "could not resolve symbolic link";
				return bad ? bad_name_entry(w, top, name, name_len, rel_len, e) : 1;
			}
			if (!inside_root(w, w->target))
			{
				if (!md)
					continue;
				e->error = "symbolic link points outside root";
				return bad ? bad_name_entry(w, top, name, name_len, rel_len, e) : 1;
			}
			if (stat(w->target, &tst) != 0)
				continue;
			if (S_ISDIR(tst.st_mode))
			{
				size_t		tl = strlen(w->target);

				/* a link back into its own ancestor is not descended again */
				if (strncmp(top->abs, w->target, tl) == 0 &&
					(top->abs[tl] == '\0' || top->abs[tl] == '/'))
					continue;
				if (!want_dir(w, w->rel))
					continue;
				if (bad)		/* listed, never descended */
					return bad_name_entry(w, top, name, name_len, rel_len, e);
				if (push_dir(w, w->rel, w->target, (uint64_t) tst.st_dev,
							 (uint64_t) tst.st_ino) != KB_OK)
					return KB_ENOMEM;
				continue;
			}
			if (!md)
				continue;
			fill_stat(e, &tst);
			e->openpath = w->target;
			if (!S_ISREG(tst.st_mode))
				e->error = special_file_error(tst.st_mode);
			return bad ? bad_name_entry(w, top, name, name_len, rel_len, e) : 1;
		}
		if (S_ISDIR(st.st_mode))
		{
			if (!want_dir(w, w->rel))
				continue;
			if (bad)			/* listed, never descended */
			{
				fill_stat(e, &st);
				return bad_name_entry(w, top, name, name_len, rel_len, e);
			}
			if (push_dir(w, w->rel, w->abs, (uint64_t) st.st_dev,
						 (uint64_t) st.st_ino) != KB_OK)
				return KB_ENOMEM;
			continue;
		}
		if (!md)
			continue;
		fill_stat(e, &st);
		if (!S_ISREG(st.st_mode))
			e->error = special_file_error(st.st_mode);
		return bad ? bad_name_entry(w, top, name, name_len, rel_len, e) : 1;
	}
	return 0;
}

void
kb_walk_close(KbWalk *w)
{
	if (w == NULL)
		return;
	while (w->depth > 0)
		free_frame(w->a, &w->stack[--w->depth]);
	if (w->stack)
		w->a->free(w->a->ctx, w->stack);
	if (w->root)
		w->a->free(w->a->ctx, w->root);
	if (w->product)
		w->a->free(w->a->ctx, w->product);
	w->a->free(w->a->ctx, w);
}

static int
set_error(const KbAlloc *a, char **error, const char *what, int errnum)
{
	KbBuf		b;

	kb_buf_init(&b, a);
	kb_buf_appendf(&b, "%s: %s", what, strerror(errnum));
	if (b.failed)
		return KB_ENOMEM;
	*error = b.data;
	return KB_OK;
}

/*
 * open_beneath: the path to open has no links left (a link's target was
 * resolved by the walk), so a link swapped in since is refused, not
 * followed out of root.  O_NONBLOCK: a FIFO swapped in does not hang the
 * backend; fstat then refuses it.
 */
int
kb_read_file(const KbAlloc *a, const KbEntry *e, int root_fd,
			 int64_t max_size, char **data, size_t *len, char **error)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		got = 0;
	size_t		want;

	*data = NULL;
	*len = 0;
	*error = NULL;
	fd = open_beneath(e->root, e->root_len, root_fd, e->openpath,
					  O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && (errno == EXDEV || errno == ELOOP))
	{
		*error = "could not open file: a symbolic link now stands in its path";
		return KB_OK;
	}
	if (fd < 0)
		return set_error(a, error, "could not open file", errno);
	if (fstat(fd, &st) != 0)
	{
		int			save = errno;

		close(fd);
		return set_error(a, error, "could not stat file", save);
	}
	if (!S_ISREG(st.st_mode))
	{
		close(fd);
		*error = (char *) special_file_error(st.st_mode);
		return KB_OK;
	}
	if ((int64_t) st.st_size > max_size)
	{
		KbBuf		b;

		close(fd);
		kb_buf_init(&b, a);
		kb_buf_appendf(&b, "file size %lld exceeds max_file_size (%lld bytes)",
					   (long long) st.st_size, (long long) max_size);
		if (b.failed)
			return KB_ENOMEM;
		*error = b.data;
		return KB_OK;
	}
	want = (size_t) st.st_size;
	buf = a->alloc(a->ctx, want + 1);
	if (buf == NULL)
	{
		close(fd);
		return KB_ENOMEM;
	}
	/* a file truncated meanwhile gives what is left; growth is not read */
	while (got < want)
	{
		ssize_t		r = read(fd, buf + got, want - got);

		if (r < 0)
		{
			int			save = errno;

			if (save == EINTR)
				continue;
			close(fd);
			return set_error(a, error, "could not read file", save);
		}
		if (r == 0)
			break;
		got += (size_t) r;
	}
	close(fd);
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return KB_OK;
}
