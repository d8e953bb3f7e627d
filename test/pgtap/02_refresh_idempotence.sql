-- Refreshing twice, or clearing and refreshing, gives the same rows.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(14);

SELECT lives_ok(format('SELECT kabsd_attach(%L, %L)', :'fixtures', 'idem'), 'attach');

CREATE FUNCTION pg_temp.snapshot_rows() RETURNS TABLE (t text, r text) LANGUAGE sql AS $$
SELECT 'items' AS t, x::text AS r FROM idem.items x
UNION ALL SELECT 'links', x::text FROM idem.links x
UNION ALL SELECT 'worklog', x::text FROM idem.worklog x
UNION ALL SELECT 'sections', x::text FROM idem.sections x
UNION ALL SELECT 'checklist', x::text FROM idem.checklist x
UNION ALL SELECT 'decisions', x::text FROM idem.decisions x
UNION ALL SELECT 'files', x::text FROM idem.files x;
$$;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.snapshot_rows();

SELECT isnt_empty('SELECT * FROM before', 'the snapshot has rows');
SELECT is((SELECT status FROM kabsd_refresh('idem')), 'unchanged', 'a second refresh finds nothing changed');

SELECT is((SELECT status FROM kabsd_refresh('idem', full => true)), 'refreshed', 'a full refresh reads every file');
SELECT is((SELECT rows_written FROM kabsd.refresh_history WHERE name = 'idem' ORDER BY id DESC LIMIT 1), 0::bigint,
          'and writes no row when no file changed');
CREATE TEMP TABLE after AS SELECT * FROM pg_temp.snapshot_rows();
SELECT bag_eq('SELECT * FROM before', 'SELECT * FROM after', 'a full refresh gives the same rows');

-- every table emptied (past the guard, as a superuser can), then rebuilt
-- from the files
SET session_replication_role = replica;
DO $$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY kabsd_tables() LOOP
    EXECUTE format('TRUNCATE idem.%I', t);
  END LOOP;
END $$;
RESET session_replication_role;
SELECT is((SELECT status FROM kabsd_refresh('idem')), 'rebuilt', 'a cleared snapshot is rebuilt');
SELECT bag_eq('SELECT * FROM before', 'SELECT * FROM pg_temp.snapshot_rows()', 'a rebuild gives the same rows');

-- the snapshot equals the live tables
SELECT bag_eq('SELECT * FROM idem_live.items', 'SELECT * FROM idem.items', 'items: snapshot = live');
SELECT bag_eq('SELECT * FROM idem_live.checklist', 'SELECT * FROM idem.checklist', 'checklist: snapshot = live');
SELECT bag_eq('SELECT * FROM idem_live.worklog', 'SELECT * FROM idem.worklog', 'worklog: snapshot = live');
SELECT bag_eq('SELECT path, ordinal, type, target_id FROM idem_live.links',
              'SELECT path, ordinal, type, target_id FROM idem.links', 'links: snapshot = live');

-- the history records the attach and every refresh
SELECT results_eq($$SELECT status FROM kabsd.refresh_history WHERE name = 'idem' ORDER BY id$$,
                  ARRAY['rebuilt', 'unchanged', 'refreshed', 'rebuilt'], 'history');
SELECT throws_ok($$INSERT INTO idem_live.items (id) VALUES ('x')$$, '0A000', NULL, 'live tables are read-only');

SELECT * FROM finish();
ROLLBACK;
