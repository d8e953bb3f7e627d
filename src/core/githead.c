/*-------------------------------------------------------------------------
 *
 * githead.c
 *		  The commit checked out in the Git repository that holds a backlog,
 *		  read from Git's own files.
 *
 * A refresh records which commit the files it read belong to.  Running git
 * from a backend is out of the question (a child process, a PATH, a
 * configuration of its own), and a Git library is a large dependency for a
 * few small files, so this reads them as Git's on-disk format defines them:
 *
 *	- Discovery: from the root upwards, the first ".git" that is either a
 *	  git directory (HEAD, and objects/ and refs/ in its common directory) or
 *	  a file "gitdir: <path>" (a linked worktree, a submodule, a repository
 *	  made with --separate-git-dir), the path relative to the directory that
 *	  holds the file.  As git does, the search passes over a ".git"
 *	  directory that is no repository and stops at a file system boundary.
 *	- A linked worktree's git directory names the repository's common
 *	  directory in its file "commondir": HEAD and the per-worktree refs
 *	  (refs/worktree/, refs/bisect/, refs/rewritten/) are the worktree's
 *	  own, every other ref and packed-refs are the common directory's.
 *	- HEAD holds an object name (detached) or "ref: refs/...".  A ref is a
 *	  loose file under the git directory, else a line "<hex> <name>" of
 *	  packed-refs (a loose file wins, as in git).  A loose ref may itself be
 *	  symbolic; as in git, at most GIT_MAX_SYMREFS refs are read, HEAD
 *	  included.  A branch found in neither place is unborn: no commit yet.
 *
 * Each is an error rather than a guess: a ".git" file that names no
 * repository, a HEAD or ref that holds neither an object name nor a ref
 * name, a ref name that git would refuse, the reftable ref storage (not
 * read here), and a loose ref that is a symbolic link to anything but a ref
 * name (git follows such a link anywhere; this reads nothing outside the
 * repository's files).  The environment (GIT_DIR, GIT_CEILING_DIRECTORIES,
 * ...) is ignored: a server's environment says nothing about a backlog's
 * repository.
 *
 * Every file is opened with O_NONBLOCK (a FIFO does not hang the caller),
 * must be a regular file and is read only up to a bound.  A ref name is
 * checked as git checks one (no "..", no component starting with ".", no
 * control characters) and must start with "refs/" before it becomes a
 * path.  Nothing is allocated; messages quote no byte that is not
 * printable UTF-8.
 *
 * src/core/githead.c
 *
 *-------------------------------------------------------------------------
 */
#include "kb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT_SMALL_FILE_MAX	4096	/* HEAD, a loose ref, .git, commondir */
#define GIT_PACKED_REFS_MAX ((off_t) 64 * 1024 * 1024)
#define GIT_PACKED_BUF		8192	/* a packed-refs line longer is skipped */
#define GIT_REFNAME_MAX		1024	/* longer names are refused */
#define GIT_MAX_SYMREFS		5	/* refs read from HEAD on, HEAD included:
									 * git's SYMREF_MAXDEPTH */

/* Where a repository's files are. */
typedef struct GitRepo
{
	char		gitdir[PATH_MAX];	/* HEAD and the per-worktree refs */
	char		commondir[PATH_MAX];	/* every other ref, packed-refs */
} GitRepo;

/* What a loose ref (or HEAD) holds. */
typedef enum RefKind
{
	REF_MISSING,				/* no loose file: look in packed-refs */
	REF_OBJECT,					/* an object name (lowercase hex) */
	REF_SYMBOLIC				/* the name of another ref */
} RefKind;

static int	find_repo(const char *root, GitRepo *repo, KbGitHead *head);
static int	open_gitdir(const char *dir, GitRepo *repo, KbGitHead *head);
static int	read_gitfile(const char *dotgit, const char *dir, GitRepo *repo,
						 KbGitHead *head);
static int	read_path_file(const char *file, const char *prefix,
						   const char *dir, char *out, KbGitHead *head);
static int	read_loose_ref(const GitRepo *repo, const char *name,
						   RefKind *kind, char *value, KbGitHead *head);
