--
-- worklog: entries of the sections headed Worklog
--
SELECT item_id, ordinal, at, agent, model, message, new_state
FROM live.worklog ORDER BY path, ordinal;

-- a timestamp that is no real date and time gives NULL, the entry is kept
SELECT item_id, at IS NULL AS no_time, message FROM live.worklog WHERE agent = 'bot';
