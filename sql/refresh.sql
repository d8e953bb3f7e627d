--
-- The snapshot: kabsd_attach(), kabsd_refresh(), kabsd_status(), kabsd_publish(),
-- on the fixture backlog read in place (nothing here changes its files).
-- Freshness after the files change, a refresh that cannot read its root,
-- and a second backlog beside the first are test/t/011_refresh.pl's.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures/backlog'
\set snapshot_sql :abs_srcdir '/test/sql-include/snapshot.sql'
\i :snapshot_sql
SELECT kabsd_detach(name) FROM kabsd.backlogs;
DELETE FROM kabsd.refresh_history;
-- errors are shown without their CONTEXT lines, which name PL/pgSQL line
-- numbers
\set SHOW_CONTEXT never

-- attach builds the server, the live tables, the snapshot, and refreshes
SELECT name, files, items, decisions, links, worklog, sections, checklist,
       errors, status, error
FROM kabsd_attach(:'fixtures', 'fresh');
-- the first fill wrote its rows frozen, on all-visible pages (as COPY
-- FREEZE writes a table made in the same transaction)
CREATE EXTENSION pg_visibility;
SELECT t, bool_and(v.all_visible AND v.all_frozen) AS frozen
FROM unnest(kabsd_tables()) AS t, pg_visibility_map(format('fresh.%I', t)::regclass) v
GROUP BY t ORDER BY t;
DROP EXTENSION pg_visibility;
SELECT nspname FROM pg_namespace WHERE nspname LIKE 'fresh%' ORDER BY 1;
SELECT relname, relkind, relreplident FROM pg_class WHERE relnamespace = 'fresh'::regnamespace
  AND relkind IN ('r', 'v', 'm') ORDER BY 1;
SELECT indexrelid::regclass AS index FROM pg_index
WHERE indrelid::regclass::text LIKE 'fresh.%' AND indisprimary ORDER BY 1;
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) ~ 'gin' AS gin FROM pg_index
WHERE indrelid::regclass::text LIKE 'fresh.%' AND NOT indisprimary ORDER BY 1;
-- the guard on every snapshot table, and the tables BI tools list
SELECT tgrelid::regclass AS "table", tgname FROM pg_trigger
WHERE tgrelid::regclass::text LIKE 'fresh.%' ORDER BY 1;
SELECT table_name, table_type FROM information_schema.tables
WHERE table_schema = 'fresh' ORDER BY 1;

-- the snapshot has the live tables' columns and types, links adds target_uid
SELECT c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum) AS columns
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'fresh'::regnamespace AND c.relkind = 'r'
GROUP BY c.relname ORDER BY 1;
SELECT l.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS live_type,
       format_type(s.atttypid, s.atttypmod) AS snapshot_type
FROM pg_class l JOIN pg_attribute a ON a.attrelid = l.oid AND a.attnum > 0
LEFT JOIN pg_attribute s ON s.attrelid = format('fresh.%I', l.relname)::regclass AND s.attname = a.attname
WHERE l.relnamespace = 'fresh_live'::regnamespace
  AND s.atttypid IS DISTINCT FROM a.atttypid;
SELECT count(*) AS uncommented FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'fresh'::regnamespace AND c.relkind = 'r'
  AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL);

-- only kabsd_refresh() writes the snapshot: everyone else is refused, its
-- owner and superusers included
INSERT INTO fresh.items (path) VALUES ('fake.md');  -- ERROR
UPDATE fresh.items SET state = 'Done';  -- ERROR
DELETE FROM fresh.files;  -- ERROR
TRUNCATE fresh.links;  -- ERROR
SELECT count(*) AS items_untouched FROM fresh.items;

-- links.target_uid: the one item or decision of the product with that id
SELECT source_id, type, target_id, target_uid FROM fresh.links ORDER BY path, ordinal;

-- the tags bridge view, for tools that cannot read arrays
SELECT id, tag FROM fresh.item_tags ORDER BY id, tag;

-- the same rows as the live tables
SELECT (SELECT count(*) FROM (SELECT * FROM fresh_live.sections EXCEPT SELECT item_uid, item_id, ordinal, level, heading, content, path, product FROM fresh.sections) d) AS sections_differ,
       (SELECT count(*) FROM (SELECT path, error FROM fresh_live.files EXCEPT SELECT path, error FROM fresh.files) d) AS files_differ;

-- nothing changed: nothing parsed, nothing written
SELECT name, files, items, status FROM kabsd_refresh();
SELECT name, refreshed_at IS NOT NULL AS refreshed, files, added, changed, removed, stale FROM kabsd_status('fresh');

-- Rebuild: checksums of every table, then the snapshot cleared two ways
CREATE TEMP TABLE sums AS SELECT * FROM snapshot_sums('fresh');
SELECT count(*) FILTER (WHERE sum IS NOT NULL) AS tables_with_rows FROM sums;

-- (1) every table emptied (TRUNCATE with session_replication_role = replica)
SELECT snapshot_clear('fresh');
SELECT count(*) FROM fresh.items;
SELECT status FROM kabsd_refresh('fresh');
SELECT s.t, s.sum = n.sum AS same FROM sums s JOIN snapshot_sums('fresh') n USING (t) ORDER BY 1;

-- (2) dropped and attached again
SELECT kabsd_detach('fresh');
SELECT status FROM kabsd_attach(:'fixtures', 'fresh');
SELECT s.t, s.sum = n.sum AS same FROM sums s JOIN snapshot_sums('fresh') n USING (t) ORDER BY 1;

-- the history of every refresh
SELECT name, status, files, items, errors, views_refreshed, error IS NOT NULL AS has_error, sqlstate
FROM kabsd.refresh_history ORDER BY id;

