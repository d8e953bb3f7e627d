--
-- worklog: entries of the sections headed Worklog
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

SELECT item_id, ordinal, at, agent, model, message, new_state
FROM live.worklog ORDER BY path, ordinal;

-- a timestamp that is no real date and time gives NULL, the entry is kept
SELECT item_id, at IS NULL AS no_time, message FROM live.worklog WHERE agent = 'bot';

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
