/*-------------------------------------------------------------------------
 *
 * kabsd_fdw.h
 *		  Foreign-data wrapper over a Markdown backlog directory.
 *
 * src/kabsd_fdw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KABSD_FDW_H
#define KABSD_FDW_H

#include "postgres.h"

#include "core/kb_core.h"
#include "executor/tuptable.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

/* The seven tables of the data model. */
typedef enum KabsdTable
{
	KT_FILES,
	KT_ITEMS,
	KT_DECISIONS,
	KT_LINKS,
	KT_WORKLOG,
	KT_SECTIONS,
	KT_CHECKLIST,
	KT_COUNT
} KabsdTable;

/*
 * What a column of the data model holds.  A name shared by two tables
 * (id, title, tags) is two fields when its source differs.
 */
typedef enum KabsdField
{
	KF_PATH,
	KF_PRODUCT,
	KF_MTIME,
	KF_FRONTMATTER,
	KF_BODY,
	KF_FILE_KIND,
	KF_FILE_SIZE,
	KF_FILE_HAS_FRONTMATTER,
	KF_FILE_ERROR,
	KF_ITEM_UID,
	KF_ITEM_ID,
	KF_ITEM_TYPE,
	KF_ITEM_STATE,
	KF_ITEM_TITLE,
	KF_ITEM_PRIORITY,
	KF_ITEM_PARENT,
	KF_ITEM_AREA,
	KF_ITEM_ITERATION,
	KF_ITEM_OWNER,
	KF_ITEM_TAGS,
	KF_ITEM_DECISIONS,
	KF_ITEM_CREATED,
	KF_ITEM_UPDATED,
	KF_DECISION_UID,
	KF_DECISION_ID,
	KF_DECISION_TITLE,
	KF_DECISION_STATUS,
	KF_DECISION_DATE,
	KF_DECISION_DECIDERS,
	KF_DECISION_RELATED_ITEMS,
	KF_DECISION_SUPERSEDES,
	KF_DECISION_SUPERSEDED_BY,
	KF_DECISION_TAGS,
	KF_OWNER_UID,				/* source_uid, item_uid */
	KF_OWNER_ID,				/* source_id, item_id */
	KF_ORDINAL,
	KF_LINK_TYPE,
	KF_LINK_TARGET_ID,
	KF_WORKLOG_AT,
	KF_WORKLOG_AGENT,
	KF_WORKLOG_MODEL,
	KF_WORKLOG_MESSAGE,
	KF_WORKLOG_NEW_STATE,
	KF_SECTION_LEVEL,
	KF_SECTION_HEADING,
	KF_SECTION_CONTENT,
	KF_CHECK_SECTION,
	KF_CHECK_CHECKED,
	KF_CHECK_TEXT
} KabsdField;

/* One column of a table as the data model defines it. */
typedef struct KabsdColumnDef
{
	const char *name;
	KabsdField	field;
	Oid			type;
	const char *sqltype;		/* as IMPORT FOREIGN SCHEMA writes it */
	int			need;			/* KB_NEED_* flags to compute it */
	const char *comment;
} KabsdColumnDef;

typedef struct KabsdTableDef
{
	const char *name;
	const KabsdColumnDef *cols;
	int			ncols;
	KbScope		scope;			/* the part of the tree it reads */
	int			row_need;		/* KB_NEED_* flags to know its rows */
	const char *comment;
} KabsdTableDef;

/* How one attribute of a foreign table is filled. */
#define KABSD_COL_DROPPED	(-2)
#define KABSD_COL_KEY		(-1)
#define KABSD_COL_DERIVED	(-3)	/* links.target_uid of the snapshot */

typedef struct KabsdColumn
{
	int			colid;			/* index into the table's cols, or above */
	char	   *key;			/* KABSD_COL_KEY: the frontmatter key path */
	Oid			type;			/* the attribute's type */
} KabsdColumn;

