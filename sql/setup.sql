--
-- Setup shared by the suites: a server on the fixture backlog, the seven
-- tables imported, and a filter for plans that name absolute paths.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures/backlog'

-- cleanup first, so that a rerun starts clean
DROP SERVER IF EXISTS fixture CASCADE;
DROP SCHEMA IF EXISTS live CASCADE;
DROP SCHEMA IF EXISTS picked CASCADE;

CREATE SERVER fixture FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root :'fixtures');
CREATE SCHEMA live;
IMPORT FOREIGN SCHEMA kabsd FROM SERVER fixture INTO live;

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

-- plans name the root: this shows it as $ROOT
CREATE FUNCTION explain_backlog(query text, with_analyze boolean DEFAULT true)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  ln text;
BEGIN
  FOR ln IN EXECUTE format('EXPLAIN (ANALYZE %s, COSTS OFF, TIMING OFF, SUMMARY OFF) %s', CASE WHEN with_analyze THEN 'on' ELSE 'off' END, query)
  LOOP
    RETURN NEXT regexp_replace(ln, 'Backlog Root: .*', 'Backlog Root: $ROOT');
  END LOOP;
END
$$;

-- For the snapshot suites: a checksum of each table of a backlog's
-- snapshot, and every table emptied
CREATE OR REPLACE FUNCTION snapshot_sums(backlog text) RETURNS TABLE (t text, sum text)
LANGUAGE plpgsql AS $$
BEGIN
  FOREACH t IN ARRAY kabsd_tables() LOOP
    EXECUTE format('SELECT md5(string_agg(x::text, ''|'' ORDER BY x.path%s)) FROM %I.%I x',
                   CASE WHEN t IN ('files', 'items', 'decisions') THEN '' ELSE ', x.ordinal' END,
                   backlog, t) INTO sum;
    RETURN NEXT;
  END LOOP;
END
$$;
-- every snapshot table emptied as a superuser can, past the guard trigger
CREATE OR REPLACE FUNCTION snapshot_clear(backlog text) RETURNS void
LANGUAGE plpgsql SET session_replication_role = replica AS $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY kabsd_tables() LOOP
    EXECUTE format('TRUNCATE %I.%I', backlog, t);
  END LOOP;
END
$$;
