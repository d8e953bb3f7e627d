--------------------------------------------------------------------------
-- The answers a backlog's users ask for every day, as views in the
-- backlog's schema: active work and its blockers, the item tree, the ready
-- gate, lint, state changes, flow and throughput; and two pages made from
-- them, kabsd_dashboard() (Markdown) and kabsd_graph() (Mermaid).
--
-- The views read the snapshot tables and the schema's vocabulary table
-- only (and pg_catalog), so that a copy made by kabsd_subscriber_sql(),
-- where kabsd_fdw is not installed, has them too and answers the same.
-- Every text ordering inside them is COLLATE "C": the same rows in any
-- database.  Like the functions, this file ends the install script and
-- every update script (the Makefile appends it).
--------------------------------------------------------------------------

-- The views of a backlog, in the order they are made (a view after those
-- it reads), which kabsd_subscriber_sql() follows too.
CREATE OR REPLACE FUNCTION kabsd_snapshot_view_names()
RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT ARRAY['active', 'tree', 'ready_gate', 'state_changes', 'flow', 'throughput', 'lint'] $$;

-- The vocabulary table and the views of backlog name, each made when it is
-- missing (a table dropped with CASCADE takes its views along; the next
-- refresh makes them again), owned by owner.  Called by
-- kabsd_snapshot_create() at attach and at every refresh.  A view that
-- exists is left as it is: replacing it would lock out its readers.
CREATE OR REPLACE FUNCTION kabsd_snapshot_views(name text, owner oid)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
DECLARE
  n text := kabsd_snapshot_views.name;
  pub text := 'kabsd_' || kabsd_snapshot_views.name;
  v record;
  c record;
  empty boolean;