typedef struct KabsdBinding
{
	KabsdTable	table;
	int			natts;
	KabsdColumn *cols;			/* one per attribute */
} KabsdBinding;

/* Options of a foreign table and its server. */
typedef struct KabsdOptions
{
	char	   *root;
	int64		max_file_size;
	KabsdTable	table;
	char	   *servername;
} KabsdOptions;

/*
 * The parsing rules' version: part of every file's stamp, so that a release
 * that parses differently re-reads every file at the next refresh.
 */
#define KABSD_PARSER_VERSION "kabsd_fdw parser 1"

#define KABSD_DEFAULT_MAX_FILE_SIZE (INT64CONST(64) * 1024 * 1024)

/* options.c */
struct ForeignServer;
extern void kabsd_get_server_options(struct ForeignServer *server,
									 KabsdOptions *opts);
extern void kabsd_get_options(Oid foreigntableid, KabsdOptions *opts);
extern bool kabsd_parse_table_name(const char *name, KabsdTable *out);
extern void kabsd_check_root_privilege(void);
extern void kabsd_server_options(Name servername, KabsdOptions *opts);

/* tables.c */
extern const KabsdTableDef kabsd_tables[KT_COUNT];
extern KabsdBinding *kabsd_bind_columns(Relation rel, KabsdTable table);
extern int	kabsd_column_need(const KabsdBinding *b, int attno);
extern List *kabsd_import_statements(const char *server, const char *schema,
									 List *table_list, int list_type);

/* convert.c */
extern int	kabsd_file_rows(KabsdTable table, const KbFile *f);
extern void kabsd_fill_row(const KabsdBinding *b, const bool *wanted,
						   const KbEntry *e, const KbFile *f, size_t row,
						   Datum *values, bool *isnull);

/* scan.c: a scan of one table that the executor, ANALYZE and the
 * refresh all drive */
typedef struct KabsdScan KabsdScan;
extern KabsdScan *kabsd_scan_begin(const char *root, int64 max_file_size,
								   KbScope scope, const char *product,
								   int need, MemoryContext parent);
extern bool kabsd_scan_next_file(KabsdScan *scan, KbEntry **entry,
								 KbFile **file);
extern bool kabsd_scan_next_entry(KabsdScan *scan, KbEntry **entry);
extern void kabsd_scan_restrict(KabsdScan *scan, const char *const *paths,
								int n);
extern KbFile *kabsd_scan_analyze(KabsdScan *scan);
extern KabsdScan *kabsd_analyzer_begin(const char *root, int64 max_file_size,
									   int need, MemoryContext parent);
extern KbFile *kabsd_scan_analyze_entry(KabsdScan *scan, const KbEntry *e);
extern void kabsd_scan_end(KabsdScan *scan);
extern void kabsd_scan_counts(const KabsdScan *scan, int64 *walked,
							  int64 *read, int64 *errors);

/* ---------------------------------------------------------------------
 * The refresh of a snapshot, one file per concern.  Calls go one way:
 * refresh.c (the SQL entry point) calls the others; refresh_parallel.c
 * calls the diff and the work list; the diff and the writer call the
 * link targets; the diff hands every change to a sink (DiffSink) that the
 * writer or the parallel workers provide, never calling them by name.
 * ---------------------------------------------------------------------
 */
#include "storage/itemptr.h"
#include "utils/snapshot.h"

struct EState;
struct ResultRelInfo;
struct IndexScanDescData;
struct BulkInsertStateData;
struct Tuplestorestate;
struct targets_hash;
struct shm_mq_handle;

