--
-- The views of a backlog (active, tree, ready_gate, state_changes, flow,
-- throughput, lint), its vocabulary, kabsd_dashboard() and kabsd_graph(),
-- on backlogs read in place (nothing here changes a file):
-- test/fixtures/lint (every lint kind, parent cycles, an id used in two
-- products), test/fixtures/clean (an empty lint) and the example backlog
-- (the dashboard's bytes).  The views of a cloud copy are
-- test/t/001_cloud_cache.pl's.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set lint_root :abs_srcdir '/test/fixtures/lint'
\set clean_root :abs_srcdir '/test/fixtures/clean'
\set example_root :abs_srcdir '/examples/backlog'
-- errors without their CONTEXT lines, which name PL/pgSQL line numbers
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT kabsd_detach(name) FROM kabsd.backlogs WHERE name IN ('lint', 'clean', 'shop');
RESET client_min_messages;

SELECT name, items, errors, status FROM kabsd_attach(:'lint_root', 'lint');
SELECT name, items, errors, status FROM kabsd_attach(:'clean_root', 'clean');
SELECT name, items, errors, status FROM kabsd_attach(:'example_root', 'shop');

-- every view, with a comment on it and on each of its columns, the
-- attaching role's
SELECT c.relname, c.relowner = current_user::regrole AS owned,
       obj_description(c.oid, 'pg_class') IS NOT NULL AS commented,
       count(a.attnum) AS columns, count(col_description(c.oid, a.attnum)) AS commented_columns
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'lint'::regnamespace AND c.relkind = 'v'
GROUP BY c.oid, c.relname ORDER BY 1;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = 'lint.tree'::regclass AND a.attnum > 0 ORDER BY a.attnum;

-- the vocabulary: made with the defaults, a table of the owner's with its
-- comments, and no write guard (its owner edits it)
SELECT kind, word, class, ordinal FROM lint.vocabulary ORDER BY kind, ordinal;
SELECT obj_description('lint.vocabulary'::regclass, 'pg_class') IS NOT NULL AS commented,
       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = 'lint.vocabulary'::regclass AND a.attnum > 0
          AND col_description(a.attrelid, a.attnum) IS NULL) AS uncommented_columns,
       (SELECT count(*) FROM pg_trigger g WHERE g.tgrelid = 'lint.vocabulary'::regclass) AS triggers;

-- active: open and started states, blockers that are neither done nor
-- dropped, from blocked_by links and from other items' blocks links
SELECT id, product, type, state, blocked_by FROM lint.active ORDER BY product, id COLLATE "C", path;

-- tree: parents through target_uid, or written as a uid (N-TSK-2); an id
-- used in two products resolves in each (N-TSK-1 of south under S-EPC-1);
-- the cycles N-CYC-1 <-> N-CYC-2 and N-CYC-4 -> N-CYC-4 are cut
SELECT id, product, depth, root_id, ancestors, cycle, parent_uid IS NOT NULL AS has_parent
FROM lint.tree ORDER BY product, path;
SELECT t.id, p.id AS parent FROM lint.tree t JOIN lint.items p ON p.uid = t.parent_uid
WHERE t.id IN ('N-TSK-2', 'N-TSK-1') ORDER BY t.path;

-- ready_gate: N-EPC-1 has every section; N-FTR-1 lacks Risks and leaves
-- Goal empty (its Approach has a subheading: not empty)
SELECT id, missing, empty, ready FROM lint.ready_gate ORDER BY product, id COLLATE "C", path;

-- state_changes, flow, throughput
SELECT item_id, product, ordinal, at, from_state, to_state FROM lint.state_changes ORDER BY path, ordinal;
SELECT id, product, state, created, started, done, lead_time, cycle_time
FROM lint.flow ORDER BY product, id COLLATE "C", path;
SELECT week, iso_week, product, items, ids FROM lint.throughput ORDER BY week, product;

-- lint: a row per problem; every kind is found
SELECT kind, path, id, detail FROM lint.lint ORDER BY kind, path COLLATE "C", detail COLLATE "C";
SELECT k AS kind, count(l.kind) AS problems
FROM unnest(ARRAY['duplicate_id', 'null_id', 'id_mismatch', 'unresolved_link', 'ambiguous_link',
                  'parent_cycle', 'unchecked_done', 'state_mismatch', 'unknown_type',
                  'unknown_state', 'file_error']) AS k