BEGIN
  -- configuration, not derived from the files: made once, then the
  -- owner's to edit; published with the snapshot so that a copy answers
  -- with the same words
  IF pg_catalog.to_regclass(pg_catalog.format('%I.vocabulary', n)) IS NULL THEN
    EXECUTE pg_catalog.format($q$CREATE TABLE %I.vocabulary (
      kind text NOT NULL,
      word text NOT NULL,
      class text NOT NULL,
      ordinal integer NOT NULL DEFAULT 0,
      PRIMARY KEY (kind, word),
      CONSTRAINT vocabulary_class_check CHECK (
        (kind = 'state' AND class IN ('open', 'started', 'done', 'dropped'))
        OR (kind = 'type' AND class = 'known')
        OR (kind = 'section' AND class = 'required')))$q$, n);
    EXECUTE pg_catalog.format('COMMENT ON TABLE %I.vocabulary IS %L', n,
      'The words of backlog ' || n || ' that the views know: states (and their class), types, the sections the ready gate requires. Configuration, not derived from the files: its owner edits it; kabsd_refresh() only fills it with the defaults when it is empty; a copy receives it with the snapshot.');
    FOR c IN SELECT * FROM (VALUES
        ('kind', 'state, type or section'),
        ('word', 'The word as the files write it (items.state, items.type, a section heading); compared exactly, headings without regard to case'),
        ('class', 'For a state: open (active, not started), started (active, in work: flow.started is the first change to one), done or dropped; for a type: known; for a section: required (by the ready gate)'),
        ('ordinal', 'Order of the words of a kind: the states in their flow, types and sections as the dashboard and the ready gate list them')) AS d(col, txt) LOOP
      EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.vocabulary.%I IS %L', n, c.col, c.txt);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %I.vocabulary OWNER TO %I', n, owner::regrole);
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = pub) THEN
      EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %I.vocabulary', pub, n);
    END IF;
  END IF;
  -- the defaults, in a vocabulary made now or found empty (a restore that
  -- left out the snapshot's rows, say): with no words every item would be
  -- unknown
  EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM %I.vocabulary)', n) INTO empty;
  IF empty THEN
    EXECUTE pg_catalog.format($q$INSERT INTO %I.vocabulary (kind, word, class, ordinal) VALUES
      ('state', 'Proposed', 'open', 1), ('state', 'Planned', 'open', 2),
      ('state', 'Ready', 'open', 3), ('state', 'New', 'open', 4),
      ('state', 'InProgress', 'started', 5), ('state', 'Review', 'open', 6),
      ('state', 'Blocked', 'open', 7), ('state', 'Done', 'done', 8),
      ('state', 'Dropped', 'dropped', 9),
      ('type', 'Epic', 'known', 1), ('type', 'Feature', 'known', 2),
      ('type', 'UserStory', 'known', 3), ('type', 'Story', 'known', 4),
      ('type', 'Task', 'known', 5), ('type', 'Bug', 'known', 6),
      ('section', 'Context', 'required', 1), ('section', 'Goal', 'required', 2),
      ('section', 'Approach', 'required', 3), ('section', 'Acceptance Criteria', 'required', 4),
      ('section', 'Risks', 'required', 5)$q$, n);
  END IF;

  FOR v IN SELECT d.* FROM (VALUES
    ('active', $v$
      SELECT i.uid, i.id, i.product, i.type, i.state, i.title, i.priority, i.owner,
        ARRAY(SELECT DISTINCT coalesce(b.id, b.uid::text, b.path) COLLATE "C"
              FROM (SELECT t.path FROM %1$I.links l JOIN %1$I.items t ON t.uid = l.target_uid
                    WHERE l.path = i.path AND l.type = 'blocked_by'
                    UNION
                    SELECT l.path FROM %1$I.links l
                    WHERE l.type = 'blocks' AND l.target_uid = i.uid) x
              JOIN %1$I.items b ON b.path = x.path
              WHERE b.path <> i.path
                AND NOT EXISTS (SELECT 1 FROM %1$I.vocabulary d
                                WHERE d.kind = 'state' AND d.word = b.state
                                  AND d.class IN ('done', 'dropped'))
              ORDER BY 1) AS blocked_by,
        i.path
      FROM %1$I.items i
      JOIN %1$I.vocabulary s ON s.kind = 'state' AND s.word = i.state
                             AND s.class IN ('open', 'started')$v$,
     'Items in an open or started state (vocabulary), with the items that block them and are not done or dropped.',
     '{"uid": "The item''s uid",
       "id": "The item''s display id",
       "product": "The item''s product",
       "type": "Type, as written",
       "state": "State, as written: one of the vocabulary''s open or started states",
       "title": "Title",
       "priority": "Priority, as written",
       "owner": "Owner",
       "blocked_by": "Display ids (uid, else path, when an item has none) of the items that block it and are not in a done or dropped state: its own blocked_by links and other items'' blocks links naming it, resolved through links.target_uid; sorted",
       "path": "The item''s file"}'),
    ('tree', $v$
      WITH RECURSIVE node AS (
        SELECT i.path, i.uid, i.id, i.product,
          coalesce(
            (SELECT p.path FROM %1$I.links l JOIN %1$I.items p ON p.uid = l.target_uid
             WHERE l.path = i.path AND l.type = 'parent'
             ORDER BY l.ordinal, p.path COLLATE "C" LIMIT 1),
            (SELECT p.path FROM %1$I.items p
             WHERE p.uid = CASE WHEN i.parent ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                THEN i.parent::uuid END
             ORDER BY p.path COLLATE "C" LIMIT 1)) AS parent_path
        FROM %1$I.items i),
      walk AS (
        -- up from each item; a path seen before ends the walk: a cycle
        -- is cut, never followed round
        SELECT o.path AS start, o.path AS here, o.parent_path AS next, 0 AS depth,
               ARRAY[o.path] AS seen
        FROM node o
        UNION ALL
        SELECT w.start, p.path, p.parent_path, w.depth + 1, w.seen || p.path
        FROM walk w JOIN node p ON p.path = w.next
        WHERE p.path <> ALL (w.seen)),
      top AS (
        SELECT DISTINCT ON (w.start) w.start, w.here, w.next, w.depth, w.seen
        FROM walk w ORDER BY w.start, w.depth DESC)
      SELECT o.uid, o.id, o.product, t.depth,
        (SELECT p.uid FROM node p WHERE p.path = o.parent_path) AS parent_uid,
        r.uid AS root_uid, r.id AS root_id,
        ARRAY(SELECT coalesce(a.id, a.uid::text, a.path)
              FROM pg_catalog.unnest(t.seen) WITH ORDINALITY AS u(p, k)
              JOIN node a ON a.path = u.p
              WHERE u.k > 1 ORDER BY u.k DESC) AS ancestors,
        t.next IS NOT NULL AND t.next = o.path AS cycle,
        o.path
      FROM node o
      JOIN top t ON t.start = o.path
      JOIN node r ON r.path = t.here$v$,
     'Every item in the tree of parents: its depth, its root and the ids of its ancestors from the root. The parent is the item that the parent link''s target_uid names (or whose uid the parent key writes); a parent cycle is cut where the walk up would come round again.',
     '{"uid": "The item''s uid",
       "id": "The item''s display id",
       "product": "The item''s product",
       "depth": "Steps up to its root: 0 for an item without a parent",
       "parent_uid": "uid of its parent item; NULL when it has none or the parent resolves to no item",
       "root_uid": "uid of the item at the top of its chain of parents (itself for a root); in a cycle, the last item before the walk would come round",
       "root_id": "Display id of that root",
       "ancestors": "Display ids (uid, else path, when an item has none) of its ancestors, the root first, its parent last; empty for a root",
       "cycle": "Its chain of parents comes back to itself: the chain is cut before it, and lint lists it",
       "path": "The item''s file"}'),
    ('ready_gate', $v$
      SELECT i.uid, i.id, i.product, i.type, i.state, g.missing, g.empty,
             pg_catalog.cardinality(g.missing) + pg_catalog.cardinality(g.empty) = 0 AS ready,
             i.path
      FROM %1$I.items i,
      LATERAL (
        SELECT ARRAY(SELECT r.word FROM %1$I.vocabulary r
                     WHERE r.kind = 'section' AND r.class = 'required'
                       AND NOT EXISTS (SELECT 1 FROM %1$I.sections s
                                       WHERE s.path = i.path AND pg_catalog.lower(pg_catalog.btrim(s.heading)) = pg_catalog.lower(r.word))
                     ORDER BY r.ordinal, r.word COLLATE "C") AS missing,
               ARRAY(SELECT r.word FROM %1$I.vocabulary r
                     WHERE r.kind = 'section' AND r.class = 'required'
                       AND EXISTS (SELECT 1 FROM %1$I.sections s
                                   WHERE s.path = i.path AND pg_catalog.lower(pg_catalog.btrim(s.heading)) = pg_catalog.lower(r.word))
                       AND NOT EXISTS (
                         SELECT 1 FROM %1$I.sections s
                         WHERE s.path = i.path AND pg_catalog.lower(pg_catalog.btrim(s.heading)) = pg_catalog.lower(r.word)
                           AND (pg_catalog.btrim(coalesce(s.content, ''), E' \t\r\n') <> ''
                                OR EXISTS (SELECT 1 FROM %1$I.sections b
                                           WHERE b.path = s.path AND b.ordinal = s.ordinal + 1
                                             AND b.level > s.level)))
                     ORDER BY r.ordinal, r.word COLLATE "C") AS empty) g$v$,
     'Per item, the sections that the ready gate requires (vocabulary, kind section) and that it lacks or leaves empty; an item is ready when it has them all, written.',
     '{"uid": "The item''s uid",
       "id": "The item''s display id",
       "product": "The item''s product",
       "type": "Type, as written",
       "state": "State, as written",
       "missing": "Required sections without a heading of that name (any level, case ignored), in the vocabulary''s order",
       "empty": "Required sections whose heading is there with neither text nor a subheading under it",
       "ready": "No required section is missing or empty",
       "path": "The item''s file"}'),
    ('state_changes', $v$
      SELECT w.item_uid, w.item_id, w.product, w.ordinal, w.at,
             pg_catalog.lag(w.new_state) OVER (PARTITION BY w.path ORDER BY w.ordinal) AS from_state,
             w.new_state AS to_state, w.path
      FROM %1$I.worklog w
      WHERE w.new_state IS NOT NULL$v$,
     'Every "State -> X" of the items'' worklogs, with the state it left (the one before in the same worklog).',
     '{"item_uid": "The item''s uid",
       "item_id": "The item''s display id",
       "product": "The item''s product",
       "ordinal": "The worklog entry''s number in its file",
       "at": "When, as the entry says (NULL when that is no real date and time)",
       "from_state": "The state of the change before it in the worklog; NULL for the first",
       "to_state": "The state it moved to",
       "path": "The item''s file"}'),
    ('flow', $v$
      SELECT i.uid, i.id, i.product, i.type, i.state, f.created, f.started, f.done,
             f.done - f.created AS lead_time, f.done - f.started AS cycle_time, i.path
      FROM %1$I.items i,
      LATERAL (
        SELECT coalesce(i.created::timestamp,
                        (SELECT pg_catalog.min(w.at) FROM %1$I.worklog w WHERE w.path = i.path)) AS created,
               (SELECT pg_catalog.min(c.at) FROM %1$I.state_changes c
                JOIN %1$I.vocabulary v ON v.kind = 'state' AND v.word = c.to_state AND v.class = 'started'
                WHERE c.path = i.path) AS started,
               (SELECT c.at FROM %1$I.state_changes c
                JOIN %1$I.vocabulary v ON v.kind = 'state' AND v.word = c.to_state AND v.class = 'done'
                WHERE c.path = i.path ORDER BY c.ordinal DESC LIMIT 1) AS done) f$v$,
     'Per item, when it was created, first started and last done, from its frontmatter and its worklog''s state changes, and the lead and cycle times between.',
     '{"uid": "The item''s uid",
       "id": "The item''s display id",
       "product": "The item''s product",
       "type": "Type, as written",
       "state": "State, as written",
       "created": "The frontmatter''s created date (at midnight), else the first worklog entry''s time",
       "started": "The first change to a started state (vocabulary: InProgress)",
       "done": "The last change to a done state (vocabulary: Done); NULL when the worklog has none",
       "lead_time": "done - created",
       "cycle_time": "done - started",
       "path": "The item''s file"}'),
    ('throughput', $v$
      SELECT pg_catalog.date_trunc('week', f.done)::date AS week,
             pg_catalog.to_char(f.done, 'IYYY-"W"IW') AS iso_week, f.product,
             pg_catalog.count(*) AS items,
             pg_catalog.array_agg(coalesce(f.id, f.uid::text, f.path) ORDER BY coalesce(f.id, f.uid::text, f.path) COLLATE "C") AS ids
      FROM %1$I.flow f
      WHERE f.done IS NOT NULL
      GROUP BY 1, 2, 3$v$,
     'Items reaching a done state per ISO week and product: the week of each item''s last change to a done state (flow.done).',
     '{"week": "Monday of the ISO week",
       "iso_week": "The ISO week, as 2026-W40",
       "product": "The product",
       "items": "Items whose last change to a done state falls in that week",
       "ids": "Their display ids (uid, else path, when an item has none), sorted"}'),
    ('lint', $v$
      WITH ent AS (
        SELECT i.path, i.product, i.id, i.uid FROM %1$I.items i
        UNION ALL
        SELECT d.path, d.product, d.id, d.uid FROM %1$I.decisions d),
      cand AS (
        -- what a link can name, as links.target_uid is resolved
        SELECT e.product, e.id AS key, false AS by_name, e.path FROM ent e WHERE e.id IS NOT NULL
        UNION
        SELECT e.product, e.id, true, e.path FROM ent e WHERE e.id IS NOT NULL
        UNION
        SELECT e.product, pg_catalog.regexp_replace(pg_catalog.regexp_replace(e.path, '^.*/', ''), '\.md$', ''),
               true, e.path
        FROM ent e),
      lk AS (
        SELECT l.path, l.ordinal, l.source_id, l.type, l.target_id, l.product,
               CASE WHEN l.type = 'wikilink'
                    THEN pg_catalog.regexp_replace(pg_catalog.regexp_replace(l.target_id, '^.*/', ''), '\.md$', '')
                    ELSE l.target_id END AS key
        FROM %1$I.links l WHERE l.target_uid IS NULL),
      lkm AS (
        SELECT lk.*, pg_catalog.count(DISTINCT c.path) AS matches,
               pg_catalog.string_agg(DISTINCT c.path COLLATE "C", ', ' ORDER BY c.path COLLATE "C") AS paths
        FROM lk LEFT JOIN cand c ON c.product = lk.product AND c.key = lk.key
                                AND c.by_name = (lk.type = 'wikilink')
        GROUP BY lk.path, lk.ordinal, lk.source_id, lk.type, lk.target_id, lk.product, lk.key),
      last_state AS (
        SELECT DISTINCT ON (w.path) w.path, w.new_state
        FROM %1$I.worklog w WHERE w.new_state IS NOT NULL
        ORDER BY w.path, w.ordinal DESC)
      SELECT 'duplicate_id' AS kind, e.path, e.id,
             pg_catalog.format('id %%s is also the id of %%s', e.id,
               (SELECT pg_catalog.string_agg(o.path, ', ' ORDER BY o.path COLLATE "C") FROM ent o
                WHERE o.product = e.product AND o.id = e.id AND o.path <> e.path)) AS detail
      FROM ent e
      WHERE EXISTS (SELECT 1 FROM ent o WHERE o.product = e.product AND o.id = e.id AND o.path <> e.path)
      UNION ALL
      SELECT 'null_id', e.path, e.id,
             CASE WHEN e.uid IS NULL THEN 'no id' ELSE pg_catalog.format('no id: only its uid %%s names it', e.uid) END
      FROM ent e WHERE e.id IS NULL
      UNION ALL
      SELECT 'id_mismatch', e.path, e.id,
             pg_catalog.format('the file name starts with %%s, the frontmatter says id %%s',
               pg_catalog.split_part(pg_catalog.regexp_replace(pg_catalog.regexp_replace(e.path, '^.*/', ''), '\.md$', ''), '_', 1), e.id)
      FROM ent e
      WHERE e.id <> pg_catalog.split_part(pg_catalog.regexp_replace(pg_catalog.regexp_replace(e.path, '^.*/', ''), '\.md$', ''), '_', 1)
      UNION ALL
      SELECT 'unresolved_link', m.path, m.source_id,
             pg_catalog.format('%%s to %%s names no item or decision of product %%s',
               CASE WHEN m.type = 'wikilink' THEN 'wikilink' ELSE m.type || ' link' END, m.target_id, m.product)
      FROM lkm m
      WHERE m.matches = 0
        -- a wikilink may name any other file of the backlog
        AND NOT (m.type = 'wikilink' AND EXISTS (
              SELECT 1 FROM %1$I.files f
              WHERE pg_catalog.regexp_replace(pg_catalog.regexp_replace(f.path, '^.*/', ''), '\.md$', '') = m.key))
        -- a parent may be written as its uid
        AND NOT (m.type = 'parent' AND EXISTS (
              SELECT 1 FROM %1$I.items p
              WHERE p.uid::text = pg_catalog.lower(m.target_id)))
      UNION ALL
      SELECT 'ambiguous_link', m.path, m.source_id,
             pg_catalog.format('%%s to %%s names %%s files: %%s',
               CASE WHEN m.type = 'wikilink' THEN 'wikilink' ELSE m.type || ' link' END, m.target_id, m.matches, m.paths)
      FROM lkm m WHERE m.matches > 1
      UNION ALL
      SELECT 'parent_cycle', t.path, t.id,
             'parent cycle: ' || pg_catalog.array_to_string(
               coalesce(t.id, t.uid::text, t.path) ||
               ARRAY(SELECT a FROM pg_catalog.unnest(t.ancestors) WITH ORDINALITY AS u(a, k) ORDER BY k DESC) ||
               coalesce(t.id, t.uid::text, t.path), ' -> ')
      FROM %1$I.tree t WHERE t.cycle
      UNION ALL
      SELECT 'unchecked_done', i.path, i.id,
             pg_catalog.format('%%s with %%s unchecked checklist %%s', i.state, k.n,
                               CASE WHEN k.n = 1 THEN 'entry' ELSE 'entries' END)
      FROM %1$I.items i
      JOIN %1$I.vocabulary s ON s.kind = 'state' AND s.word = i.state AND s.class IN ('done', 'dropped')
      JOIN (SELECT c.path, pg_catalog.count(*) AS n FROM %1$I.checklist c
            WHERE NOT c.checked GROUP BY c.path) k ON k.path = i.path
      UNION ALL
      SELECT 'state_mismatch', i.path, i.id,
             pg_catalog.format('the frontmatter says state %%s, the worklog''s last change says %%s',
                               coalesce(i.state, '(none)'), w.new_state)
      FROM %1$I.items i JOIN last_state w ON w.path = i.path
      WHERE i.state IS DISTINCT FROM w.new_state
      UNION ALL
      SELECT 'unknown_type', i.path, i.id,
             CASE WHEN i.type IS NULL THEN 'no type'
                  ELSE pg_catalog.format('type %%s is not in the vocabulary', i.type) END
      FROM %1$I.items i
      WHERE NOT EXISTS (SELECT 1 FROM %1$I.vocabulary v WHERE v.kind = 'type' AND v.word = i.type)
      UNION ALL
      SELECT 'unknown_state', i.path, i.id,
             CASE WHEN i.state IS NULL THEN 'no state'
                  ELSE pg_catalog.format('state %%s is not in the vocabulary', i.state) END
      FROM %1$I.items i
      WHERE NOT EXISTS (SELECT 1 FROM %1$I.vocabulary v WHERE v.kind = 'state' AND v.word = i.state)
      UNION ALL
      SELECT 'file_error', f.path, NULL, f.error
      FROM %1$I.files f WHERE f.error IS NOT NULL$v$,
     'One row per problem of the backlog''s files: duplicate_id, null_id, id_mismatch, unresolved_link, ambiguous_link, parent_cycle, unchecked_done, state_mismatch, unknown_type, unknown_state, file_error.',
     '{"kind": "duplicate_id: another item or decision of the product has this id (a row per file); null_id: the frontmatter id is null or missing; id_mismatch: the id differs from the one its file name starts with (up to the first _); unresolved_link: a link''s target names nothing in its product (a wikilink: no file either); ambiguous_link: it names several files; parent_cycle: its chain of parents comes back to it; unchecked_done: done or dropped with unchecked checklist entries; state_mismatch: the state differs from the worklog''s last State -> X; unknown_type, unknown_state: a type or state (or none) outside the vocabulary; file_error: files.error is set",
       "path": "The file",
       "id": "Its display id (the link''s source for a link)",
       "detail": "What is wrong, in words"}')
  ) AS d(view, def, comment, cols)
  LOOP
    CONTINUE WHEN pg_catalog.to_regclass(pg_catalog.format('%I.%I', n, v.view)) IS NOT NULL;
    EXECUTE pg_catalog.format('CREATE VIEW %I.%I AS', n, v.view) || pg_catalog.format(v.def, n);
    EXECUTE pg_catalog.format('COMMENT ON VIEW %I.%I IS %L', n, v.view, v.comment);
    FOR c IN SELECT * FROM pg_catalog.jsonb_each_text(v.cols::jsonb) LOOP
      EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', n, v.view, c.key, c.value);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER VIEW %I.%I OWNER TO %I', n, v.view, owner::regrole);
  END LOOP;
