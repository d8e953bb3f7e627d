--
-- decisions: one row per decision file with frontmatter
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT id, uid, title, status, date, deciders, related_items, supersedes,
       superseded_by, tags, product
FROM live.decisions ORDER BY path;

-- status falls back to state; date to decision_date, then created; a
-- malformed date gives NULL and a note, it does not fall through
SELECT id, status, date FROM live.decisions WHERE id IN ('ADR-0002', 'ADR-0003') ORDER BY id;
SELECT error FROM live.files WHERE path LIKE '%ADR-0003%';

-- a decision file without frontmatter yields no row
SELECT count(*) FROM live.decisions WHERE product = 'beta';

-- type names outside the schema are kept as written
SELECT frontmatter->>'type' AS type FROM live.decisions WHERE id = 'ADR-0003';

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
