/* kabsd_fdw 0.1.0 -> 0.2.0: the snapshot becomes ordinary tables */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION kabsd_fdw UPDATE TO '0.2.0'" to load this file. \quit

-- The staging loader is gone: the refresh fills empty tables itself.  The
-- refresh takes its stamps from kabsd.file_stamps, not from an argument.
DROP FUNCTION kabsd_stage_load(name, regclass[], regclass);
DROP FUNCTION kabsd_snapshot_apply(name, regclass[], regclass, boolean);

CREATE TABLE kabsd.file_stamps (
  backlog text NOT NULL,
  path text NOT NULL,
  stamp bigint NOT NULL
);
COMMENT ON TABLE kabsd.file_stamps IS 'Internal: what each file of each snapshot was when last read (path, size, times, inode); a file whose stamp differs is read again. Written by kabsd_refresh() only';
-- no key to keep (rows go by TID), so a publication FOR ALL TABLES
-- identifies a row by all of it
ALTER TABLE kabsd.file_stamps REPLICA IDENTITY FULL;
-- a refresh of some paths looks their stamps up, and those below them (in
-- bytes' order a directory's paths lie side by side); the refresh keeps
-- this index, and no other, as it writes rows by their TIDs
CREATE INDEX file_stamps_backlog_path_idx ON kabsd.file_stamps (backlog, path COLLATE "C");
REVOKE ALL ON kabsd.file_stamps FROM PUBLIC;
GRANT SELECT, DELETE ON kabsd.file_stamps TO pg_read_server_files;
SELECT pg_catalog.pg_extension_config_dump('kabsd.file_stamps', '');

COMMENT ON COLUMN kabsd.refresh_history.status IS 'refreshed: the changed files were applied; rebuilt: empty tables were filled from every file; unchanged: no file changed, nothing written; failed: the old snapshot was kept';
COMMENT ON COLUMN kabsd.refresh_history.views_refreshed IS 'Snapshot tables whose rows changed; the others were left as they were';
COMMENT ON COLUMN kabsd.refresh_history.rows_written IS 'Rows inserted and deleted in the snapshot tables';

-- Attached backlogs keep their materialized views until their next
-- kabsd_refresh(), which replaces them with tables and fills them.

-- Each refresh records the Git commit checked out in the repository
-- holding the root.
ALTER TABLE kabsd.backlogs ADD COLUMN git_commit text;
COMMENT ON COLUMN kabsd.backlogs.git_commit IS 'The Git commit checked out when the last refresh began (NULL outside a Git work tree)';
ALTER TABLE kabsd.refresh_history ADD COLUMN git_commit text;
COMMENT ON COLUMN kabsd.refresh_history.git_commit IS 'The Git commit checked out when the refresh began (NULL outside a Git work tree): which commit the snapshot reflects';
ALTER TYPE kabsd.status_result ADD ATTRIBUTE git_commit text;
ALTER TYPE kabsd.status_result ADD ATTRIBUTE watched boolean;
-- what the watcher holds for its next refresh
ALTER TYPE kabsd.status_result ADD ATTRIBUTE pending bigint,
                               ADD ATTRIBUTE pending_since timestamptz;

-- The watcher refreshes the backlogs whose watch is set (kabsd_watch()).
ALTER TABLE kabsd.backlogs ADD COLUMN watch boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN kabsd.backlogs.watch IS 'The watcher refreshes the backlog as its files change (kabsd_watch(), kabsd_unwatch())';
