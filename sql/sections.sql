--
-- sections: one row per heading of an item's or decision's body, at any
-- depth, ATX or setext; a # in a code block is no heading
--
SELECT item_id, ordinal, level, heading, content
FROM live.sections ORDER BY path, ordinal;

SELECT count(*) FROM live.sections WHERE heading LIKE '%not a heading%';
