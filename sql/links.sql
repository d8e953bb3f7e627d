--
-- links: parent, relates, blocks, blocked_by (under links: and at the top
-- level), decision, then wikilinks from the body's text (not from code)
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT source_id, source_uid, ordinal, type, target_id, product
FROM live.links ORDER BY path, ordinal;

-- wrong shapes yield no edge: parent: [a, b] and links: "none"
SELECT count(*) FROM live.links WHERE source_id = 'ALP-BUG-0001';

-- code spans and fenced code hold no wikilinks
SELECT count(*) FROM live.links WHERE target_id LIKE '%not-a-link%';

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
