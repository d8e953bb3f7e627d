--
-- Hostile files: each is listed in files with a clear error (or, where the
-- data model says it is no error, with the rows it gives), the good file
-- beside them still yields its rows, and the server stays up.
-- The files that git cannot hold are made by a script run as the server's
-- operating system user.
--
\getenv abs_srcdir PG_ABS_SRCDIR
-- this backend, checked after the worst files: a crash would end it
SELECT pg_backend_pid() AS backend \gset
\set make_hostile 'sh ' :abs_srcdir '/test/fixtures/make-hostile.sh /tmp/kabsd-regress-hostile'
DROP SERVER IF EXISTS hostile CASCADE;
DROP SERVER IF EXISTS big CASCADE;
DROP SCHEMA IF EXISTS hostile CASCADE;
DROP SCHEMA IF EXISTS big CASCADE;
COPY (SELECT 1) TO PROGRAM :'make_hostile';

CREATE SERVER hostile FOREIGN DATA WRAPPER kabsd_fdw
  OPTIONS (root '/tmp/kabsd-regress-hostile', max_file_size '1MB');
CREATE SCHEMA hostile;
IMPORT FOREIGN SCHEMA kabsd FROM SERVER hostile INTO hostile;

SELECT path, has_frontmatter, error FROM hostile.files ORDER BY path;

-- the unreadable directory is skipped; the link to an ancestor and the
-- link out of root are not descended
SELECT count(*) FILTER (WHERE path LIKE 'locked/%') AS in_locked,
       count(*) FILTER (WHERE path LIKE '%ancestor/%') AS via_ancestor,
       count(*) FILTER (WHERE path LIKE 'escape-dir/%') AS via_escape
FROM hostile.files;

-- only files that parsed are items; a link inside root is followed
SELECT id, uid, state FROM hostile.items ORDER BY path;
SELECT path, heading FROM hostile.sections ORDER BY path, ordinal;
SELECT path, text FROM hostile.checklist ORDER BY path, ordinal;
SELECT item_id, message FROM hostile.worklog ORDER BY path, ordinal;
SELECT length(body) FROM hostile.items WHERE id = 'LONGLINE';

-- every table scans the hostile tree without failing
SELECT (SELECT count(*) FROM hostile.files) AS files,
       (SELECT count(*) FROM hostile.items) AS items,
       (SELECT count(*) FROM hostile.decisions) AS decisions,
       (SELECT count(*) FROM hostile.links) AS links,
       (SELECT count(*) FROM hostile.worklog) AS worklog,
       (SELECT count(*) FROM hostile.sections) AS sections,
       (SELECT count(*) FROM hostile.checklist) AS checklist;

-- a 20 MB body with 55,000 headings and 110,000 task entries
CREATE SERVER big FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp/kabsd-regress-hostile-big');
CREATE SCHEMA big;
IMPORT FOREIGN SCHEMA kabsd FROM SERVER big INTO big;
SELECT size > 20000000 AS over_20mb FROM big.files;
SELECT count(*), max(level), max(ordinal) FROM big.sections;
SELECT count(*), count(*) FILTER (WHERE checked) AS checked FROM big.checklist;

-- a long scan is cancelled promptly by statement_timeout
SET statement_timeout = '50ms';
SELECT count(*) FROM big.sections a, big.checklist b WHERE a.ordinal = b.ordinal;
RESET statement_timeout;
SELECT pg_backend_pid() = :backend AS same_backend;

-- root removed, or replaced by a file, after the server was created
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/kabsd-regress-gone';
CREATE SERVER gone FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp/kabsd-regress-gone');
CREATE FOREIGN TABLE gone_files (path text) SERVER gone OPTIONS (table 'files');
SELECT count(*) FROM gone_files;
COPY (SELECT 1) TO PROGRAM 'rmdir /tmp/kabsd-regress-gone';
SELECT count(*) FROM gone_files;  -- ERROR
COPY (SELECT 1) TO PROGRAM 'touch /tmp/kabsd-regress-gone';
SELECT count(*) FROM gone_files;  -- ERROR
COPY (SELECT 1) TO PROGRAM 'rm -f /tmp/kabsd-regress-gone';
DROP SERVER gone CASCADE;
SELECT pg_backend_pid() = :backend AS same_backend;
