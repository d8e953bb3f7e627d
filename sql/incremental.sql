--
-- The refresh in place: only files whose stamp changed are read, only rows
-- that differ are written, and the snapshot is always what a rebuild from
-- the files gives.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set copy_fixture 'rm -rf /tmp/kabsd-regress-inc && cp -r ' :abs_srcdir '/test/fixtures/backlog /tmp/kabsd-regress-inc'
\set items '/tmp/kabsd-regress-inc/products/alpha/items'
SELECT kabsd_detach(name) FROM kabsd.backlogs;
COPY (SELECT 1) TO PROGRAM :'copy_fixture';
SELECT name, status, files, items, links FROM kabsd_attach('/tmp/kabsd-regress-inc', 'inc');

-- what the last refresh read and wrote
CREATE VIEW last_refresh AS
SELECT status, files_read, views_refreshed, rows_written, files, items, links, sections, errors
FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1;

-- the oracle: the checksums of the tables, against those of a rebuild from
-- the files (called inside a transaction that is rolled back)
CREATE FUNCTION matches_rebuild() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  differ text;
BEGIN
  CREATE TEMP TABLE before_rebuild ON COMMIT DROP AS SELECT * FROM snapshot_sums('inc');
  PERFORM snapshot_clear('inc');
  IF (SELECT status FROM kabsd_refresh('inc')) <> 'rebuilt' THEN
    RETURN 'no rebuild';
  END IF;
  SELECT string_agg(b.t, ', ' ORDER BY b.t) INTO differ
  FROM before_rebuild b JOIN snapshot_sums('inc') n USING (t)
  WHERE b.sum IS DISTINCT FROM n.sum;
  RETURN coalesce('differs from a rebuild: ' || differ, 'same as a rebuild');
END
$$;

-- nothing changed: nothing read
SELECT status FROM kabsd_refresh('inc');
-- full: every file read and compared, nothing written
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_refresh;

-- one item's state edited: one file read; its files and items rows rewritten
\set edit 'sed -i "/^state:/s/InProgress/Done/" ' :items '/task/0000/ALP-TSK-0001_parse-frontmatter.md'
COPY (SELECT 1) TO PROGRAM :'edit';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT id, state FROM inc.items WHERE path ~ 'ALP-TSK-0001';
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- a file touched, its content the same: read again, only mtime rewritten
\set touch 'touch -d "2030-01-02 03:04:05 UTC" ' :items '/task/0000/ALP-TSK-0005_crlf.md'
COPY (SELECT 1) TO PROGRAM :'touch';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT mtime FROM inc.files WHERE path ~ 'ALP-TSK-0005';

-- an id changed: links written in other files resolve against the new id
SELECT source_id, type, target_id, target_uid FROM inc.links WHERE target_id ~ 'ALP-USR' ORDER BY path, ordinal;
\set reid 'sed -i "s/^id: ALP-USR-0001$/id: ALP-USR-0100/" ' :items '/story/0000/ALP-USR-0001_backlog-queries.md'
COPY (SELECT 1) TO PROGRAM :'reid';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT source_id, type, target_id, target_uid FROM inc.links WHERE target_id ~ 'ALP-USR' ORDER BY path, ordinal;
SELECT DISTINCT item_id FROM inc.sections WHERE path ~ 'ALP-USR';
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- a new item takes the old id: the parent link resolves to it
\set add 'printf -- "---\\nid: ALP-USR-0001\\nuid: 019b8f52-0000-7000-8000-0000000000ee\\ntitle: New story\\n---\\n## Goal\\n- [ ] one\\n" > ' :items '/story/0000/ALP-USR-0001_new.md'
COPY (SELECT 1) TO PROGRAM :'add';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT source_id, type, target_id, target_uid FROM inc.links WHERE target_id ~ 'ALP-USR' ORDER BY path, ordinal;
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- a file broken, then deleted: its rows go, files counts its error, then not
\set break 'printf -- "---\\nid: [unclosed\\n---\\n" > ' :items '/task/0000/ALP-TSK-0007_yaml-features.md'
COPY (SELECT 1) TO PROGRAM :'break';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT error IS NOT NULL AS has_error FROM inc.files WHERE path ~ 'ALP-TSK-0007';
SELECT count(*) FROM inc.sections WHERE path ~ 'ALP-TSK-0007';
\set delete 'rm ' :items '/task/0000/ALP-TSK-0007_yaml-features.md'
COPY (SELECT 1) TO PROGRAM :'delete';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT count(*) FROM inc.files WHERE path ~ 'ALP-TSK-0007';
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- the stamps lost and a file deleted meanwhile: every file is read again,
-- and the rows of the deleted one still go (the files table says what the
-- snapshot holds)
DELETE FROM kabsd.file_stamps WHERE backlog = 'inc';
\set delete2 'rm ' :items '/task/0000/ALP-TSK-0006_bom.md'
COPY (SELECT 1) TO PROGRAM :'delete2';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
SELECT count(*) AS stamps FROM kabsd.file_stamps WHERE backlog = 'inc';
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- the files table emptied past the guard (as by a restore without data):
-- the next refresh is not fooled into "unchanged", fills it, and counts
SET session_replication_role = replica;
TRUNCATE inc.files;
RESET session_replication_role;
SELECT count(*) FROM inc.files;
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- one table emptied: only it is written again
SET session_replication_role = replica;
TRUNCATE inc.checklist;
RESET session_replication_role;
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
BEGIN; SELECT matches_rebuild(); ROLLBACK;