static int	read_packed_ref(const GitRepo *repo, const char *name, char *hex,
							KbGitHead *head);
static int	packed_line(const char *line, size_t len, const char *name,
						char *hex, const char *path, KbGitHead *head);
static bool parse_ref_text(const char *text, size_t len, RefKind *kind,
						   char *value);
static bool valid_refname(const char *name);
static bool is_per_worktree(const char *name);
static size_t hex_prefix(const char *s, size_t len);
static void copy_hex(char *out, const char *hex, size_t len);
static bool is_space(char c);
static bool join_path(char *out, const char *dir, const char *name);
static int	read_small(const char *path, bool nofollow, char *buf,
					   size_t size, size_t *len);
static int	read_error(KbGitHead *head, const char *path, int err,
					   size_t size);
static int	git_error(KbGitHead *head, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/*
 * Finds the repository that holds root and resolves its HEAD.  head->commit
 * is set only for KB_GIT_COMMIT, head->error only for KB_GIT_ERROR.
 */
KbGitStatus
kb_git_head(const char *root, KbGitHead *head)
{
	GitRepo		repo;
	char		name[GIT_REFNAME_MAX + 1];
	char		path[PATH_MAX];
	struct stat st;
	int			rc;

	head->commit[0] = '\0';
	head->error[0] = '\0';
	rc = find_repo(root, &repo, head);
	if (rc < 0)
		return KB_GIT_ERROR;
	if (rc == 0)
		return KB_GIT_NOT_REPO;

	/* a repository of git 2.45's reftable format has no loose refs to read */
	if (join_path(path, repo.commondir, "reftable") &&
		stat(path, &st) == 0 && S_ISDIR(st.st_mode))
	{
		git_error(head, "the Git repository \"%s\" keeps its refs in a reftable, which cannot be read",
				  repo.commondir);
		return KB_GIT_ERROR;
	}

	strcpy(name, "HEAD");
	for (int reads = 0; reads < GIT_MAX_SYMREFS; reads++)
	{
		RefKind		kind;
		char		value[GIT_REFNAME_MAX + 1];

		if (read_loose_ref(&repo, name, &kind, value, head) < 0)
			return KB_GIT_ERROR;
		switch (kind)
		{
			case REF_OBJECT:
				strcpy(head->commit, value);
				return KB_GIT_COMMIT;
			case REF_SYMBOLIC:
				strcpy(name, value);
				break;
			case REF_MISSING:
				/* open_gitdir saw HEAD: it was removed since */
				if (reads == 0)
				{
					git_error(head, "the Git repository \"%s\" has no HEAD",
							  repo.gitdir);
					return KB_GIT_ERROR;
				}
				if (!is_per_worktree(name))
				{
					rc = read_packed_ref(&repo, name, head->commit, head);
					if (rc < 0)
						return KB_GIT_ERROR;
					if (rc > 0)
						return KB_GIT_COMMIT;
				}
				return KB_GIT_UNBORN;
		}
	}
	git_error(head, "HEAD of the Git repository \"%s\" names no commit within %d symbolic refs",
			  repo.gitdir, GIT_MAX_SYMREFS);
	return KB_GIT_ERROR;
}

/*
 * Goes up from root to the first directory whose ".git" is a repository.
 * Returns 1 with repo filled, 0 when there is none (on this file system),
 * -1 with head->error set.  The root's symbolic links are resolved first,
 * as git's getcwd() does, so that ".." means the real parent.
 */
static int
find_repo(const char *root, GitRepo *repo, KbGitHead *head)
{
	char		dir[PATH_MAX];
	char		dotgit[PATH_MAX];
	struct stat st;
	dev_t		dev;

	if (realpath(root, dir) == NULL)
		return git_error(head, "could not resolve the path \"%s\": %s",
						 root, strerror(errno));
	if (stat(dir, &st) != 0)
		return git_error(head, "could not stat \"%s\": %s", dir,
						 strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return git_error(head, "\"%s\" is not a directory", dir);
	dev = st.st_dev;

	for (;;)
	{
		int			rc = 0;
		char	   *slash;

		if (!join_path(dotgit, dir, ".git"))
			return git_error(head, "the path \"%s\" is too long", dir);

		/*
		 * As git: a .git that cannot be stat'ed, or is neither a directory
		 * nor a file, or a directory that is no repository, is passed over;
		 * a .git file that names no repository is an error.
		 */
		if (stat(dotgit, &st) == 0)
		{
			if (S_ISDIR(st.st_mode))
				rc = open_gitdir(dotgit, repo, head);
			else if (S_ISREG(st.st_mode))
				rc = read_gitfile(dotgit, dir, repo, head);
		}
		if (rc != 0)
			return rc;

		if (strcmp(dir, "/") == 0)
			return 0;
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		/* git stops at a mount point unless told otherwise */
		if (stat(dir, &st) != 0 || st.st_dev != dev)
			return 0;
	}
}

/*
 * Is dir a git directory?  As git's is_git_directory(): a HEAD, and
 * objects/ and refs/ in the common directory (the one its file "commondir"
 * names, else dir itself).  HEAD's contents are read later: a malformed HEAD
 * is an error, where git would pass the directory over.  Returns 1 with
 * repo filled, 0 when it is not one, -1 with head->error set.
 */
static int
open_gitdir(const char *dir, GitRepo *repo, KbGitHead *head)
{
	char		path[PATH_MAX];
	struct stat st;
	int			rc;

	if (strlen(dir) >= sizeof(repo->gitdir))
		return git_error(head, "the path \"%s\" is too long", dir);
	strcpy(repo->gitdir, dir);

	if (!join_path(path, dir, "commondir"))
		return git_error(head, "the path \"%s\" is too long", dir);
	rc = read_path_file(path, "", dir, repo->commondir, head);
	if (rc < 0)
		return -1;
	if (rc == 0)
		strcpy(repo->commondir, dir);

	if (!join_path(path, dir, "HEAD") || lstat(path, &st) != 0)
		return 0;
	if (!join_path(path, repo->commondir, "objects") ||
		stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (!join_path(path, repo->commondir, "refs") ||
		stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return 0;
	return 1;
}

/*
 * A ".git" file, as git's read_gitfile() reads it: "gitdir: <path>", the
 * path relative to dir (the directory holding the file) unless absolute.
 * Returns 1 with repo filled, 0 when the file has gone since its stat, or
 * -1 with head->error set: a .git file that names no repository is an
 * error, as in git.
 */
static int
read_gitfile(const char *dotgit, const char *dir, GitRepo *repo,
			 KbGitHead *head)
{
	char		target[PATH_MAX];
	int			rc;

	rc = read_path_file(dotgit, "gitdir: ", dir, target, head);
	if (rc <= 0)
		return rc;
	rc = open_gitdir(target, repo, head);
	if (rc == 0)
		return git_error(head, "\"%s\" names \"%s\", which is not a Git repository",
						 dotgit, target);
	return rc;
}

/*
 * Reads a file that names a directory, as git reads a ".git" file and a
 * worktree's "commondir": prefix, then a path, line ends stripped (only
 * those); a relative path is relative to dir.  Returns 1 with out (PATH_MAX
 * bytes) set, 0 when there is no such file, -1 with head->error set.
 */
static int
read_path_file(const char *file, const char *prefix, const char *dir,
			   char *out, KbGitHead *head)
{
	char		text[GIT_SMALL_FILE_MAX];
	size_t		plen = strlen(prefix);
	const char *path = text + plen;
	size_t		len;
	int			err;

	err = read_small(file, false, text, sizeof(text), &len);
	if (err == ENOENT)
		return 0;
	if (err != 0)
		return read_error(head, file, err, sizeof(text));
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
	if (len <= plen || memcmp(text, prefix, plen) != 0 ||
		memchr(text, '\0', len) != NULL)
		return git_error(head, "\"%s\" does not hold \"%s<path>\"", file,
						 prefix);
	if (path[0] == '/' ? len - plen >= PATH_MAX : !join_path(out, dir, path))
		return git_error(head, "the path in \"%s\" is too long", file);
	if (path[0] == '/')
		strcpy(out, path);
	return 1;
}

/*
 * Reads the loose ref name (or HEAD) in the directory git keeps it in.
 * *kind is REF_MISSING when there is no such file (a directory of that name
 * is none: refs/heads/a when only refs/heads/a/b exists).  An old-style
 * symbolic ref, a symbolic link to "refs/...", is read as the link's text;
 * a link to anything else is refused, not followed.  value (at least
 * GIT_REFNAME_MAX + 1 bytes) receives the object name or the ref name.
 * Returns 0, or -1 with head->error set.
 */
static int
read_loose_ref(const GitRepo *repo, const char *name, RefKind *kind,
			   char *value, KbGitHead *head)
{
	char		path[PATH_MAX];
	char		text[GIT_SMALL_FILE_MAX];
	const char *dir = is_per_worktree(name) ? repo->gitdir : repo->commondir;
	struct stat st;
	size_t		len;
	int			err;

	*kind = REF_MISSING;
	if (!join_path(path, dir, name))
		return git_error(head, "the path of ref \"%s\" in \"%s\" is too long",
						 name, dir);
	if (lstat(path, &st) != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return git_error(head, "could not stat \"%s\": %s", path,
						 strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		return 0;
	if (S_ISLNK(st.st_mode))
	{
		ssize_t		n = readlink(path, value, GIT_REFNAME_MAX + 1);

		if (n < 0)
			return git_error(head, "could not read the symbolic link \"%s\": %s",
							 path, strerror(errno));
		if (n > GIT_REFNAME_MAX)
			n = GIT_REFNAME_MAX;	/* refused below: too long to be a ref */
		value[n] = '\0';
		if (n == GIT_REFNAME_MAX || !valid_refname(value))
			return git_error(head, "\"%s\" is a symbolic link to something other than a ref",
							 path);
		*kind = REF_SYMBOLIC;
		return 0;
	}

	err = read_small(path, true, text, sizeof(text), &len);
	if (err == ENOENT)
		return 0;				/* packed since the lstat */
	if (err != 0)
		return read_error(head, path, err, sizeof(text));
	if (!parse_ref_text(text, len, kind, value))
		return git_error(head, "\"%s\" holds neither an object name nor a valid ref name",
						 path);
	return 0;
}

/*
 * Looks name up in the common directory's packed-refs: an optional header
 * "# pack-refs with: ...", then lines "<hex> <refname>", each possibly
 * followed by a peeled line "^<hex>".  The file is streamed through a fixed
 * buffer; a line too long for it cannot hold a ref name this reads and is
 * skipped.  Returns 1 with hex set, 0 when absent (or no packed-refs), -1
 * with head->error set.
 */
static int
read_packed_ref(const GitRepo *repo, const char *name, char *hex,
				KbGitHead *head)
{
	char		path[PATH_MAX];
	char		buf[GIT_PACKED_BUF];
	size_t		have = 0;
	off_t		total = 0;
	bool		skipping = false;	/* inside a line longer than buf */
	struct stat st;
	int			fd;
	int			rc = 0;

	if (!join_path(path, repo->commondir, "packed-refs"))
		return git_error(head, "the path \"%s\" is too long", repo->commondir);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return 0;
		return git_error(head, "could not open \"%s\": %s", path,
						 strerror(errno));
	}
	if (fstat(fd, &st) != 0)
		rc = git_error(head, "could not stat \"%s\": %s", path,
					   strerror(errno));
	else if (!S_ISREG(st.st_mode))
		rc = git_error(head, "\"%s\" is not a regular file", path);
	else if (st.st_size > GIT_PACKED_REFS_MAX)
		rc = git_error(head, "\"%s\" is larger than %lld bytes", path,
					   (long long) GIT_PACKED_REFS_MAX);

	while (rc == 0)
	{
		ssize_t		n = read(fd, buf + have, sizeof(buf) - have);
		char	   *line;
		char	   *end;
		char	   *nl;

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			rc = git_error(head, "could not read \"%s\": %s", path,
						   strerror(errno));
			break;
		}
		total += n;
		if (total > GIT_PACKED_REFS_MAX)
		{
			rc = git_error(head, "\"%s\" is larger than %lld bytes", path,
						   (long long) GIT_PACKED_REFS_MAX);
			break;
		}
		have += (size_t) n;
		line = buf;
		end = buf + have;
		while (rc == 0 && (nl = memchr(line, '\n', (size_t) (end - line))) != NULL)
		{
			if (skipping)
				skipping = false;
			else
				rc = packed_line(line, (size_t) (nl - line), name, hex, path,
								 head);
			line = nl + 1;
		}
		if (rc != 0)
			break;
		if (n == 0)
		{
			/* git ends every line; an unterminated last one is read too */
			if (line < end && !skipping)
				rc = packed_line(line, (size_t) (end - line), name, hex, path,
								 head);
			break;
		}
		if (line == buf && have == sizeof(buf))
		{
			skipping = true;
			have = 0;
		}
		else
		{
			have = (size_t) (end - line);
			memmove(buf, line, have);
		}
	}
	close(fd);
	return rc < 0 ? -1 : rc;
}

/*
 * One line of packed-refs: 1 (with hex set) when it is name's, 0 when it is
 * another ref's or a header or peeled line, -1 when it is none of these.
 */
static int
packed_line(const char *line, size_t len, const char *name, char *hex,
			const char *path, KbGitHead *head)
{
	size_t		n;
	size_t		namelen = strlen(name);

	if (len > 0 && (line[0] == '#' || line[0] == '^'))
		return 0;
	n = hex_prefix(line, len);
	if ((n != 40 && n != KB_GIT_HEX_MAX) || n == len || line[n] != ' ')
	{
		git_error(head, "\"%s\" holds a line that is not \"<object name> <ref name>\"",
				  path);
		return -1;
	}
	if (len - n - 1 != namelen || memcmp(line + n + 1, name, namelen) != 0)
		return 0;
	copy_hex(hex, line, n);
	return 1;
}

/*
 * The text of HEAD or a loose ref, as git's parse_loose_ref_contents()
 * reads it: "ref:", white space and a ref name; or an object name, then
 * nothing or white space (and whatever follows that).  Sets *kind and
 * value.  False when it is neither, or the ref name is one git refuses.
 */
static bool
parse_ref_text(const char *text, size_t len, RefKind *kind, char *value)
{
	size_t		n;

	if (memchr(text, '\0', len) != NULL)
		return false;
	if (len >= 4 && memcmp(text, "ref:", 4) == 0)
	{
		const char *p = text + 4;
		const char *end = text + len;

		while (p < end && is_space(*p))
			p++;
		while (end > p && is_space(end[-1]))
			end--;
		if (end - p > GIT_REFNAME_MAX)
			return false;
		memcpy(value, p, (size_t) (end - p));
		value[end - p] = '\0';
		if (!valid_refname(value))
			return false;
		*kind = REF_SYMBOLIC;
		return true;
	}
	n = hex_prefix(text, len);
	if ((n == 40 || n == KB_GIT_HEX_MAX) && (n == len || is_space(text[n])))
	{
		copy_hex(value, text, n);
		*kind = REF_OBJECT;
		return true;
	}
	return false;
}

/*
 * A ref name that may become a path: it starts with "refs/" and passes
 * git's check_refname_format(): no control character, space or any of
 * ~^:?*[\, no "..", "@{" or "//", no component starting with "." or ending
 * with ".lock", no "/" or "." at the end.
 */
static bool
valid_refname(const char *name)
{
	size_t		len = strlen(name);
	const char *comp = name;

	if (len <= 5 || len > GIT_REFNAME_MAX || strncmp(name, "refs/", 5) != 0)
		return false;
	if (name[len - 1] == '/' || name[len - 1] == '.' ||
		strstr(name, "..") != NULL || strstr(name, "@{") != NULL ||
		strstr(name, "//") != NULL)
		return false;
	for (const char *p = name; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c <= ' ' || c == 0x7f || strchr("~^:?*[\\", c) != NULL)
			return false;
	}
	for (;;)
	{
		const char *slash = strchr(comp, '/');
		size_t		clen = slash ? (size_t) (slash - comp) : strlen(comp);

		if (comp[0] == '.' ||
			(clen >= 5 && memcmp(comp + clen - 5, ".lock", 5) == 0))
			return false;
		if (slash == NULL)
			return true;
		comp = slash + 1;
	}
}

/* Refs each worktree has its own of (git's files backend). */
static bool
is_per_worktree(const char *name)
{
	return strcmp(name, "HEAD") == 0 ||
		strncmp(name, "refs/worktree/", 14) == 0 ||
		strncmp(name, "refs/bisect/", 12) == 0 ||
		strncmp(name, "refs/rewritten/", 15) == 0;
}

/* How many hex digits s starts with (at most KB_GIT_HEX_MAX + 1). */
static size_t
hex_prefix(const char *s, size_t len)
{
	size_t		n = 0;

	while (n < len && n <= KB_GIT_HEX_MAX &&
		   ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
			(s[n] >= 'A' && s[n] <= 'F')))
		n++;
	return n;
}

/* Copies len hex digits to out, lowercase, NUL-terminated. */
static void
copy_hex(char *out, const char *hex, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] - 'A' + 'a' : hex[i];
	out[len] = '\0';
}

/* ASCII white space, whatever the locale. */
static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
		c == '\v';
}

