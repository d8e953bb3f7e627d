--
-- The files are the source of truth: every write is refused with a message
-- that says so
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

INSERT INTO live.items (id) VALUES ('NEW-1');  -- ERROR
UPDATE live.items SET state = 'Done' WHERE id = 'ALP-TSK-0001';  -- ERROR
DELETE FROM live.files;  -- ERROR
TRUNCATE live.items;  -- ERROR
COPY live.items (id) FROM STDIN;  -- ERROR

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
