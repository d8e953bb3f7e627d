/* kabsd_fdw: foreign tables over a Markdown backlog directory */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION kabsd_fdw" to load this file. \quit

CREATE FUNCTION kabsd_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kabsd_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER kabsd_fdw
  HANDLER kabsd_fdw_handler
  VALIDATOR kabsd_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER kabsd_fdw IS
  'Read-only tables over a Markdown backlog directory; the files are the source of truth';

-- Checks that a kabsd_fdw foreign table's columns can be filled: called by
-- the event trigger below, so a bad column fails CREATE FOREIGN TABLE.
CREATE FUNCTION kabsd_check_foreign_table(oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kabsd_check_foreign_tables()
RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
           WHERE object_type = 'foreign table'
  LOOP
    PERFORM @extschema@.kabsd_check_foreign_table(r.objid);
  END LOOP;
END
$$;

CREATE EVENT TRIGGER kabsd_check_foreign_tables
  ON ddl_command_end
  WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA')
  EXECUTE FUNCTION kabsd_check_foreign_tables();

--------------------------------------------------------------------------
-- The snapshot: kabsd_attach(), kabsd_refresh(), kabsd_status(),
-- kabsd_publish()
--
-- For a backlog named N:
--   server N          the kabsd_fdw server on the backlog root
--   schema N_live     the seven foreign tables (always current)
--   schema N          the snapshot: an ordinary table of each, with primary
--                     keys and indexes, that only kabsd_refresh() writes
--                     (only files whose stamp changed are read, only rows
--                     that differ are written, readers are never blocked),
--                     N.refreshes (its refresh history) and views
--   publication kabsd_N   (kabsd_publish) the snapshot, for a cloud copy
-- Data flows one way only: files -> foreign tables -> snapshot -> replicas.
--
-- The functions are in kabsd_fdw_functions.sql, which both this script and
-- every update script end with.
--------------------------------------------------------------------------

CREATE SCHEMA kabsd;
COMMENT ON SCHEMA kabsd IS 'State of kabsd_fdw: attached backlogs and the refresh history';
GRANT USAGE ON SCHEMA kabsd TO PUBLIC;

CREATE TABLE kabsd.backlogs (
  name text PRIMARY KEY,
  root text NOT NULL,
  attached_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  fingerprint text,
  refreshed_at timestamptz,
  git_commit text,
  watch boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE kabsd.backlogs IS 'Backlogs attached with kabsd_attach()';
COMMENT ON COLUMN kabsd.backlogs.name IS 'Name of the backlog: its server and snapshot schema';
COMMENT ON COLUMN kabsd.backlogs.root IS 'The backlog directory';
COMMENT ON COLUMN kabsd.backlogs.fingerprint IS 'Hash of path, size, times and inode of every file the snapshot was built from';
COMMENT ON COLUMN kabsd.backlogs.refreshed_at IS 'When the snapshot was last brought up to date with the files';
COMMENT ON COLUMN kabsd.backlogs.git_commit IS 'The Git commit checked out when the last refresh began (NULL outside a Git work tree)';
COMMENT ON COLUMN kabsd.backlogs.watch IS 'The watcher refreshes the backlog as its files change (kabsd_watch(), kabsd_unwatch())';

CREATE TABLE kabsd.refresh_history (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  started_at timestamptz NOT NULL,
  duration interval NOT NULL,
  status text NOT NULL CHECK (status IN ('refreshed', 'rebuilt', 'unchanged', 'failed')),
  files bigint,
  items bigint,
  decisions bigint,
  links bigint,
  worklog bigint,
  sections bigint,
  checklist bigint,
  errors bigint,
  views_refreshed integer,
  error text,
  sqlstate text,
  files_read bigint,
  rows_written bigint,
  parallel_workers integer,
  git_commit text
);
CREATE INDEX ON kabsd.refresh_history (name, id);
COMMENT ON TABLE kabsd.refresh_history IS 'Every kabsd_refresh() of every backlog, failed ones included; the newest 1000 per backlog are kept';
COMMENT ON COLUMN kabsd.refresh_history.status IS 'refreshed: the changed files were applied; rebuilt: empty tables were filled from every file; unchanged: no file changed, nothing written; failed: the old snapshot was kept';
COMMENT ON COLUMN kabsd.refresh_history.errors IS 'Files whose files.error is set';
COMMENT ON COLUMN kabsd.refresh_history.views_refreshed IS 'Snapshot tables whose rows changed; the others were left as they were';
COMMENT ON COLUMN kabsd.refresh_history.files_read IS 'Files read and parsed: those whose stamp changed, or every file of a rebuild or a full refresh';
COMMENT ON COLUMN kabsd.refresh_history.rows_written IS 'Rows inserted and deleted in the snapshot tables';
COMMENT ON COLUMN kabsd.refresh_history.parallel_workers IS 'Parallel workers that read files beside the refreshing backend (max_parallel_maintenance_workers, when kabsd_fdw.min_parallel_refresh_files files or more were read)';
COMMENT ON COLUMN kabsd.refresh_history.error IS 'Why the refresh failed';
COMMENT ON COLUMN kabsd.refresh_history.git_commit IS 'The Git commit checked out when the refresh began (NULL outside a Git work tree): which commit the snapshot reflects';

GRANT SELECT ON kabsd.backlogs, kabsd.refresh_history TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON kabsd.backlogs TO pg_read_server_files;
GRANT INSERT, DELETE ON kabsd.refresh_history TO pg_read_server_files;
GRANT USAGE ON SEQUENCE kabsd.refresh_history_id_seq TO pg_read_server_files;
SELECT pg_catalog.pg_extension_config_dump('kabsd.backlogs', '');
SELECT pg_catalog.pg_extension_config_dump('kabsd.refresh_history', '');
SELECT pg_catalog.pg_extension_config_dump('kabsd.refresh_history_id_seq', '');

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

-- What kabsd_refresh() and kabsd_attach() return: a row per backlog.
CREATE TYPE kabsd.refresh_result AS (
  name text, files bigint, items bigint, decisions bigint, links bigint,
  worklog bigint, sections bigint, checklist bigint, errors bigint,
  started_at timestamptz, duration interval, status text, error text);

CREATE TYPE kabsd.status_result AS (
  name text, refreshed_at timestamptz, files bigint, added bigint,
  changed bigint, removed bigint, stale boolean, git_commit text, watched boolean,
  pending bigint, pending_since timestamptz);