/* out = dir/name in PATH_MAX bytes; false when it does not fit. */
static bool
join_path(char *out, const char *dir, const char *name)
{
	int			n;

	n = snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir,
				 name);
	return n >= 0 && n < PATH_MAX;
}

/*
 * Reads a regular file of less than size bytes into buf, NUL-terminated.
 * Returns 0, or an errno value: EINVAL for what is not a regular file,
 * EFBIG for a file too large, ELOOP for a symbolic link with nofollow.
 * O_NONBLOCK: a FIFO does not block the open.
 */
static int
read_small(const char *path, bool nofollow, char *buf, size_t size,
		   size_t *len)
{
	struct stat st;
	size_t		n = 0;
	int			err = 0;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
			  (nofollow ? O_NOFOLLOW : 0));
	if (fd < 0)
		return errno;
	if (fstat(fd, &st) != 0)
		err = errno;
	else if (!S_ISREG(st.st_mode))
		err = EINVAL;
	else if (st.st_size >= (off_t) size)
		err = EFBIG;
	while (err == 0)
	{
		ssize_t		r;

		if (n == size)
		{
			err = EFBIG;		/* it grew since the fstat */
			break;
		}
		r = read(fd, buf + n, size - n);
		if (r < 0 && errno != EINTR)
			err = errno;
		else if (r == 0)
			break;
		else if (r > 0)
			n += (size_t) r;
	}
	close(fd);
	if (err != 0)
		return err;
	buf[n] = '\0';
	*len = n;
	return 0;
}

