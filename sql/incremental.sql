--
-- The refresh in place, on the fixture backlog as it is: a full refresh
-- reads every file and writes nothing, a table emptied past the guard is
-- written again, parallel workers share the reading, and the writer checks
-- what it is given.  What a refresh does after the files change is
-- test/t/006_incremental.pl's.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures/backlog'
\set snapshot_sql :abs_srcdir '/test/sql-include/snapshot.sql'
\i :snapshot_sql
SELECT kabsd_detach(name) FROM kabsd.backlogs WHERE name = 'inc';
SELECT name, status, files, items, links FROM kabsd_attach(:'fixtures', 'inc');

-- what the last refresh read and wrote
CREATE VIEW last_refresh AS
SELECT status, files_read, views_refreshed, rows_written, files, items, links, sections, errors
FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1;

-- nothing changed: nothing read
SELECT status FROM kabsd_refresh('inc');
-- full: every file read and compared, nothing written
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_refresh;

-- the files table emptied past the guard (as by a restore without data):
-- the next refresh is not fooled into "unchanged", fills it, and counts
SET session_replication_role = replica;
TRUNCATE inc.files;
RESET session_replication_role;
SELECT count(*) FROM inc.files;
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
BEGIN; SELECT matches_rebuild('inc'); ROLLBACK;

-- one table emptied: only it is written again
SET session_replication_role = replica;
TRUNCATE inc.checklist;
RESET session_replication_role;
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
BEGIN; SELECT matches_rebuild('inc'); ROLLBACK;

-- parallel workers: with the threshold at 0 every refresh that reads a
-- file shares the reading
CREATE VIEW last_parallel AS
SELECT status, files_read, rows_written > 0 AS wrote, parallel_workers > 0 AS shared
FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1;
SET kabsd_fdw.min_parallel_refresh_files = 0;
SET max_parallel_maintenance_workers = 2;
-- a full refresh starts the workers before its walk: nothing to write
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_parallel;
-- no workers allowed: the backend reads alone
SET max_parallel_maintenance_workers = 0;
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_parallel;
RESET max_parallel_maintenance_workers;
RESET kabsd_fdw.min_parallel_refresh_files;
SET kabsd_fdw.no_such_setting = 1;  -- ERROR
DROP VIEW last_parallel;

-- the writer checks what it is given
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['inc.files']::regclass[], false);  -- ERROR
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['inc.files', 'inc.items', 'inc.decisions',
  'inc.links', 'inc.worklog', NULL, 'inc.checklist']::regclass[], false);  -- ERROR
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['inc.files', 'inc.items', 'inc.decisions',
  'inc.links', 'inc.worklog', 'inc_live.sections', 'inc.checklist']::regclass[], false);  -- ERROR
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['inc.items', 'inc.files', 'inc.decisions',
  'inc.links', 'inc.worklog', 'inc.sections', 'inc.checklist']::regclass[], false);  -- ERROR
ALTER TABLE inc.sections DROP CONSTRAINT sections_pkey;
\set SHOW_CONTEXT never
SELECT status, error FROM kabsd_refresh('inc', full => true);  -- ERROR
\set SHOW_CONTEXT errors
-- the failure is on record all the same: written in a transaction of its own
SELECT kabsd_record_failure('inc', now(), NULL, 'x', NULL);  -- ERROR
SELECT status, error, sqlstate FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1;
SELECT status, error FROM inc.refreshes ORDER BY id DESC LIMIT 1;
-- unless this transaction holds a lock the recording would wait for: then
-- it says so at once rather than wait for itself
BEGIN;
LOCK TABLE kabsd.refresh_history IN SHARE MODE;
\set SHOW_CONTEXT never
SELECT status FROM kabsd_refresh('inc', full => true);  -- ERROR
\set SHOW_CONTEXT errors
ROLLBACK;
ALTER TABLE inc.sections ADD PRIMARY KEY (path, ordinal);
DROP ROLE IF EXISTS regress_kabsd_other;
CREATE ROLE regress_kabsd_other IN ROLE pg_read_server_files;
GRANT USAGE ON FOREIGN SERVER inc TO regress_kabsd_other;
GRANT USAGE ON SCHEMA inc TO regress_kabsd_other;
SET ROLE regress_kabsd_other;
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['inc.files', 'inc.items', 'inc.decisions',
  'inc.links', 'inc.worklog', 'inc.sections', 'inc.checklist']::regclass[], false);  -- ERROR
