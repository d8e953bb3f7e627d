--
-- checklist: task-list entries, in bullet and ordered lists at any depth
--
SELECT item_id, section, ordinal, checked, text
FROM live.checklist ORDER BY path, ordinal;
