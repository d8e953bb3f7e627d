--
-- files: every walked .md file, with its kind, product and error
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql
\set explain_sql :abs_srcdir '/test/sql-include/explain_backlog.sql'
\i :explain_sql

SELECT path, product, kind, has_frontmatter, error IS NOT NULL AS has_error
FROM live.files ORDER BY path;

-- dot entries are skipped; only names ending in ".md" are walked
SELECT count(*) FILTER (WHERE path LIKE '%.hidden%') AS hidden,
       count(*) FILTER (WHERE path NOT LIKE '%.md') AS not_md
FROM live.files;

-- size and mtime come from the walk
SELECT path, size FROM live.files WHERE path = 'README.md';
SELECT count(*) FROM live.files WHERE mtime > now() OR mtime < '2000-01-01';

-- errors name what is wrong
SELECT path, error FROM live.files WHERE error IS NOT NULL ORDER BY path;

-- a query that reads neither error nor has_frontmatter opens no file
SELECT * FROM explain_backlog('SELECT path, size FROM live.files');
-- ... and one that does reads them all
SELECT * FROM explain_backlog('SELECT count(*) FROM live.files WHERE error IS NULL');

-- a scan holds the backlog root open while it reads, and lets it go with
-- the scan: after scans that end, fail, or run on past a subtransaction
-- that failed, the backend holds no more descriptors than before (the
-- first round opens the relations' files, which the server keeps)
CREATE FUNCTION pg_temp.scan_rounds() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  c refcursor;
  r record;
  n int := 1;
BEGIN
  FOR i IN 1..20 LOOP
    PERFORM count(*) FROM live.items;
  END LOOP;
  BEGIN
    PERFORM 1 / (count(*) - count(*)) FROM live.items;
  EXCEPTION WHEN division_by_zero THEN NULL;
  END;
  OPEN c FOR SELECT id FROM live.items;
  BEGIN
    FETCH c INTO r;
    RAISE EXCEPTION 'undone';
  EXCEPTION WHEN raise_exception THEN NULL;
  END;
  LOOP
    FETCH c INTO r;
    EXIT WHEN NOT FOUND;
    n := n + 1;
  END LOOP;
  CLOSE c;
  RETURN format('the cursor gave %s of %s items', n, (SELECT count(*) FROM live.items));
END $$;
CREATE FUNCTION pg_temp.descriptors() RETURNS bigint LANGUAGE sql AS
  $$ SELECT count(*) FROM pg_ls_dir('/proc/' || pg_backend_pid() || '/fd') $$;
SELECT pg_temp.scan_rounds();
SELECT pg_temp.descriptors() AS fds_before \gset
SELECT pg_temp.scan_rounds();
SELECT pg_temp.descriptors() - :fds_before AS descriptors_kept;

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
DROP FUNCTION explain_backlog(text, boolean);
