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

/* Everything a file can give: what a refresh computes. */
#define KABSD_ALL_NEEDS (KB_NEED_READ | KB_NEED_FIELDS | KB_NEED_LINKS | \
						 KB_NEED_MARKDOWN | KB_NEED_CHECKLIST | \
						 KB_NEED_WIKILINKS | KB_NEED_WORKLOG)

#define KABSD_DEFAULT_MAX_FILE_SIZE (INT64CONST(64) * 1024 * 1024)

/* options.c */
struct ForeignServer;
extern void kabsd_get_server_options(struct ForeignServer *server,
									 KabsdOptions *opts);
extern void kabsd_get_options(Oid foreigntableid, KabsdOptions *opts);
extern bool kabsd_parse_table_name(const char *name, KabsdTable *out);
extern void kabsd_check_root_privilege(void);

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
extern KbFile *kabsd_scan_analyze(KabsdScan *scan);
extern KabsdScan *kabsd_analyzer_begin(const char *root, int64 max_file_size,
									   int need, MemoryContext parent);
extern KbFile *kabsd_scan_analyze_entry(KabsdScan *scan, const KbEntry *e);
extern void kabsd_scan_end(KabsdScan *scan);
extern void kabsd_scan_counts(const KabsdScan *scan, int64 *walked,
							  int64 *read, int64 *errors);

/* refresh.c: the fingerprint, the stamps and the table catalogue */
extern void kabsd_server_options(Name servername, KabsdOptions *opts);
extern uint64 kabsd_fingerprint_start(const KabsdOptions *opts);
extern uint64 kabsd_fingerprint_entry(uint64 h, const KbEntry *e);
extern Datum kabsd_fingerprint_text(uint64 h, int64 nfiles);
extern int64 kabsd_file_stamp(uint64 salt, const KbEntry *e);
extern Relation kabsd_open_stamps(void);
struct ArrayType;
extern Datum *kabsd_seven_relations(struct ArrayType *arr);

/* parallel.c: kabsd_fdw.min_parallel_refresh_files */
extern int	kabsd_min_parallel_refresh_files;

#endif							/* KABSD_FDW_H */