/* One snapshot table, as a participant of a refresh has it open. */
typedef struct SnapTable
{
	KabsdTable	table;
	Relation	rel;
	KabsdBinding *binding;
	bool	   *wanted;
	Relation	pathidx;		/* a unique btree index led by path */
	struct IndexScanDescData *pathscan; /* on it, kept for every file */
	AttrNumber	path_att;		/* attribute numbers, 0 when absent */
	AttrNumber	ordinal_att;
	AttrNumber	product_att;
	AttrNumber	id_att;
	AttrNumber	uid_att;
	AttrNumber	error_att;
	AttrNumber	type_att;
	AttrNumber	target_id_att;
	AttrNumber	target_att;
	bool		empty;			/* no row when the refresh began */
	TupleTableSlot *old_slot;
	TupleTableSlot *new_slot;
	TupleTableSlot *min_slot;	/* rows kept in a tuplestore */
	Relation	ididx;			/* items and decisions: the indexes on id and */
	Relation	nameidx;		/* on file name (links: target_id's), when
								 * targets are looked up (refresh_targets.c) */
	/* the leader's writing (refresh_write.c) */
	struct ResultRelInfo *rri;
	TupleTableSlot **bulk;		/* empty tables: rows batched for the heap */
	int			nbulk;
	Size		bulk_bytes;
	struct BulkInsertStateData *bistate;
	int			insert_options; /* TABLE_INSERT_FROZEN for a table made now */
	int64		inserted;
	int64		deleted;
	struct Tuplestorestate *to_insert;	/* rows kept to write later */
	ItemPointerData *to_delete; /* rows kept to delete later */
	int64		ndelete;
	int64		maxdelete;
} SnapTable;

typedef struct RefreshState RefreshState;

/*
 * Where the differences the diff finds go: written at once, kept until
 * parallel mode ends, or sent from a worker to the leader.
 */
typedef struct DiffSink
{
	void		(*insert) (RefreshState *rs, SnapTable *st, TupleTableSlot *slot);
	void		(*delete) (RefreshState *rs, SnapTable *st, ItemPointer tid);
} DiffSink;

/* One participant of a refresh: the leader or a parallel worker. */
struct RefreshState
{
	SnapTable	t[KT_COUNT];
	const DiffSink *sink;
	bool		defer_links;	/* the links table was empty: fill it last */
	char	   *backlog_name;	/* whose snapshot */
	Oid			nspid;			/* its schema */
	struct EState *estate;
	Snapshot	snapshot;		/* every participant compares with this one */
	struct targets_hash *targets;	/* link targets, built when first needed */
	MemoryContext targets_cxt;
	uint64		targets_sum;	/* of what items and decisions give targets */
	bool		collect_targets;	/* note each target a row gives or takes */
	bool		retarget_all;	/* more changed than is worth noting */
	List	   *changed_targets;	/* ChangedTarget (refresh_targets.c) */
	bool		parallel_used;	/* workers shared the reading */
	int64		errors_delta;	/* files with an error, gained less lost */
	int64		files_read;
	MemoryContext keep_cxt;		/* the leader in parallel mode: holds what
								 * is kept */
	struct shm_mq_handle *mqh;	/* a worker: its queue to the leader */
};

/* refresh_diff.c: a file's rows against those each table holds */
extern void kabsd_diff_begin(RefreshState *rs, const char *backlog,
							 const Oid *relids, Snapshot snapshot, bool leader);
extern void kabsd_diff_end(RefreshState *rs);
extern void kabsd_diff_file(RefreshState *rs, KabsdScan *analyzer,
							const KbEntry *e, ItemPointer files_tid,
							MemoryContext filecxt);
extern void kabsd_diff_gone(RefreshState *rs, const char *path,
							ItemPointer files_tid);
extern void kabsd_diff_end_scans(RefreshState *rs);
extern void kabsd_diff_retarget_links(RefreshState *rs, MemoryContext rowcxt);

/* refresh_targets.c: what links.target_uid resolves against */
extern void kabsd_targets_build(RefreshState *rs);
extern void kabsd_targets_resolve(RefreshState *rs, const SnapTable *st,
								  Datum *values, bool *nulls);
extern uint64 kabsd_targets_row_hash(const SnapTable *st, const Datum *values,
									 const bool *nulls);