/* The message for read_small's err on path; returns -1. */
static int
read_error(KbGitHead *head, const char *path, int err, size_t size)
{
	if (err == EINVAL)
		return git_error(head, "\"%s\" is not a regular file", path);
	if (err == EFBIG)
		return git_error(head, "\"%s\" is larger than %zu bytes", path,
						 size - 1);
	if (err == ELOOP)
		return git_error(head, "\"%s\" is a symbolic link", path);
	return git_error(head, "could not read \"%s\": %s", path, strerror(err));
}

/*
 * Sets head->error and returns -1, the helpers' error result.  The message may quote paths read from a .git file:
 * control characters and bytes that are not UTF-8 become "?", so it is
 * one line of valid UTF-8 whatever the files hold (and a character cut by
 * truncation goes too).
 */
static int
git_error(KbGitHead *head, const char *fmt,...)
{
	va_list		ap;
	size_t		len;
	size_t		bad;
	bool		nul;

	va_start(ap, fmt);
	vsnprintf(head->error, sizeof(head->error), fmt, ap);
	va_end(ap);
	len = strlen(head->error);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) head->error[i] < ' ' || head->error[i] == 0x7f)
			head->error[i] = '?';
	while (!kb_check_utf8(head->error, len, &bad, &nul))
		head->error[bad] = '?';
	return -1;
}
