--
-- IMPORT FOREIGN SCHEMA: the seven tables, LIMIT TO and EXCEPT, and
-- hand-written tables on a server on the fixture backlog
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql
DROP SCHEMA IF EXISTS picked CASCADE;

-- the seven tables with the data model's column names and types
SELECT c.relname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'live'::regnamespace
GROUP BY c.relname ORDER BY c.relname;

SELECT c.relname, ft.ftoptions FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
WHERE c.relnamespace = 'live'::regnamespace ORDER BY 1;

-- LIMIT TO and EXCEPT
CREATE SCHEMA picked;
IMPORT FOREIGN SCHEMA kabsd LIMIT TO (items, links) FROM SERVER fixture INTO picked;
IMPORT FOREIGN SCHEMA kabsd EXCEPT (items, links, files, worklog) FROM SERVER fixture INTO picked;
SELECT relname FROM pg_class WHERE relnamespace = 'picked'::regnamespace ORDER BY 1;
IMPORT FOREIGN SCHEMA other FROM SERVER fixture INTO picked;  -- ERROR

-- a hand-written table declares only the columns it needs; its name says
-- which table it is when the option "table" is left out
CREATE FOREIGN TABLE picked.files (kind text, path text) SERVER fixture;
SELECT kind, count(*) FROM picked.files GROUP BY kind ORDER BY kind;
CREATE FOREIGN TABLE public.decisions (id text, status text) SERVER fixture;
SELECT * FROM public.decisions ORDER BY id;
DROP FOREIGN TABLE public.decisions;
CREATE FOREIGN TABLE public.anything (id text) SERVER fixture;  -- ERROR

DROP SERVER fixture CASCADE;
DROP SCHEMA live, picked;
