--
-- items: one row per item file with a non-null id or uid
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT id, uid, type, state, title, priority, parent, area, iteration, owner,
       tags, decisions, created, updated, product
FROM live.items ORDER BY path;

-- id: null with a valid uid is still an item; the uid is the identity, the
-- display id may repeat
SELECT id, uid FROM live.items WHERE id IS NULL OR id = 'ALP-TSK-0001' ORDER BY uid;

-- a file without frontmatter in items/ is no item and no error
SELECT path, has_frontmatter, error FROM live.files WHERE path LIKE '%no-frontmatter%';
SELECT count(*) FROM live.items WHERE path LIKE '%no-frontmatter%';

-- a file that does not parse yields no item
SELECT count(*) FROM live.items WHERE path LIKE '%broken-yaml%';

-- wrong shapes: NULL in the column, a note in files.error, the row kept
SELECT id, uid, state, parent, tags, created FROM live.items WHERE id = 'ALP-BUG-0001';
SELECT error FROM live.files WHERE path LIKE '%ALP-BUG-0001%';

-- dates: plain, quoted and with a time all give the date part; 2026-02-29
-- is no date
SELECT id, created, updated FROM live.items WHERE id IN ('ALP-USR-0001', 'ALP-TSK-0006') ORDER BY id;
SELECT error FROM live.files WHERE path LIKE '%ALP-TSK-0006%';

-- values as written: "0042" stays text, the last duplicate key wins
SELECT priority, title FROM live.items WHERE uid = '019b8f52-0000-7000-8000-000000000003';

-- frontmatter keeps everything, unknown keys included, with JSON types
SELECT frontmatter->'external' AS external, frontmatter->'estimate' AS estimate,
       jsonb_typeof(frontmatter->'created') AS created_type,
       frontmatter->'links' AS links
FROM live.items WHERE title = 'Parse frontmatter';
SELECT frontmatter->'tags' FROM live.items WHERE id = 'ALP-USR-0001';

-- body: everything after the closing fence, verbatim (CR kept)
SELECT left(body, 24) AS body_start FROM live.items WHERE title = 'Parse frontmatter';
SELECT position(E'\r' IN body) > 0 AS keeps_cr FROM live.items WHERE id = 'ALP-TSK-0005';

-- columns mapped to frontmatter keys, converted to their declared types;
-- what does not convert is NULL, never an error
CREATE FOREIGN TABLE public.item_keys (
  id text,
  jira text OPTIONS (key 'external.jira_key'),
  points integer OPTIONS (key 'external.points'),
  small smallint OPTIONS (key 'external.points'),
  estimate numeric OPTIONS (key 'estimate'),
  updated_at timestamp OPTIONS (key 'updated'),
  updated_tz timestamptz OPTIONS (key 'updated'),
  created_day date OPTIONS (key 'created'),
  ext jsonb OPTIONS (key 'external'),
  title_as_int integer OPTIONS (key 'title'),
  title_as_uuid uuid OPTIONS (key 'title'),
  uid_as_uuid uuid OPTIONS (key 'uid'),
  uid_text text OPTIONS (key 'uid'),
  tag_list text[] OPTIONS (key 'tags'),
  links_text text OPTIONS (key 'links'),
  missing boolean OPTIONS (key 'no.such.key')
) SERVER fixture OPTIONS (table 'items');
SET timezone = 'UTC';
SELECT * FROM public.item_keys WHERE title_as_uuid IS NULL ORDER BY id NULLS FIRST, uid_text;
RESET timezone;

-- a column that cannot be filled fails when the table is created
CREATE FOREIGN TABLE public.bad (nope text) SERVER fixture OPTIONS (table 'items');  -- ERROR
CREATE FOREIGN TABLE public.bad (id integer) SERVER fixture OPTIONS (table 'items');  -- ERROR
CREATE FOREIGN TABLE public.bad (x point OPTIONS (key 'x')) SERVER fixture OPTIONS (table 'items');  -- ERROR
ALTER FOREIGN TABLE public.item_keys ALTER COLUMN id TYPE integer;  -- ERROR
ALTER FOREIGN TABLE public.item_keys ADD COLUMN nope text;  -- ERROR
DROP FOREIGN TABLE public.item_keys;

-- YAML: anchors and aliases resolved, explicit tags ignored, "<<" an
-- ordinary key, keys kept as strings, only plain null/~/empty, true/false
-- and JSON-style numbers typed; everything else is a string
SELECT jsonb_pretty(frontmatter - 'uid') FROM live.items WHERE id = 'ALP-TSK-0007';

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