extern void kabsd_targets_final(RefreshState *rs);
extern void kabsd_targets_by_index(RefreshState *rs);
extern void kabsd_targets_end(RefreshState *rs);
extern void kabsd_targets_note_row(RefreshState *rs, const SnapTable *st,
								   const Datum *values, const bool *nulls);
extern bool kabsd_targets_links_to_check(RefreshState *rs, ItemPointerData **tids,
										 int *ntids);

/* refresh_write.c: the leader's writing, the snapshot's only writer */
extern void kabsd_write_begin(RefreshState *rs);
extern void kabsd_write_keep(RefreshState *rs, MemoryContext cxt);
extern void kabsd_write_kept(RefreshState *rs, MemoryContext rowcxt);
extern bool kabsd_write_deferred_links(RefreshState *rs, MemoryContext rowcxt);
extern void kabsd_write_flush(RefreshState *rs);
extern void kabsd_write_end(RefreshState *rs);

/* refresh_stamps.c: the fingerprint, the stamps, the paths known */
typedef struct KnownPaths KnownPaths;
extern uint64 kabsd_fingerprint_start(const KabsdOptions *opts);
extern uint64 kabsd_fingerprint_entry(uint64 h, const KbEntry *e);
extern Datum kabsd_fingerprint_text(uint64 h, int64 nfiles);
extern int64 kabsd_file_stamp(uint64 salt, const KbEntry *e);
extern KnownPaths *kabsd_known_load(RefreshState *rs, const char *const *paths,
									int npaths, MemoryContext cxt);
extern bool kabsd_known_walked(KnownPaths *kp, const KbEntry *e, int64 stamp,
							   bool full, ItemPointer files_tid);
extern void kabsd_known_keep_stamps(KnownPaths *kp, bool keep);
extern bool kabsd_known_next_gone(KnownPaths *kp, const char **path,
								  ItemPointer files_tid);
extern uint64 kabsd_known_count(const KnownPaths *kp);
extern int64 kabsd_known_files_rows(const KnownPaths *kp);
extern Size kabsd_known_list_bytes(const KnownPaths *kp);
extern void kabsd_known_end(KnownPaths *kp);

/* refresh_worklist.c: the files to read, serialized */
typedef struct WorkList
{
	MemoryContext cxt;			/* NULL: fixed size, in shared memory */
	char	   *root;			/* the walk's resolved root */
	char	   *data;			/* serialized entries */
	Size		len;
	Size		cap;
	Size	   *offsets;
	int64		n;
	int64		cap_n;
} WorkList;
extern bool kabsd_worklist_add(WorkList *wl, const KbEntry *e,
							   ItemPointer files_tid);
extern Size kabsd_worklist_entry_size(Size relpath_len);
extern void kabsd_worklist_entry(const WorkList *wl, int64 i,
								 struct StringInfoData *pathbuf, KbEntry *e,
								 ItemPointer files_tid);

/* refresh_record.c: a failed refresh recorded in a transaction of its own
 * (its SQL function and background worker only) */

/* refresh_parallel.c: reading shared with parallel workers */
typedef struct ParallelRefresh ParallelRefresh;
extern int	kabsd_min_parallel_refresh_files;
extern ParallelRefresh *kabsd_parallel_begin(RefreshState *rs, const Oid *relids,
											 const KabsdOptions *opts,
											 const char *root, int64 max_files,
											 Size max_bytes, int nworkers);
extern void kabsd_parallel_add(ParallelRefresh *pr, RefreshState *rs,
							   const KbEntry *e, ItemPointer files_tid);
extern int	kabsd_parallel_finish(ParallelRefresh *pr, RefreshState *rs);

/* watch.c: the watcher, a background worker that refreshes the watched
 * backlogs as their files change */
extern char *kabsd_watch_database;
extern void kabsd_watch_init(void);

#endif							/* KABSD_FDW_H */