END
$$;

-- A Markdown page of a backlog: the active, new and done items, grouped by
-- product and type, blocked items and their blockers marked, and the lint
-- summary.  The same snapshot gives the same bytes: no clock is read (the
-- window of new and done items ends on the latest date the snapshot holds,
-- unless until is given, and spans two weeks, unless since is given), and
-- every list is sorted to the byte (COLLATE "C"), so the page can be
-- committed beside the backlog and its diff tells what changed.
CREATE OR REPLACE FUNCTION kabsd_dashboard(name text DEFAULT 'backlog', since date DEFAULT NULL,
  until date DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
  n text := kabsd_dashboard.name;
  out text[];
  first_day date;
  last_day date;
  list integer;
  total bigint;
  product text;
  type text;
  r record;
BEGIN
  PERFORM @extschema@.kabsd_check_attached(n);
  IF pg_catalog.to_regclass(pg_catalog.format('%I.lint', n)) IS NULL THEN
    RAISE EXCEPTION 'backlog "%" has no views', n
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'kabsd_refresh(name) makes them.';
  END IF;
  EXECUTE pg_catalog.format($q$SELECT greatest(
      (SELECT pg_catalog.max(i.created) FROM %1$I.items i),
      (SELECT pg_catalog.max(i.updated) FROM %1$I.items i),
      (SELECT pg_catalog.max(w.at)::date FROM %1$I.worklog w))$q$, n) INTO last_day;
  last_day := coalesce(kabsd_dashboard.until, last_day);
  first_day := coalesce(kabsd_dashboard.since, last_day - 13);
  out := ARRAY[pg_catalog.format('# Backlog %s', n), ''];
  IF last_day IS NULL THEN
    out := out || 'No item has a date: the new and done lists are empty.'::text;
  ELSE
    -- dates as ISO, whatever DateStyle says
    out := out || pg_catalog.format('New and done: from %s to %s.',
                                    pg_catalog.to_char(first_day, 'YYYY-MM-DD'),
                                    pg_catalog.to_char(last_day, 'YYYY-MM-DD'));
  END IF;

  FOR list IN 1 .. 3 LOOP
    EXECUTE pg_catalog.format($q$SELECT pg_catalog.count(*) FROM %1$I.items i
      LEFT JOIN %1$I.active a ON a.path = i.path
      JOIN %1$I.flow f ON f.path = i.path
      WHERE CASE $1 WHEN 1 THEN a.path IS NOT NULL
                    WHEN 2 THEN f.created::date BETWEEN $2 AND $3
                    ELSE EXISTS (SELECT 1 FROM %1$I.vocabulary s WHERE s.kind = 'state'
                                 AND s.word = i.state AND s.class = 'done')
                         AND coalesce(f.done::date, i.updated) BETWEEN $2 AND $3 END$q$, n)
      INTO total USING list, first_day, last_day;
    out := out || ARRAY['', pg_catalog.format('## %s (%s)', (ARRAY['Active', 'New', 'Done'])[list], total)];
    IF total = 0 THEN
      out := out || ARRAY['', 'None.'];
      CONTINUE;
    END IF;
    product := NULL;
    type := NULL;
    FOR r IN EXECUTE pg_catalog.format($q$
      SELECT coalesce(i.product, '(no product)') AS product, coalesce(i.type, '(no type)') AS type,
             coalesce(i.id, i.uid::text, i.path) AS label,
             pg_catalog.regexp_replace(i.title, '\s+', ' ', 'g') AS title,
             pg_catalog.concat_ws(', ', i.state, i.priority, i.owner) AS facts,
             CASE WHEN $1 = 1 THEN a.blocked_by ELSE '{}' END AS blocked_by,
             CASE WHEN $1 = 1 THEN ARRAY(
               SELECT coalesce(x.id, x.uid::text, x.path) FROM %1$I.active x
               WHERE coalesce(a.id, a.uid::text, a.path) = ANY (x.blocked_by)
               ORDER BY coalesce(x.id, x.uid::text, x.path) COLLATE "C") ELSE '{}' END AS blocks
      FROM %1$I.items i
      LEFT JOIN %1$I.active a ON a.path = i.path
      JOIN %1$I.flow f ON f.path = i.path
      LEFT JOIN %1$I.vocabulary t ON t.kind = 'type' AND t.word = i.type
      WHERE CASE $1 WHEN 1 THEN a.path IS NOT NULL
                    WHEN 2 THEN f.created::date BETWEEN $2 AND $3
                    ELSE EXISTS (SELECT 1 FROM %1$I.vocabulary s WHERE s.kind = 'state'
                                 AND s.word = i.state AND s.class = 'done')
                         AND coalesce(f.done::date, i.updated) BETWEEN $2 AND $3 END
      ORDER BY i.product IS NULL, i.product COLLATE "C", t.ordinal IS NULL, t.ordinal,
               i.type IS NULL, i.type COLLATE "C", coalesce(i.id, i.uid::text, i.path) COLLATE "C",
               i.path COLLATE "C"$q$, n)
      USING list, first_day, last_day
    LOOP
      IF product IS DISTINCT FROM r.product THEN
        out := out || ARRAY['', '### ' || r.product];
        product := r.product;
        type := NULL;
      END IF;
      IF type IS DISTINCT FROM r.type THEN
        out := out || ARRAY['', '#### ' || r.type, ''];
        type := r.type;
      END IF;
      out := out || pg_catalog.concat('- **', r.label, '**', ' ' || r.title,
                                      ' (' || nullif(r.facts, '') || ')',
                                      ' **blocked by** ' || nullif(pg_catalog.array_to_string(r.blocked_by, ', '), ''),
                                      ' **blocks** ' || nullif(pg_catalog.array_to_string(r.blocks, ', '), ''));
    END LOOP;
  END LOOP;

  EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.lint', n) INTO total;
  out := out || ARRAY['', pg_catalog.format('## Lint (%s)', total), ''];
  IF total = 0 THEN
    out := out || 'No problems.'::text;
  ELSE
    out := out || ARRAY['| kind | problems |', '| --- | ---: |'];
    FOR r IN EXECUTE pg_catalog.format($q$SELECT l.kind, pg_catalog.count(*) AS problems FROM %I.lint l
                                        GROUP BY l.kind ORDER BY l.kind COLLATE "C"$q$, n) LOOP
      out := out || pg_catalog.format('| %s | %s |', r.kind, r.problems);
    END LOOP;
  END IF;
  RETURN pg_catalog.array_to_string(out, E'\n') || E'\n';
END
$$;

COMMENT ON FUNCTION kabsd_dashboard(text, date, date) IS
  'A Markdown page of a backlog: active, new and done items by product and type, blockers marked, and the lint summary; the same snapshot gives the same bytes';

-- A Mermaid flowchart of an item's subtree (its children, theirs, ...) and
-- of the items that block any of them; nodes are numbered in a fixed order
-- so that the same snapshot gives the same text.
CREATE OR REPLACE FUNCTION kabsd_graph(name text, id text)
RETURNS text
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
  n text := kabsd_graph.name;
  paths text[];
  lines text[];
BEGIN
  PERFORM @extschema@.kabsd_check_attached(n);
  IF pg_catalog.to_regclass(pg_catalog.format('%I.tree', n)) IS NULL THEN
    RAISE EXCEPTION 'backlog "%" has no views', n
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'kabsd_refresh(name) makes them.';
  END IF;
  EXECUTE pg_catalog.format($q$SELECT pg_catalog.array_agg(i.path ORDER BY i.path COLLATE "C")
    FROM %I.items i WHERE i.id = $1 OR (i.id IS DISTINCT FROM $1 AND i.uid::text = pg_catalog.lower($1))$q$, n)
    INTO paths USING kabsd_graph.id;
  IF paths IS NULL THEN
    RAISE EXCEPTION 'backlog "%" has no item "%"', n, kabsd_graph.id
      USING ERRCODE = 'undefined_object',
            HINT = 'Name the item by its id or its uid.';
  ELSIF pg_catalog.cardinality(paths) > 1 THEN
    RAISE EXCEPTION 'id "%" names % items of backlog "%"', kabsd_graph.id, pg_catalog.cardinality(paths), n
      USING ERRCODE = 'ambiguous_parameter',
            DETAIL = 'The items are ' || pg_catalog.array_to_string(paths, ', ') || '.',
            HINT = 'Name the item by its uid.';
  END IF;

  EXECUTE pg_catalog.format($q$
    WITH RECURSIVE sub AS (
      SELECT t.path, t.uid, 0 AS depth, ARRAY[t.path] AS seen FROM %1$I.tree t WHERE t.path = $1
      UNION ALL
      SELECT c.path, c.uid, s.depth + 1, s.seen || c.path
      FROM sub s JOIN %1$I.tree c ON c.parent_uid = s.uid
      WHERE c.path <> ALL (s.seen)),
    s AS (SELECT DISTINCT ON (sub.path) sub.path, sub.uid, sub.depth FROM sub ORDER BY sub.path, sub.depth),
    blk AS (
      SELECT b.path AS blocker, s.path AS blocked
      FROM s JOIN %1$I.links l ON l.path = s.path AND l.type = 'blocked_by'
      JOIN %1$I.items b ON b.uid = l.target_uid
      UNION
      SELECT l.path, s.path FROM s JOIN %1$I.links l ON l.type = 'blocks' AND l.target_uid = s.uid),
    nodes AS (
      SELECT i.path, i.uid, i.state, i.title, coalesce(i.id, i.uid::text, i.path) AS label,
             true AS inside, s.depth
      FROM s JOIN %1$I.items i ON i.path = s.path
      UNION ALL
      SELECT i.path, i.uid, i.state, i.title, coalesce(i.id, i.uid::text, i.path), false, NULL
      FROM %1$I.items i
      WHERE i.path IN (SELECT blk.blocker FROM blk) AND i.path NOT IN (SELECT s.path FROM s)),
    num AS (
      SELECT o.*, pg_catalog.row_number() OVER (ORDER BY NOT o.inside, o.depth, o.label COLLATE "C",
                                                 o.path COLLATE "C") AS k,
             v.class
      FROM nodes o LEFT JOIN %1$I.vocabulary v ON v.kind = 'state' AND v.word = o.state)
    SELECT pg_catalog.array_agg(x.line ORDER BY x.part, x.k1, x.k2) FROM (
      SELECT 1 AS part, 0::bigint AS k1, 0::bigint AS k2, 'flowchart TD' AS line
      UNION ALL
      SELECT 2, m.k, 0, pg_catalog.format('    n%%s["%%s"]', m.k,
        pg_catalog.array_to_string(ARRAY(
          SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                   pg_catalog.regexp_replace(t, '\s+', ' ', 'g'), '"', '#quot;'), '<', '#lt;'), '>', '#gt;')
          FROM pg_catalog.unnest(ARRAY[m.label || coalesce(' (' || m.state || ')', ''), m.title])
               WITH ORDINALITY AS u(t, o)
          WHERE t IS NOT NULL ORDER BY o), '<br/>'))
      FROM num m
      UNION ALL
      SELECT 3, c.k, p.k, pg_catalog.format('    n%%s --> n%%s', p.k, c.k)
      FROM num c JOIN %1$I.tree t ON t.path = c.path
      JOIN num p ON p.uid = t.parent_uid AND p.inside
      WHERE c.inside AND c.depth > 0
      UNION ALL
      SELECT 4, d.k, b.k, pg_catalog.format('    n%%s -. blocks .-> n%%s', b.k, d.k)
      FROM blk JOIN num b ON b.path = blk.blocker JOIN num d ON d.path = blk.blocked
      UNION ALL
      SELECT 5, u.o, 0, u.l FROM pg_catalog.unnest(ARRAY[
        '    classDef done fill:#e8f5e9,stroke:#2e7d32',
        '    classDef dropped fill:#eeeeee,stroke:#9e9e9e,color:#616161',
        '    classDef outside stroke-dasharray:4 3']) WITH ORDINALITY AS u(l, o)
      UNION ALL
      SELECT 6, g.o, 0, pg_catalog.format('    class %%s %%s',
        pg_catalog.string_agg('n' || m.k, ',' ORDER BY m.k), g.c)
      FROM (VALUES (1, 'done'), (2, 'dropped'), (3, 'outside')) AS g(o, c)
      JOIN num m ON (g.c = 'outside' AND NOT m.inside) OR m.class = g.c
      GROUP BY g.o, g.c) x$q$, n)
    INTO lines USING paths[1];
  RETURN pg_catalog.array_to_string(lines, E'\n') || E'\n';
END
$$;

COMMENT ON FUNCTION kabsd_graph(text, text) IS
  'A Mermaid flowchart of an item''s subtree and of the items that block them, for a README, an issue or a note';