-- links emptied, and an item's id changed meanwhile: the links are written
-- last, resolved against the new ids
SET session_replication_role = replica;
TRUNCATE inc.links;
RESET session_replication_role;
\set relink 'sed -i "s/^id: ALP-USR-0100$/id: ALP-USR-0150/" ' :items '/story/0000/ALP-USR-0001_backlog-queries.md'
COPY (SELECT 1) TO PROGRAM :'relink';
SELECT status FROM kabsd_refresh('inc');
SELECT * FROM last_refresh;
BEGIN; SELECT matches_rebuild(); ROLLBACK;
\set unlink 'sed -i "s/^id: ALP-USR-0150$/id: ALP-USR-0100/" ' :items '/story/0000/ALP-USR-0001_backlog-queries.md'
COPY (SELECT 1) TO PROGRAM :'unlink';
SELECT status FROM kabsd_refresh('inc');

-- parallel workers: with the threshold at 0 every refresh that reads a
-- file shares the reading; the result is the same as a rebuild's
CREATE VIEW last_parallel AS
SELECT status, files_read, rows_written > 0 AS wrote, parallel_workers > 0 AS shared
FROM kabsd.refresh_history WHERE name = 'inc' ORDER BY id DESC LIMIT 1;
SET kabsd_fdw.min_parallel_refresh_files = 0;
SET max_parallel_maintenance_workers = 2;
-- a state edited, an id that links point at moved, a file added, one gone
\set pedit 'sed -i "/^state:/s/Done/Review/" ' :items '/task/0000/ALP-TSK-0001_parse-frontmatter.md'
COPY (SELECT 1) TO PROGRAM :'pedit';
\set preid 'sed -i "s/^id: ALP-USR-0100$/id: ALP-USR-0200/" ' :items '/story/0000/ALP-USR-0001_backlog-queries.md'
COPY (SELECT 1) TO PROGRAM :'preid';
\set padd 'printf -- "---\\nid: ALP-TSK-0300\\nuid: 019b8f52-0000-7000-8000-0000000000ef\\nparent: ALP-USR-0200\\n---\\n## Worklog\\n- 2026-01-02 10:00 [agent=a] started\\n" > ' :items '/task/0000/ALP-TSK-0300_parallel.md'
COPY (SELECT 1) TO PROGRAM :'padd';
\set pdelete 'rm ' :items '/story/0000/ALP-USR-0001_new.md'
COPY (SELECT 1) TO PROGRAM :'pdelete';
-- and a body larger than work_mem: the rows kept for writing go to disk
\set pbig '(printf -- "---\\nid: ALP-TSK-0301\\n---\\n## Context\\n"; yes lorem | head -c 300000) > ' :items '/task/0000/ALP-TSK-0301_big.md'
COPY (SELECT 1) TO PROGRAM :'pbig';
SET work_mem = '64kB';
SELECT status FROM kabsd_refresh('inc');
RESET work_mem;
SELECT * FROM last_parallel;
SELECT count(*) FROM inc.items WHERE id IN ('ALP-TSK-0300', 'ALP-USR-0200', 'ALP-USR-0001');
SELECT length(content) FROM inc.sections WHERE item_id = 'ALP-TSK-0301';
BEGIN; SELECT matches_rebuild(); ROLLBACK;
-- a full refresh starts the workers before its walk: nothing to write
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_parallel;
-- the stamps lost and a file rewritten (its mtime moved): every stamp is
-- written once the workers are done, and the new mtime lands
DELETE FROM kabsd.file_stamps WHERE backlog = 'inc';
COPY (SELECT 1) TO PROGRAM :'edit';
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_parallel;
SELECT (SELECT count(*) FROM kabsd.file_stamps WHERE backlog = 'inc') = (SELECT count(*) FROM inc.files) AS stamped;
BEGIN; SELECT matches_rebuild(); ROLLBACK;
SELECT status FROM kabsd_refresh('inc');
-- no workers allowed: the backend reads alone
SET max_parallel_maintenance_workers = 0;
SELECT status FROM kabsd_refresh('inc', full => true);
SELECT * FROM last_parallel;
RESET max_parallel_maintenance_workers;
-- many more files than the snapshot knew (1 known, 1,200 added): the list
-- the workers share is full, and the backend reads the rest itself
\set many 'rm -rf /tmp/kabsd-regress-many && mkdir -p /tmp/kabsd-regress-many/topics && echo "# one" > /tmp/kabsd-regress-many/topics/one.md'
COPY (SELECT 1) TO PROGRAM :'many';
SELECT status, files FROM kabsd_attach('/tmp/kabsd-regress-many', 'many');
\set more 'for i in $(seq 1200); do echo "# note $i" > /tmp/kabsd-regress-many/topics/note-$i.md; done'
COPY (SELECT 1) TO PROGRAM :'more';
SELECT status, files, error FROM kabsd_refresh('many', full => true);
SELECT files_read, parallel_workers > 0 AS shared FROM kabsd.refresh_history
WHERE name = 'many' ORDER BY id DESC LIMIT 1;
SELECT kabsd_detach('many');
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
SELECT status, error FROM kabsd_refresh('inc', full => true);
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

SELECT kabsd_detach('inc');
DROP VIEW last_refresh;
DROP FUNCTION matches_rebuild();
