--
-- checklist: task-list entries, in bullet and ordered lists at any depth
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT item_id, section, ordinal, checked, text
FROM live.checklist ORDER BY path, ordinal;

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