-- tables of one's own, shaped like the snapshot's, cannot stand in for it
-- (the refresh would write the backlog's stamps beside them)
SELECT format('CREATE TEMP TABLE %I (%s)', t,
              string_agg(format('%I %s', column_name, column_type), ', ' ORDER BY ordinal)
              || CASE WHEN t = 'links' THEN ', target_uid uuid' ELSE '' END)
FROM kabsd_table_columns() k, unnest(kabsd_tables()) AS t WHERE k.table_name = t GROUP BY t
\set ECHO none
\gexec
\set ECHO all
SELECT inserted FROM kabsd_snapshot_apply('inc', ARRAY['pg_temp.files', 'pg_temp.items', 'pg_temp.decisions',
  'pg_temp.links', 'pg_temp.worklog', 'pg_temp.sections', 'pg_temp.checklist']::regclass[], false);  -- ERROR
RESET ROLE;
DROP TABLE pg_temp.files, pg_temp.items, pg_temp.decisions, pg_temp.links, pg_temp.worklog,
  pg_temp.sections, pg_temp.checklist;
-- only the roles that may attach a backlog may run the writer at all
DROP ROLE IF EXISTS regress_kabsd_nobody;
CREATE ROLE regress_kabsd_nobody;
SELECT array_agg(format('inc.%I', t)::regclass::oid ORDER BY o) AS tabs
FROM unnest(kabsd_tables()) WITH ORDINALITY AS u(t, o) \gset
SET ROLE regress_kabsd_nobody;
SELECT inserted FROM kabsd_snapshot_apply('inc', :'tabs'::oid[]::regclass[], false);  -- ERROR
RESET ROLE;
DROP ROLE regress_kabsd_nobody;
REVOKE ALL ON SCHEMA inc FROM regress_kabsd_other;
REVOKE ALL ON FOREIGN SERVER inc FROM regress_kabsd_other;
DROP ROLE regress_kabsd_other;

-- the stamps' table with an index the refresh would not keep: it refuses
CREATE INDEX regress_stamps_by_stamp ON kabsd.file_stamps (stamp);
\set SHOW_CONTEXT never
SELECT status FROM kabsd_refresh('inc', full => true);  -- ERROR
\set SHOW_CONTEXT errors
DROP INDEX kabsd.regress_stamps_by_stamp;

-- a refresh of some paths only: relative to the root, without "." or ".."
-- parts; a directory stands for its subtree; nothing changed, nothing written
\set SHOW_CONTEXT never
SELECT status FROM kabsd_refresh(paths => ARRAY['topics']);  -- ERROR
SELECT status FROM kabsd_refresh('inc', paths => ARRAY['products/../..']);  -- ERROR
SELECT status FROM kabsd_refresh('inc', paths => ARRAY['/etc']);  -- ERROR
\set SHOW_CONTEXT errors
SELECT status, files, items, errors FROM kabsd_refresh('inc', paths => ARRAY['topics/', 'products/alpha']);
SELECT files_read, rows_written FROM last_refresh;
SELECT status FROM kabsd_refresh('inc', paths => '{}');
-- it saw part of the tree only: the next whole refresh compares every stamp
SELECT fingerprint IS NULL AS no_fingerprint FROM kabsd.backlogs WHERE name = 'inc';
SELECT status, files FROM kabsd_refresh('inc');
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM matches_rebuild('inc');

-- a row deleted past the guard: the counts on record no longer add up, so
-- the refresh counts the tables, and writes the row again
SET session_replication_role = replica;
DELETE FROM inc.files WHERE path = 'README.md';
RESET session_replication_role;
SELECT status, files, errors FROM kabsd_refresh('inc');
SELECT count(*) AS files FROM inc.files;

-- kabsd_attach(watch => true) hands the backlog to the watcher, which this
-- server does not run: the attach fails whole, saying what to configure
\set SHOW_CONTEXT never
SELECT status FROM kabsd_attach(:'fixtures', 'watched', watch => true);  -- ERROR
\set SHOW_CONTEXT errors
SELECT count(*) AS attached FROM kabsd.backlogs WHERE name = 'watched';
SELECT watched, git_commit IS NOT DISTINCT FROM (SELECT git_commit FROM kabsd.backlogs WHERE name = 'inc') AS same_commit
FROM kabsd_status('inc');

SELECT kabsd_detach('inc');
DROP VIEW last_refresh;
DROP FUNCTION matches_rebuild(text), snapshot_sums(text), snapshot_clear(text);