LEFT JOIN lint.lint l ON l.kind = k GROUP BY k ORDER BY k;
-- the same id in two products is no duplicate
SELECT count(*) AS duplicates_of_n_tsk_1 FROM lint.lint WHERE kind = 'duplicate_id' AND id = 'N-TSK-1';

-- a clean backlog: an empty lint, every view answers
SELECT count(*) AS problems FROM clean.lint;
SELECT id, ready FROM clean.ready_gate ORDER BY id;
SELECT id, depth, root_id FROM clean.tree ORDER BY id;
SELECT id, lead_time, cycle_time FROM clean.flow ORDER BY id;

-- the vocabulary is the owner's to edit, and the views follow it
BEGIN;
INSERT INTO lint.vocabulary VALUES ('state', 'Doing', 'started', 10), ('type', 'Spike', 'known', 7);
SELECT count(*) AS unknown_words FROM lint.lint WHERE kind IN ('unknown_type', 'unknown_state');
SELECT id, state FROM lint.active WHERE id = 'N-SPK-1';
DELETE FROM lint.vocabulary WHERE kind = 'section' AND word IN ('Approach', 'Risks');
SELECT id, missing, empty, ready FROM lint.ready_gate WHERE id = 'N-EPC-1' OR id = 'N-FTR-1' ORDER BY id;
ROLLBACK;
INSERT INTO lint.vocabulary VALUES ('state', 'Parked', 'sleeping', 11);  -- ERROR
-- a refresh leaves it as it is, unless it is empty: then the defaults
UPDATE lint.vocabulary SET ordinal = 0 WHERE kind = 'type' AND word = 'Bug';
SELECT status FROM kabsd_refresh('lint', full => true);
SELECT count(*), sum(ordinal) FROM lint.vocabulary;
DELETE FROM lint.vocabulary;
SELECT status FROM kabsd_refresh('lint');
SELECT count(*), sum(ordinal) FROM lint.vocabulary;

-- kabsd_dashboard: Markdown, the same bytes from the same snapshot
SELECT kabsd_dashboard('shop');
SELECT md5(kabsd_dashboard('shop'));
SELECT kabsd_dashboard('lint');
SELECT kabsd_dashboard('clean', since => '2026-06-02', until => '2026-06-30');
SELECT kabsd_dashboard('nosuch');  -- ERROR

-- kabsd_graph: Mermaid, a subtree and its blockers
SELECT kabsd_graph('shop', 'SHOP-EPC-0001');
SELECT kabsd_graph('lint', 'N-FTR-1');
SELECT kabsd_graph('lint', 'N-CYC-1');
SELECT kabsd_graph('lint', '4E000000-0000-4000-8000-000000000008');  -- by uid
SELECT kabsd_graph('lint', 'N-TSK-6');  -- ERROR
SELECT kabsd_graph('lint', 'nosuch');  -- ERROR

-- the subscriber script makes the vocabulary table (its rows come with the
-- subscription) and each view after the views it reads
SELECT line FROM regexp_split_to_table(kabsd_subscriber_sql('lint'), E'\n') AS line
WHERE line ~ '^CREATE (VIEW|TABLE)|^INSERT';

-- a table dropped with its views: the next refresh makes them all again
SET client_min_messages = warning;
DROP TABLE lint.worklog CASCADE;
RESET client_min_messages;
SELECT string_agg(relname, ', ' ORDER BY relname) AS views FROM pg_class WHERE relnamespace = 'lint'::regnamespace AND relkind = 'v';
SELECT status FROM kabsd_refresh('lint');
SELECT string_agg(relname, ', ' ORDER BY relname) AS views FROM pg_class WHERE relnamespace = 'lint'::regnamespace AND relkind = 'v';
SELECT count(*) AS problems FROM lint.lint;
-- an object of a view's name that is not a view is refused, never read
DROP VIEW lint.lint;
CREATE TABLE lint.lint (kind text);
SELECT status FROM kabsd_refresh('lint');  -- ERROR
DROP TABLE lint.lint;
SELECT status FROM kabsd_refresh('lint');
SELECT count(*) AS problems FROM lint.lint;

SELECT kabsd_detach(name) FROM kabsd.backlogs WHERE name IN ('lint', 'clean', 'shop') ORDER BY name;
