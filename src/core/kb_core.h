/*-------------------------------------------------------------------------
 *
 * kb_core.h
 *		  The parsing core of kabsd_fdw: walk a backlog directory, read a
 *		  file, split its frontmatter, turn the YAML into a value tree, pull
 *		  out the item and decision fields, and analyse the Markdown body.
 *
 * This header and everything in src/core/ is plain C99 plus POSIX and never
 * includes PostgreSQL headers, so that unit tests and fuzzers build it with
 * a plain cc.  Memory comes from the caller (KbAlloc); problems with a file
 * are returned as values (messages), never as a longjmp.
 *
 * src/core/kb_core.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KB_CORE_H
#define KB_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------------
 * Memory.  The FDW passes a memory-context allocator, the tests malloc.
 * alloc and realloc return NULL on failure; the core then reports
 * KB_ENOMEM.  oom is called only where a library (cmark) cannot take NULL;
 * it must not return.
 * ---------------------------------------------------------------------
 */
typedef struct KbAlloc
{
	void	   *ctx;			/* caller's state, passed back to each hook */
	void	   *(*alloc) (void *ctx, size_t size);
	void	   *(*realloc) (void *ctx, void *ptr, size_t oldsize, size_t newsize);
	void		(*free) (void *ctx, void *ptr);
	void		(*oom) (void *ctx);
} KbAlloc;

/* Status codes of core functions (file problems are messages, not codes). */
#define KB_OK		0
#define KB_ENOMEM	(-1)

/* A slice of text; ptr == NULL means SQL NULL. */
typedef struct KbText
{
	const char *ptr;
	size_t		len;
} KbText;

/* A growable byte buffer on a KbAlloc. */
typedef struct KbBuf
{
	const KbAlloc *a;
	char	   *data;			/* always NUL-terminated when non-NULL */
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed: contents incomplete */
} KbBuf;