-- errors of use
SELECT * FROM kabsd_refresh('nosuch');  -- ERROR
SELECT * FROM kabsd_attach(:'fixtures', 'fresh');  -- ERROR
SELECT * FROM kabsd_attach(:'fixtures', 'Bad Name');  -- ERROR
SELECT * FROM kabsd_attach('relative/path', 'other');  -- ERROR
SELECT kabsd_detach('nosuch');  -- ERROR
SELECT * FROM kabsd_status('nosuch');  -- ERROR

SELECT kabsd_publish('nosuch');  -- ERROR
SELECT kabsd_subscriber_sql('nosuch');  -- ERROR

-- Publishing needs wal_level = logical (this cluster has replica; the TAP
-- tests replicate for real)
SHOW wal_level;
SELECT kabsd_publish('fresh');  -- ERROR
-- the script for a subscriber names nothing of the extension
SELECT kabsd_subscriber_sql('fresh') ~ '(\m(public|kabsd)\.|kabsd_fdw)' AS names_the_extension;
SELECT line FROM regexp_split_to_table(kabsd_subscriber_sql('fresh'), E'\n') AS line
WHERE line ~ '^(BEGIN|COMMIT|CREATE|-- CREATE SUBSCRIPTION)';

-- A snapshot table dropped: the next refresh makes it again, fills it,
-- indexes it, and keeps the other tables' rows
CREATE TEMP TABLE sums_before_drop AS SELECT * FROM snapshot_sums('fresh');
SET client_min_messages = warning; DROP TABLE fresh.worklog CASCADE; RESET client_min_messages;  -- and the views on it
SELECT name, worklog, status FROM kabsd_refresh('fresh');
SELECT s.t, s.sum = n.sum AS same FROM sums_before_drop s JOIN snapshot_sums('fresh') n USING (t) ORDER BY 1;
SELECT count(*) AS worklog_indexes FROM pg_index WHERE indrelid = 'fresh.worklog'::regclass;

-- Only the snapshot's own objects are used: a view where a table belongs
-- is refused, never read or written; a materialized view of one's own
-- beside the tables is left alone
SET client_min_messages = warning; DROP TABLE fresh.decisions CASCADE; RESET client_min_messages;  -- and the views on it
CREATE VIEW fresh.decisions AS SELECT 1 AS x;
SELECT status, error FROM kabsd_refresh('fresh');  -- ERROR
SELECT status, error FROM kabsd.refresh_history WHERE name = 'fresh' ORDER BY id DESC LIMIT 1;
DROP VIEW fresh.decisions;
CREATE MATERIALIZED VIEW fresh.burndown AS SELECT state, count(*) FROM fresh.items GROUP BY state;
SELECT status FROM kabsd_refresh('fresh');
SELECT s.t, s.sum = n.sum AS same FROM sums_before_drop s JOIN snapshot_sums('fresh') n USING (t) ORDER BY 1;
DROP MATERIALIZED VIEW fresh.burndown;
-- a schema of the backlog's name that exists already is not taken over
CREATE SCHEMA taken;
SELECT * FROM kabsd_attach(:'fixtures', 'taken');  -- ERROR
SELECT count(*) FROM pg_foreign_server WHERE srvname = 'taken';
DROP SCHEMA taken;

-- A backlog attached by another role: a superuser's refresh makes a
-- dropped table again as that role's, and the role refreshes on
DROP ROLE IF EXISTS regress_kabsd_owner;
CREATE ROLE regress_kabsd_owner IN ROLE pg_read_server_files;
GRANT CREATE ON DATABASE contrib_regression TO regress_kabsd_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER kabsd_fdw TO regress_kabsd_owner;
SET ROLE regress_kabsd_owner;
SELECT name, items, status FROM kabsd_attach(:'fixtures', 'owned');
RESET ROLE;
SET client_min_messages = warning; DROP TABLE owned.links CASCADE; RESET client_min_messages;  -- and the views on it
SELECT name, links, status FROM kabsd_refresh('owned');
SELECT relname, relowner::regrole FROM pg_class
WHERE relnamespace = 'owned'::regnamespace AND relkind IN ('r', 'v') AND relowner <> 'regress_kabsd_owner'::regrole;
SET ROLE regress_kabsd_owner;
SELECT name, links, status FROM kabsd_refresh('owned', full => true);
SELECT kabsd_detach('owned');
RESET ROLE;
REVOKE CREATE ON DATABASE contrib_regression FROM regress_kabsd_owner;
REVOKE USAGE ON FOREIGN DATA WRAPPER kabsd_fdw FROM regress_kabsd_owner;
DROP ROLE regress_kabsd_owner;

-- A BI role reads the snapshot, not the files
DROP ROLE IF EXISTS regress_kabsd_bi;
CREATE ROLE regress_kabsd_bi;
GRANT USAGE ON SCHEMA fresh TO regress_kabsd_bi;
GRANT SELECT ON ALL TABLES IN SCHEMA fresh TO regress_kabsd_bi;
SET ROLE regress_kabsd_bi;
SELECT count(*) FROM fresh.items;
SELECT count(*) FROM fresh.item_tags;
SELECT count(*) FROM fresh_live.items;  -- ERROR
SELECT * FROM kabsd_refresh('fresh');  -- ERROR
SELECT kabsd_fingerprint('fresh');  -- ERROR
RESET ROLE;
REVOKE ALL ON ALL TABLES IN SCHEMA fresh FROM regress_kabsd_bi;
REVOKE USAGE ON SCHEMA fresh FROM regress_kabsd_bi;
DROP ROLE regress_kabsd_bi;

SELECT kabsd_detach('fresh');
SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'fresh%';
DROP FUNCTION matches_rebuild(text), snapshot_sums(text), snapshot_clear(text);
