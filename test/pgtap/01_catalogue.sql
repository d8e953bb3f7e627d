-- The shape of what kabsd_fdw installs and what kabsd_attach() builds.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(58);

SELECT ok(EXISTS (SELECT 1 FROM pg_foreign_data_wrapper WHERE fdwname = 'kabsd_fdw'), 'the foreign-data wrapper exists');
SELECT has_function('kabsd_attach', ARRAY['text', 'text', 'boolean']);
SELECT has_function('kabsd_detach', ARRAY['text']);
SELECT has_function('kabsd_refresh', ARRAY['text', 'boolean', 'text[]']);
SELECT has_function('kabsd_status', ARRAY['text']);
SELECT has_table('kabsd', 'backlogs', 'the registry of attached backlogs');
SELECT has_table('kabsd', 'refresh_history', 'the refresh history');

SELECT lives_ok(format('SELECT kabsd_attach(%L, %L)', :'fixtures', 'tap'), 'kabsd_attach');

SELECT ok(EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = 'tap'), 'the server exists');
SELECT has_schema('tap_live');
SELECT has_schema('tap');
SELECT foreign_tables_are('tap_live',
  ARRAY['files', 'items', 'decisions', 'links', 'worklog', 'sections', 'checklist']);
SELECT tables_are('tap',
  ARRAY['files', 'items', 'decisions', 'links', 'worklog', 'sections', 'checklist', 'refreshes', 'vocabulary']);
SELECT views_are('tap', ARRAY['item_tags', 'active', 'tree', 'ready_gate', 'state_changes', 'flow', 'throughput', 'lint']);
SELECT col_is_pk('tap', 'vocabulary', ARRAY['kind', 'word']::name[], 'vocabulary key');
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
           WHERE c.relnamespace = 'tap'::regnamespace AND c.relkind = 'v' AND c.relname <> 'item_tags'
             AND col_description(c.oid, a.attnum) IS NULL), 0, 'every column of the views has a comment');

-- real PostgreSQL types, so BI tools see dates as dates and lists as arrays
SELECT col_type_is('tap_live', 'files', 'size', 'bigint', 'files.size');
SELECT col_type_is('tap_live', 'files', 'mtime', 'timestamp with time zone', 'files.mtime');
SELECT col_type_is('tap_live', 'files', 'has_frontmatter', 'boolean', 'files.has_frontmatter');
SELECT col_type_is('tap_live', 'items', 'uid', 'uuid', 'items.uid');
SELECT col_type_is('tap_live', 'items', 'tags', 'text[]', 'items.tags');
SELECT col_type_is('tap_live', 'items', 'created', 'date', 'items.created');
SELECT col_type_is('tap_live', 'items', 'frontmatter', 'jsonb', 'items.frontmatter');
SELECT col_type_is('tap_live', 'decisions', 'date', 'date', 'decisions.date');
SELECT col_type_is('tap_live', 'decisions', 'deciders', 'text[]', 'decisions.deciders');
SELECT col_type_is('tap_live', 'links', 'ordinal', 'integer', 'links.ordinal');
SELECT col_type_is('tap_live', 'worklog', 'at', 'timestamp without time zone', 'worklog.at');
SELECT col_type_is('tap_live', 'sections', 'level', 'integer', 'sections.level');
SELECT col_type_is('tap_live', 'checklist', 'checked', 'boolean', 'checklist.checked');
SELECT col_type_is('tap', 'links', 'target_uid', 'uuid', 'links.target_uid in the snapshot');

-- the snapshot's columns are the live tables' columns
SELECT set_eq(
  $$SELECT attrelid::regclass::text, attname::text, format_type(atttypid, atttypmod)
    FROM pg_attribute WHERE attnum > 0 AND attrelid::regclass::text LIKE 'tap_live.%'$$,
  $$SELECT replace(attrelid::regclass::text, 'tap.', 'tap_live.'), attname::text, format_type(atttypid, atttypmod)
    FROM pg_attribute WHERE attnum > 0 AND attrelid IN (SELECT oid FROM pg_class
      WHERE relnamespace = 'tap'::regnamespace AND relkind = 'r' AND relname NOT IN ('refreshes', 'vocabulary'))
      AND attname <> 'target_uid'$$,
  'snapshot columns match the live tables');

-- primary keys, the replica identity that logical replication needs
SELECT col_is_pk('tap', 'files', 'path'::name, 'files key');
SELECT col_is_pk('tap', 'items', 'path'::name, 'items key');
SELECT col_is_pk('tap', 'decisions', 'path'::name, 'decisions key');
SELECT col_is_pk('tap', 'links', ARRAY['path', 'ordinal']::name[], 'links key');
SELECT col_is_pk('tap', 'worklog', ARRAY['path', 'ordinal']::name[], 'worklog key');
SELECT col_is_pk('tap', 'sections', ARRAY['path', 'ordinal']::name[], 'sections key');
SELECT col_is_pk('tap', 'checklist', ARRAY['path', 'ordinal']::name[], 'checklist key');
SELECT col_is_pk('tap', 'refreshes', 'id'::name, 'refreshes key');
SELECT is((SELECT count(*)::int FROM pg_class WHERE relnamespace = 'tap'::regnamespace
           AND relkind = 'r' AND relreplident <> 'd'), 0, 'every table replicates by its primary key');
SELECT trigger_is('tap', t, 'refuse_write', 'tap', 'refuse_write', t || ' refuses writes')
FROM unnest(kabsd_tables()) AS t;
SELECT has_index('tap', 'items', 'items_uid_idx', 'uid');
SELECT has_index('tap', 'items', 'items_id_idx', 'id');
SELECT has_index('tap', 'items', 'items_state_idx', 'state');
SELECT has_index('tap', 'items', 'items_parent_idx', 'parent');
SELECT has_index('tap', 'items', 'items_product_idx', 'product');
SELECT ok(EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = 'tap' AND tablename = 'sections'
                  AND indexdef LIKE '%USING gin%to_tsvector%'), 'full-text index over sections');

-- every view and column has a comment
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
           WHERE c.relnamespace = 'tap'::regnamespace AND c.relkind = 'r'
             AND col_description(c.oid, a.attnum) IS NULL), 0, 'every snapshot column has a comment');
SELECT is((SELECT count(*)::int FROM pg_class c
           WHERE c.relnamespace = 'tap'::regnamespace AND c.relkind IN ('r', 'v')
             AND obj_description(c.oid, 'pg_class') IS NULL), 0, 'every snapshot table and view has a comment');

-- the full-text index answers a search
SELECT isnt_empty($$SELECT 1 FROM tap.sections
  WHERE to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || coalesce(content, ''))
        @@ to_tsquery('simple', 'fences')$$, 'full-text search over sections');

SELECT lives_ok($$SELECT kabsd_detach('tap')$$, 'kabsd_detach');
SELECT hasnt_schema('tap');

SELECT * FROM finish();
ROLLBACK;
