--
-- The files are the source of truth: every write is refused with a message
-- that says so
--
INSERT INTO live.items (id) VALUES ('NEW-1');  -- ERROR
UPDATE live.items SET state = 'Done' WHERE id = 'ALP-TSK-0001';  -- ERROR
DELETE FROM live.files;  -- ERROR
TRUNCATE live.items;  -- ERROR
COPY live.items (id) FROM STDIN;  -- ERROR
