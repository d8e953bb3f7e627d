--
-- sections: one row per heading of an item's or decision's body, at any
-- depth, ATX or setext; a # in a code block is no heading
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT item_id, ordinal, level, heading, content
FROM live.sections ORDER BY path, ordinal;

SELECT count(*) FROM live.sections WHERE heading LIKE '%not a heading%';

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