extern void kb_buf_init(KbBuf *b, const KbAlloc *a);
extern void kb_buf_append(KbBuf *b, const char *s, size_t n);
extern void kb_buf_appendf(KbBuf *b, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern char *kb_strndup(const KbAlloc *a, const char *s, size_t n);
extern void *kb_array_grow(const KbAlloc *a, void *arr, size_t elemsize,
						   size_t *cap, size_t need);

/* ---------------------------------------------------------------------
 * Text checks and line helpers (text.c)
 * ---------------------------------------------------------------------
 */

/*
 * Checks that the bytes are UTF-8 without NUL.  Returns true when clean,
 * else false with *bad_offset at the first bad byte and *is_nul set when it
 * is a NUL byte.
 */
extern bool kb_check_utf8(const char *s, size_t len, size_t *bad_offset,
						  bool *is_nul);

/* Length of the longest prefix of s[0..len) that is whole UTF-8 characters. */
extern size_t kb_utf8_clip(const char *s, size_t len);

/* Trims ASCII white space (space, tab, CR, LF, FF, VT) at both ends. */
extern KbText kb_trim(const char *s, size_t len);

/* Result of splitting a file into frontmatter and body. */
typedef enum KbSplitResult
{
	KB_SPLIT_NONE,				/* no frontmatter: first line is not "---" */
	KB_SPLIT_OK,
	KB_SPLIT_UNCLOSED			/* "---" opened it, nothing closed it */
} KbSplitResult;

typedef struct KbSplit
{
	const char *yaml;			/* text between the fences */
	size_t		yaml_len;
	int			yaml_first_line;	/* 1-based line of the file it starts on */
	const char *body;			/* everything after the closing line */
	size_t		body_len;
} KbSplit;

extern KbSplitResult kb_split_frontmatter(const char *data, size_t len,
										  KbSplit *out);

/* ---------------------------------------------------------------------
 * YAML value tree (yaml.c)
 * ---------------------------------------------------------------------
 */
typedef enum KbValueKind
{
	KB_VAL_NULL,
	KB_VAL_BOOL,
	KB_VAL_NUMBER,				/* plain integer or decimal, JSON-compatible */
	KB_VAL_STRING,
	KB_VAL_SEQ,
	KB_VAL_MAP
} KbValueKind;

typedef struct KbValue KbValue;
struct KbValue
{
	KbValueKind kind;
	const char *text;			/* scalars: the text as written (NUL-terminated) */
	size_t		len;
	size_t		n;				/* SEQ: items; MAP: pairs */
	KbValue   **items;			/* SEQ: n items; MAP: keys at 2i, values 2i+1 */
	size_t		weight;			/* nodes in the expanded subtree, self included */
};

typedef struct KbYamlLimits
{
	size_t		max_nodes;		/* nodes after alias expansion */
	int			max_depth;		/* nesting of collections */
} KbYamlLimits;

#define KB_YAML_MAX_NODES	100000
#define KB_YAML_MAX_DEPTH	100

/*
 * Parses YAML text into a value tree.  Returns KB_OK with *out set, or
 * KB_OK with *out NULL and *error set (a message for files.error), or
 * KB_ENOMEM.
 */
extern int	kb_yaml_parse(const KbAlloc *a, const char *text, size_t len,
						  int first_line, const KbYamlLimits *limits,
						  KbValue **out, char **error);

/* Last value of key in a mapping (duplicate keys: the last wins), or NULL. */
extern const KbValue *kb_map_get(const KbValue *map, const char *key);

/* Follows a dotted key path ("external.jira_key") through mappings. */
extern const KbValue *kb_map_get_path(const KbValue *map, const char *path);

/* ---------------------------------------------------------------------
 * Values of a definite shape (values.c)
 * ---------------------------------------------------------------------
 */
typedef struct KbDate
{
	int			year;
	int			month;
	int			day;
} KbDate;

typedef struct KbTimestamp
{
	KbDate		date;
	int			hour;
	int			minute;
	int			second;
	int			usec;
	bool		has_offset;		/* an explicit Z or +HH[:MM] was written */
	int			offset_sec;		/* east of UTC */
} KbTimestamp;

extern bool kb_parse_date_prefix(const char *s, size_t len, KbDate *out);
extern bool kb_parse_timestamp(const char *s, size_t len, KbTimestamp *out);
extern bool kb_valid_date(int y, int m, int d);
extern bool kb_parse_uuid(const char *s, size_t len, unsigned char out[16]);
extern bool kb_parse_int64(const char *s, size_t len, int64_t *out);
extern bool kb_is_json_number(const char *s, size_t len);

/* Outcome of reading a value with an expected shape. */
typedef enum KbShape
{
	KB_SHAPE_ABSENT,			/* key missing or null: SQL NULL, no note */
	KB_SHAPE_OK,
	KB_SHAPE_WRONG				/* SQL NULL plus a note */
} KbShape;

/* A list of text values (NULL elements kept, as KbText with ptr NULL). */
typedef struct KbTextList
{
	KbText	   *elems;
	size_t		n;
	bool		present;		/* false: SQL NULL */
} KbTextList;

/* Notes about wrong-shaped values, joined into files.error. */
typedef struct KbNotes
{
	KbBuf		buf;
} KbNotes;

extern void kb_notes_add(KbNotes *notes, const char *key, const char *what,
						 const KbValue *v);

extern KbShape kb_get_text(const KbValue *map, const char *key, KbText *out,
						   KbNotes *notes);
extern KbShape kb_get_text_list(const KbAlloc *a, const KbValue *map,
								const char *key, KbTextList *out,
								KbNotes *notes);
extern KbShape kb_value_text_list(const KbAlloc *a, const KbValue *v,
								  const char *name, KbTextList *out,
								  KbNotes *notes);
extern KbShape kb_get_date(const KbValue *map, const char *key, KbDate *out,
						   KbNotes *notes);
extern KbShape kb_get_uuid(const KbValue *map, const char *key,
						   unsigned char out[16], KbNotes *notes);

/* A scalar's text, or NULL for null and collections. */
extern bool kb_value_scalar_text(const KbValue *v, KbText *out);

/* ---------------------------------------------------------------------
 * Paths and kinds (extract.c)
 * ---------------------------------------------------------------------
 */
typedef enum KbKind
{
	KB_KIND_ITEM,
	KB_KIND_DECISION,
	KB_KIND_INDEX,
	KB_KIND_OTHER
} KbKind;

extern const char *kb_kind_name(KbKind kind);

/* Classifies a root-relative path; *product is a slice of path or NULL. */
extern KbKind kb_classify_path(const char *path, KbText *product);

/* ---------------------------------------------------------------------
 * Item and decision fields (extract.c)
 * ---------------------------------------------------------------------
 */
typedef struct KbItem
{
	bool		has_uid;
	unsigned char uid[16];
	KbText		id;
	KbText		type;
	KbText		state;
	KbText		title;
	KbText		priority;
	KbText		parent;
	KbText		area;
	KbText		iteration;
	KbText		owner;
	KbTextList	tags;
	KbTextList	decisions;
	bool		has_created;
	KbDate		created;
	bool		has_updated;
	KbDate		updated;
} KbItem;

typedef struct KbDecision
{
	bool		has_uid;
	unsigned char uid[16];
	KbText		id;
	KbText		title;
	KbText		status;
	bool		has_date;
	KbDate		date;
	KbTextList	deciders;
	KbTextList	related_items;
	KbText		supersedes;
	KbText		superseded_by;
	KbTextList	tags;
} KbDecision;

/* Does this frontmatter make an item (a non-null id or uid)? */
extern bool kb_is_item(const KbValue *fm);

extern int	kb_extract_item(const KbAlloc *a, const KbValue *fm, KbItem *out,
							KbNotes *notes);
extern int	kb_extract_decision(const KbAlloc *a, const KbValue *fm,
								KbDecision *out, KbNotes *notes);

/* ---------------------------------------------------------------------
 * Links (extract.c, wikilinks from markdown.c)
 * ---------------------------------------------------------------------
 */
typedef enum KbLinkType
{
	KB_LINK_PARENT,
	KB_LINK_RELATES,
	KB_LINK_BLOCKS,
	KB_LINK_BLOCKED_BY,
	KB_LINK_DECISION,
	KB_LINK_WIKILINK
} KbLinkType;

extern const char *kb_link_type_name(KbLinkType t);

typedef struct KbLink
{
	KbLinkType	type;
	KbText		target;
} KbLink;

typedef struct KbLinks
{
	KbLink	   *links;
	size_t		n;
	size_t		cap;
} KbLinks;

/* Adds the frontmatter edges (parent .. decision) in the contract's order. */
extern int	kb_extract_links(const KbAlloc *a, const KbValue *fm, KbLinks *out,
							 KbNotes *notes);

/* ---------------------------------------------------------------------
 * Markdown body (markdown.c, worklog.c)
 * ---------------------------------------------------------------------
 */
typedef struct KbSection
{
	int			level;
	KbText		heading;		/* as written; may point into body or arena */
	KbText		content;		/* slice of the body, trimmed */
	size_t		raw_start;		/* untrimmed content: body offsets */
	size_t		raw_end;
	int			line;			/* 1-based body line of the heading */
} KbSection;

typedef struct KbCheck
{
	int			section;		/* index into sections, -1 when none above */
	bool		checked;
	KbText		text;
} KbCheck;

typedef struct KbWorklogEntry
{
	bool		has_at;
	KbTimestamp at;
	KbText		agent;
	KbText		model;
	KbText		message;
	KbText		new_state;
} KbWorklogEntry;

typedef struct KbMarkdown
{
	KbSection  *sections;
	size_t		nsections;
	KbCheck    *checks;
	size_t		nchecks;
	KbText	   *wikilinks;
	size_t		nwikilinks;
	KbWorklogEntry *worklog;
	size_t		nworklog;
} KbMarkdown;

/* What kb_markdown_analyze must compute beyond the headings. */
#define KB_MD_CHECKLIST		0x01
#define KB_MD_WIKILINKS		0x02
#define KB_MD_WORKLOG		0x04

extern int	kb_markdown_analyze(const KbAlloc *a, const char *body, size_t len,
								int what, KbMarkdown *out);

/* Worklog entries of the sections headed "Worklog" (called by the above). */
extern int	kb_worklog_parse(const KbAlloc *a, const char *body,
							 KbMarkdown *md);

/* ---------------------------------------------------------------------
 * Walk and read (walk.c)
 * ---------------------------------------------------------------------
 */

/* Which part of the tree a scan needs: the rest is never listed. */
typedef enum KbScope
{
	KB_SCOPE_ALL,				/* every .md file */
	KB_SCOPE_ITEMS,				/* products/<p>/items/ */
	KB_SCOPE_DECISIONS,			/* products/<p>/decisions/ */
	KB_SCOPE_ITEMS_DECISIONS
} KbScope;

/*
 * An entry's relpath is the path's own bytes, but for two kinds of entry
 * listed with an error (and never read): a name that is not valid UTF-8 has
 * each invalid byte written as \xNN (and "#" and 16 hex digits of a hash
 * added in the rare case that this would give a path that another entry has),
 * and a path longer than PATH_MAX is cut to its first KB_RELPATH_PREFIX bytes
 * or less (whole characters), then "...#" and 16 hex digits of a 64-bit
 * FNV-1a hash of the whole relative path, so that it stays short enough for
 * a btree index, and unique.
 */
#define KB_RELPATH_PREFIX	1000

typedef struct KbEntry
{
	const char *root;			/* the walk's resolved root */
	size_t		root_len;
	const char *relpath;		/* relative to root, '/' separated, valid
								 * UTF-8 (see above) */
	size_t		relpath_len;
	const char *openpath;		/* absolute path to open (target of a link);
								 * with error set, the real bytes, which may
								 * not fit PATH_MAX */
	int64_t		size;
	int64_t		mtime_sec;
	int32_t		mtime_nsec;
	int64_t		ctime_sec;
	int32_t		ctime_nsec;
	uint64_t	dev;
	uint64_t	ino;
	const char *error;			/* set: list it with this error, never open */
} KbEntry;

typedef struct KbWalk KbWalk;

/*
 * Starts a walk of root (which must be an absolute directory).  product, if
 * non-NULL, restricts the walk to products/<product>/.  Returns NULL with
 * *err set to an errno value (ENOMEM included) when root cannot be opened.
 */
extern KbWalk *kb_walk_open(const KbAlloc *a, const char *root,
							KbScope scope, const char *product, int *err);

/* Next entry: 1 with *e filled (valid until the next call), 0 at the end,
 * KB_ENOMEM. */
extern int	kb_walk_next(KbWalk *w, KbEntry *e);
/* The root the walk resolved, as its entries give it. */
extern const char *kb_walk_root(const KbWalk *w);
extern void kb_walk_close(KbWalk *w);

/*
 * Restricts a walk that has not started to the n paths given (relative to
 * root, each a file or a directory, whose subtree counts): only
 * directories on the way to them are listed, and nothing else is stat'ed.
 * The paths must pass kb_relpath_valid(), be sorted in bytes' order
 * (strcmp) without repeats, and outlive the walk.
 */
extern void kb_walk_restrict(KbWalk *w, const char *const *paths, size_t n);
/* Is p a path relative to root: not empty, no "", "." or ".." part, no
 * leading or trailing "/"? */
extern bool kb_relpath_valid(const char *p);
/* Is path (len bytes) one of the n paths (sorted as kb_walk_restrict()
 * wants them), or below one of them?  A binary search per "/" of path. */
extern bool kb_path_within(const char *path, size_t len,
						   const char *const *paths, size_t n);

/*
 * Reads a walked file of at most max_size bytes.  Returns KB_OK with
 * data and len set, or KB_OK with data NULL and error set, or KB_ENOMEM.
 * root_fd is a descriptor of the entry's root (O_PATH will do), or -1 to
 * have root opened for this file alone.  No descriptor it opens stays open
 * when it returns.
 */
extern int	kb_read_file(const KbAlloc *a, const KbEntry *e, int root_fd,
						 int64_t max_size, char **data, size_t *len,
						 char **error);

/* ---------------------------------------------------------------------
 * One file, analysed as far as a query needs (file.c)
 * ---------------------------------------------------------------------
 */
#define KB_NEED_READ		0x01	/* open, check, split, YAML */
#define KB_NEED_FIELDS		0x02	/* item / decision fields and notes */
#define KB_NEED_LINKS		0x04	/* frontmatter edges */
#define KB_NEED_MARKDOWN	0x08	/* cmark: sections */
#define KB_NEED_CHECKLIST	0x10
#define KB_NEED_WIKILINKS	0x20
#define KB_NEED_WORKLOG		0x40
#define KB_NEED_ALL			0x7F	/* everything a file can give */

/*
 * A need with what it implies: wikilinks are numbered after the
 * frontmatter edges, the checklist, worklog and wikilinks come from the
 * cmark pass, and everything but the walk needs the file read.
 * kb_file_analyze() applies it; a caller deciding whether to read at all
 * applies it first.
 */
extern int	kb_need_closure(int need);

typedef struct KbFileOptions
{
	int64_t		max_file_size;
	KbYamlLimits yaml;
	bool		has_root_fd;	/* root_fd: a descriptor of the entries' root,
								 * kept open by the caller (else root is
								 * opened for each file) */
	int			root_fd;
} KbFileOptions;

typedef struct KbFile
{
	KbKind		kind;
	KbText		product;
	bool		was_read;		/* opened and checked */
	bool		has_frontmatter;
	char	   *fatal;			/* the file yields no rows but in files */
	KbNotes		notes;			/* wrong-shaped values */
	char	   *data;
	size_t		len;
	KbText		body;
	KbValue    *fm;				/* the frontmatter mapping, or NULL */
	bool		is_item;
	bool		is_decision;
	KbItem		item;
	KbDecision	decision;
	KbLinks		links;
	KbMarkdown	md;
} KbFile;

extern int	kb_file_analyze(const KbAlloc *a, const KbEntry *e,
							const KbFileOptions *opts, int need, KbFile *f);

/* files.error: the fatal error, else the notes, else NULL. */
extern const char *kb_file_error(const KbFile *f);

/* ---------------------------------------------------------------------
 * The commit checked out in the Git repository holding a backlog
 * (githead.c).  Git's files are read directly; git is never run.
 * ---------------------------------------------------------------------
 */
#define KB_GIT_HEX_MAX		64	/* a SHA-256 object name; SHA-1 has 40 */
#define KB_GIT_ERROR_MAX	512

typedef enum KbGitStatus
{
	KB_GIT_COMMIT,				/* head->commit holds HEAD's commit */
	KB_GIT_NOT_REPO,			/* the root is in no Git work tree */
	KB_GIT_UNBORN,				/* HEAD names a branch with no commit yet */
	KB_GIT_ERROR				/* head->error says what is wrong */
} KbGitStatus;

typedef struct KbGitHead
{
	char		commit[KB_GIT_HEX_MAX + 1]; /* lowercase hex, 40 or 64
											 * digits, NUL-terminated */
	char		error[KB_GIT_ERROR_MAX];	/* one line, valid UTF-8 */
} KbGitHead;

/*
 * Finds the repository holding root (a directory) as Git does, going up
 * from it to the first ".git" (a directory, or a file "gitdir: <path>" as
 * in a linked worktree or a submodule), and resolves its HEAD through loose
 * refs and packed-refs.  Allocates nothing; the files read are bounded.
 */
extern KbGitStatus kb_git_head(const char *root, KbGitHead *head);

#endif							/* KB_CORE_H */
