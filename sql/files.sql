--
-- files: every walked .md file, with its kind, product and error
--
SELECT path, product, kind, has_frontmatter, error IS NOT NULL AS has_error
FROM live.files ORDER BY path;

-- dot entries are skipped; only names ending in ".md" are walked
SELECT count(*) FILTER (WHERE path LIKE '%.hidden%') AS hidden,
       count(*) FILTER (WHERE path NOT LIKE '%.md') AS not_md
FROM live.files;

-- size and mtime come from the walk
SELECT path, size FROM live.files WHERE path = 'README.md';
SELECT count(*) FROM live.files WHERE mtime > now() OR mtime < '2000-01-01';

-- errors name what is wrong
SELECT path, error FROM live.files WHERE error IS NOT NULL ORDER BY path;

-- a query that reads neither error nor has_frontmatter opens no file
SELECT * FROM explain_backlog('SELECT path, size FROM live.files');
-- ... and one that does reads them all
SELECT * FROM explain_backlog('SELECT count(*) FROM live.files WHERE error IS NULL');
