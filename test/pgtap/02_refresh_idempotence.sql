-- Refreshing twice, or clearing and refreshing, gives the same rows.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(12);

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

SELECT lives_ok($$UPDATE kabsd.backlogs SET fingerprint = NULL WHERE name = 'idem'$$, 'forget the fingerprint');
SELECT is((SELECT status FROM kabsd_refresh('idem')), 'refreshed', 'a forced refresh rebuilds');

CREATE TEMP TABLE after AS SELECT * FROM pg_temp.snapshot_rows();
SELECT bag_eq('SELECT * FROM before', 'SELECT * FROM after', 'a rebuild gives the same rows');

-- the snapshot equals the live tables
SELECT bag_eq('SELECT * FROM idem_live.items', 'SELECT * FROM idem.items', 'items: snapshot = live');
SELECT bag_eq('SELECT * FROM idem_live.checklist', 'SELECT * FROM idem.checklist', 'checklist: snapshot = live');
SELECT bag_eq('SELECT * FROM idem_live.worklog', 'SELECT * FROM idem.worklog', 'worklog: snapshot = live');
SELECT bag_eq('SELECT path, ordinal, type, target_id FROM idem_live.links',
              'SELECT path, ordinal, type, target_id FROM idem.links', 'links: snapshot = live');

-- the history records both refreshes and the attach
SELECT results_eq($$SELECT status FROM kabsd.refresh_history WHERE name = 'idem' ORDER BY id$$,
                  ARRAY['refreshed', 'unchanged', 'refreshed'], 'history');
SELECT throws_ok($$INSERT INTO idem_live.items (id) VALUES ('x')$$, '0A000', NULL, 'live tables are read-only');

SELECT * FROM finish();
ROLLBACK;
