--
-- Planning: projections, product pruning, EXPLAIN, ANALYZE, rescans
--
-- EXPLAIN names the root and the table; without ANALYZE nothing is walked
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql
\set explain_sql :abs_srcdir '/test/sql-include/explain_backlog.sql'
\i :explain_sql

SELECT * FROM explain_backlog('SELECT id FROM live.items', false);

-- a restriction on product walks that product's folder only
SELECT * FROM explain_backlog($$SELECT id FROM live.items WHERE product = 'beta'$$);
SELECT id FROM live.items WHERE product = 'beta';
SELECT * FROM explain_backlog($$SELECT path FROM live.files WHERE 'alpha' = product$$);

-- items reads only item folders
SELECT * FROM explain_backlog('SELECT count(*) FROM live.items');

-- ANALYZE samples rows, so the planner has real estimates
ANALYZE live.items;
ANALYZE live.sections;
SELECT relname, reltuples FROM pg_class WHERE oid IN ('live.items'::regclass, 'live.sections'::regclass) ORDER BY 1;
SELECT attname, n_distinct FROM pg_stats WHERE schemaname = 'live' AND tablename = 'items' AND attname IN ('state', 'product') ORDER BY 1;

-- a nested loop rescans the inner foreign table
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SET enable_material = off;
SELECT i.id, count(l.*) AS edges
FROM live.items i JOIN live.links l ON l.path = i.path
GROUP BY i.id ORDER BY i.id;
RESET enable_hashjoin;
RESET enable_mergejoin;
RESET enable_material;

-- a whole-row reference reads every column: each row's text equals that
-- of the same row read column by column
CREATE TEMP TABLE decisions_by_column AS SELECT * FROM live.decisions;
SELECT count(*) AS rows, count(*) FILTER (WHERE d::text IN (SELECT c::text FROM decisions_by_column c)) AS whole
FROM live.decisions d;
DROP TABLE decisions_by_column;

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
DROP FUNCTION explain_backlog(text, boolean);
