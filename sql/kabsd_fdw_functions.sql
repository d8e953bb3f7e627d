--------------------------------------------------------------------------
-- kabsd_fdw's functions.  Every definition here replaces its earlier
-- version, so the install script and each update script end with this file
-- (the Makefile appends it): a function is written once.
--------------------------------------------------------------------------

-- The data model's tables and columns, from the C catalogue.
CREATE OR REPLACE FUNCTION kabsd_table_columns(
  OUT table_name text, OUT ordinal integer, OUT column_name text,
  OUT column_type text, OUT comment text, OUT table_comment text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE;

CREATE OR REPLACE FUNCTION kabsd_fingerprint(server name)
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- The refresh, the snapshot's only writer: one walk, compared with the
-- fingerprint of the last refresh; when something changed, the files whose
-- stamp changed (every file when full) are read, and only rows that differ
-- are written to the seven tables; a table that is empty is filled in
-- batches; many files are shared with parallel workers.  It returns the
-- tables' row counts (and files with an error), from those it was given.
-- paths restricts it to those files and directories (their subtrees).
DROP FUNCTION IF EXISTS kabsd_snapshot_apply(name, regclass[], boolean);
CREATE OR REPLACE FUNCTION kabsd_snapshot_apply(server name, tables regclass[],
  full boolean, known_fingerprint text DEFAULT NULL, known_counts bigint[] DEFAULT NULL,
  paths text[] DEFAULT NULL, OUT status text, OUT counts bigint[], OUT inserted bigint[], OUT deleted bigint[],
  OUT files_read bigint, OUT fingerprint text, OUT parallel_workers integer,
  OUT git_commit text)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C VOLATILE;

-- the refresh writes past every guard: for the roles that may attach
REVOKE EXECUTE ON FUNCTION kabsd_snapshot_apply(name, regclass[], boolean, text, bigint[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kabsd_snapshot_apply(name, regclass[], boolean, text, bigint[], text[]) TO pg_read_server_files;

-- The seven tables in the refresh's order.
CREATE OR REPLACE FUNCTION kabsd_tables()
RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT ARRAY['files', 'items', 'decisions', 'links', 'worklog', 'sections', 'checklist'] $$;

CREATE OR REPLACE FUNCTION kabsd_check_name(name text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]*$' OR length(name) > 40 THEN
    RAISE EXCEPTION 'invalid backlog name "%"', name
      USING ERRCODE = 'invalid_name',
            HINT = 'Use lower-case letters, digits and underscores, at most 40 characters, starting with a letter or underscore.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION kabsd_check_attached(name text)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM kabsd.backlogs k WHERE k.name = kabsd_check_attached.name) THEN
    RAISE EXCEPTION 'backlog "%" is not attached', kabsd_check_attached.name
      USING ERRCODE = 'undefined_object',
            HINT = 'Attach it with kabsd_attach(root, name); kabsd.backlogs lists the attached backlogs.';
  END IF;
END
$$;

-- The snapshot's objects, each created when it is missing: at attach, and
-- at every refresh, so that a dropped table comes back (and a snapshot of
-- 0.1.0, made of materialized views, becomes tables).  Everything belongs
-- to the backlog's owner (its server's), whoever runs the refresh; an
-- object of the snapshot's names that is not the owner's table is refused,
-- never used.  Tables are created without indexes, so that a first fill
-- builds them after the rows (kabsd_snapshot_indexes); a table created
-- while the backlog is published joins the publication empty, and its
-- TRUNCATE tells the subscribers to drop the rows of the one it replaces.
-- Returns the tables created.
CREATE OR REPLACE FUNCTION kabsd_snapshot_create(name text)
RETURNS text[]
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
DECLARE
  n text := kabsd_snapshot_create.name;
  pub text := 'kabsd_' || kabsd_snapshot_create.name;
  owner oid;
  created text[] := '{}';
  grants text[] := '{}';
  published boolean;
  t text;
  g text;
  c record;
  r record;
BEGIN
  SELECT v.srvowner INTO owner FROM pg_catalog.pg_foreign_server v WHERE v.srvname = n;
  IF pg_catalog.to_regnamespace(n) IS NULL THEN
    EXECUTE pg_catalog.format('CREATE SCHEMA %I AUTHORIZATION %I', n, owner::regrole);
    EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', n,
      'Snapshot of backlog ' || n || ': written by kabsd_refresh() only, from the Markdown files');
  ELSIF (SELECT s.nspowner FROM pg_catalog.pg_namespace s WHERE s.nspname = n) <> owner THEN
    RAISE EXCEPTION 'schema "%" is not owned by the owner of backlog "%"', n, n
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'The snapshot of a backlog lives in a schema of the role that attached it.';
  END IF;

  -- an object of the snapshot's names must be the owner's and of its kind;
  -- 0.1.0's materialized views give way to tables, which get their grants
  FOR r IN SELECT c2.relname, c2.relkind, c2.relowner, c2.relacl
           FROM pg_catalog.pg_class c2
           WHERE c2.relnamespace = pg_catalog.to_regnamespace(n)
             AND c2.relname = ANY (@extschema@.kabsd_tables() || ARRAY['refreshes', 'item_tags', 'vocabulary']
                                   || @extschema@.kabsd_snapshot_view_names())
  LOOP
    IF r.relowner <> owner OR r.relkind NOT IN ('r', 'v', 'm')
       OR (r.relkind = 'v') <> (r.relname = ANY (ARRAY['item_tags'] || @extschema@.kabsd_snapshot_view_names())) THEN
      RAISE EXCEPTION '"%.%" is not part of the snapshot of backlog "%"', n, r.relname, n
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Drop it or rename it; kabsd_refresh() makes the snapshot''s tables itself.';
    END IF;
    IF r.relkind = 'm' THEN
      SELECT grants || coalesce(pg_catalog.array_agg(pg_catalog.format('GRANT %s ON %I.%I TO %s',
               a.privilege_type, n, r.relname,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(a.grantee::regrole::text) END)), '{}')
        INTO grants
      FROM pg_catalog.aclexplode(r.relacl) a WHERE a.grantee <> r.relowner;
    END IF;
  END LOOP;
  IF pg_catalog.cardinality(grants) > 0 OR EXISTS (SELECT 1 FROM pg_catalog.pg_class m
      WHERE m.relnamespace = pg_catalog.to_regnamespace(n) AND m.relkind = 'm'
        AND m.relname = ANY (@extschema@.kabsd_tables())) THEN
    -- the views go with the staging tables they read
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', n || '_stage');
    FOR r IN SELECT m.relname FROM pg_catalog.pg_class m
             WHERE m.relnamespace = pg_catalog.to_regnamespace(n) AND m.relkind = 'm'
               AND m.relname = ANY (@extschema@.kabsd_tables()) LOOP
      EXECUTE pg_catalog.format('DROP MATERIALIZED VIEW %I.%I CASCADE', n, r.relname);
    END LOOP;
  END IF;

  -- every other writer is refused: the files are the source of truth.  A
  -- function of the schema, not of the extension, so that a copy without
  -- kabsd_fdw has the same guard
  IF pg_catalog.to_regprocedure(pg_catalog.format('%I.refuse_write()', n)) IS NULL THEN
    EXECUTE pg_catalog.format($f$
      CREATE FUNCTION %I.refuse_write() RETURNS trigger
      LANGUAGE plpgsql AS $b$
      BEGIN
        RAISE EXCEPTION 'cannot change snapshot table "%%.%%"', TG_TABLE_SCHEMA, TG_TABLE_NAME
          USING ERRCODE = 'wrong_object_type',
                DETAIL = 'Backlog tables are read-only: the Markdown files under the backlog root are the source of truth.',
                HINT = 'Edit the Markdown files instead; kabsd_refresh() brings the snapshot up to date.';
      END
      $b$
      $f$, n);
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %I.refuse_write() IS %L', n,
      'Refuses every write to a snapshot table: only kabsd_refresh() writes them, from the files');
    EXECUTE pg_catalog.format('ALTER FUNCTION %I.refuse_write() OWNER TO %I', n, owner::regrole);
  END IF;

  published := EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = pub);
  FOREACH t IN ARRAY @extschema@.kabsd_tables() || 'refreshes'::text LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', n, t)) IS NULL THEN
      IF t = 'refreshes' THEN
        EXECUTE pg_catalog.format($q$CREATE TABLE %I.refreshes (
          id bigint PRIMARY KEY,
          started_at timestamptz NOT NULL,
          duration interval NOT NULL,
          status text NOT NULL,
          files bigint, items bigint, decisions bigint, links bigint, worklog bigint,
          sections bigint, checklist bigint, errors bigint,
          files_read bigint, rows_written bigint,
          error text, git_commit text)$q$, n);
        EXECUTE pg_catalog.format('COMMENT ON TABLE %I.refreshes IS %L', n,
          'Every kabsd_refresh() of backlog ' || n || ', failed ones included (the newest 1000); the last one not failed tells how fresh the snapshot is');
        FOR c IN SELECT * FROM (VALUES
            ('id', 'The refresh''s id on the indexer (its refresh history)'),
            ('started_at', 'When the refresh began'),
            ('duration', 'How long it took'),
            ('status', 'refreshed: the changed files were applied; rebuilt: empty tables were filled from every file; unchanged: no file changed; failed: the old snapshot was kept'),
            ('files', 'Rows of files after the refresh'),
            ('items', 'Rows of items after the refresh'),
            ('decisions', 'Rows of decisions after the refresh'),
            ('links', 'Rows of links after the refresh'),
            ('worklog', 'Rows of worklog after the refresh'),
            ('sections', 'Rows of sections after the refresh'),
            ('checklist', 'Rows of checklist after the refresh'),
            ('errors', 'Files whose files.error is set'),
            ('files_read', 'Files read and parsed: those whose stamp changed, or every file of a rebuild or a full refresh'),
            ('rows_written', 'Rows inserted and deleted in the snapshot tables'),
            ('error', 'Why the refresh failed'),
            ('git_commit', 'The Git commit checked out when the refresh began (NULL outside a Git work tree): which commit the snapshot reflects')) AS d(col, txt) LOOP
          EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.refreshes.%I IS %L', n, c.col, c.txt);
        END LOOP;
      ELSE
        SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s', k.column_name, k.column_type,
                 CASE WHEN k.column_name IN ('path', 'ordinal') THEN ' NOT NULL' ELSE '' END),
                 ', ' ORDER BY k.ordinal) AS defs,
               pg_catalog.min(k.table_comment) AS comment
          INTO c
        FROM @extschema@.kabsd_table_columns() k WHERE k.table_name = t;
        IF t = 'links' THEN
          c.defs := c.defs || ', target_uid uuid';
        END IF;
        EXECUTE pg_catalog.format('CREATE TABLE %I.%I (%s)', n, t, c.defs);
        EXECUTE pg_catalog.format('COMMENT ON TABLE %I.%I IS %L', n, t,
                                  c.comment || ' Snapshot: written by kabsd_refresh() only.');
        FOR c IN SELECT * FROM @extschema@.kabsd_table_columns() k WHERE k.table_name = t LOOP
          EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', n, t, c.column_name, c.comment);
          -- wide values: lz4 when the server has it
          IF c.column_name IN ('body', 'frontmatter', 'content', 'message') THEN
            BEGIN
              EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I SET COMPRESSION lz4',
                                        n, t, c.column_name);
            EXCEPTION WHEN feature_not_supported THEN
              NULL;  -- a server built without lz4 keeps pglz
            END;
          END IF;
        END LOOP;
        IF t = 'links' THEN
          EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.links.target_uid IS %L', n,
            'uid of the one item or decision of the same product that the target names; NULL when none or several match.');
        END IF;
        created := created || t;
      END IF;
      EXECUTE pg_catalog.format('ALTER TABLE %I.%I OWNER TO %I', n, t, owner::regrole);
      IF published THEN
        EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLE %I.%I', pub, n, t);
        EXECUTE pg_catalog.format('TRUNCATE %I.%I', n, t);
      END IF;
    END IF;
    IF t <> 'refreshes' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
        WHERE g.tgrelid = pg_catalog.format('%I.%I', n, t)::regclass AND g.tgname = 'refuse_write') THEN
      EXECUTE pg_catalog.format('CREATE TRIGGER refuse_write BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I.%I
                                 FOR EACH STATEMENT EXECUTE FUNCTION %I.refuse_write()', n, t, n);
    END IF;
  END LOOP;
  FOREACH g IN ARRAY grants LOOP
    EXECUTE g;
  END LOOP;

  -- for BI tools that cannot read arrays
  IF pg_catalog.to_regclass(pg_catalog.format('%I.item_tags', n)) IS NULL THEN
    EXECUTE pg_catalog.format($q$CREATE VIEW %1$I.item_tags AS
      SELECT i.uid, i.id, t.tag, i.path FROM %1$I.items i, pg_catalog.unnest(i.tags) AS t(tag)$q$, n);
    EXECUTE pg_catalog.format('COMMENT ON VIEW %I.item_tags IS %L', n,
      'One row per tag of an item (uid, tag), for tools that cannot read arrays.');
    EXECUTE pg_catalog.format('ALTER VIEW %I.item_tags OWNER TO %I', n, owner::regrole);
  END IF;
  -- the vocabulary and the views of active work, tree, lint, flow
  -- (sql/kabsd_fdw_views.sql)
  PERFORM @extschema@.kabsd_snapshot_views(n, owner);
  RETURN created;
END
$$;

-- Primary keys (the replica identity) and indexes of the snapshot tables,
-- each built when missing: after a first fill, in bulk.
CREATE OR REPLACE FUNCTION kabsd_snapshot_indexes(name text)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
DECLARE
  n text := kabsd_snapshot_indexes.name;
  t text;
BEGIN
  FOREACH t IN ARRAY @extschema@.kabsd_tables() LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                   WHERE k.conrelid = pg_catalog.format('%I.%I', n, t)::regclass AND k.contype = 'p') THEN
      EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD PRIMARY KEY (%s)', n, t,
        CASE WHEN t IN ('files', 'items', 'decisions') THEN 'path' ELSE 'path, ordinal' END);
    END IF;
  END LOOP;
  -- a refresh of some paths looks them up, and those below them: in
  -- bytes' order a directory's paths lie side by side
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS files_path_bytes_idx ON %I.files (path COLLATE "C")', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS items_uid_idx ON %I.items (uid)', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS items_id_idx ON %I.items (id)', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS items_state_idx ON %I.items (state)', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS items_parent_idx ON %I.items (parent)', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS items_product_idx ON %I.items (product)', n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS decisions_id_idx ON %I.decisions (id)', n);
  -- a wikilink names an id or a file: a refresh of a few files looks its
  -- target up by file name (the last path component without ".md"; the
  -- refresh recognizes this expression, src/refresh_targets.c)
  EXECUTE pg_catalog.format($q$CREATE INDEX IF NOT EXISTS items_file_name_idx ON %I.items
    (pg_catalog.regexp_replace(path, '^.*/|\.md$', '', 'g'))$q$, n);
  EXECUTE pg_catalog.format($q$CREATE INDEX IF NOT EXISTS decisions_file_name_idx ON %I.decisions
    (pg_catalog.regexp_replace(path, '^.*/|\.md$', '', 'g'))$q$, n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS links_target_uid_idx ON %I.links (target_uid)', n);
  -- and, when an item or decision comes or goes, finds the links that may
  -- name it (by the file name in target_id, which finds plain ids too); a
  -- hash index, since a wikilink's target is any length of body text
  EXECUTE pg_catalog.format($q$CREATE INDEX IF NOT EXISTS links_target_name_idx ON %I.links
    USING hash (pg_catalog.regexp_replace(target_id, '^.*/|\.md$', '', 'g'))$q$, n);
  EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS worklog_item_uid_idx ON %I.worklog (item_uid)', n);
  EXECUTE pg_catalog.format($q$CREATE INDEX IF NOT EXISTS sections_fts_idx ON %I.sections USING gin
    (pg_catalog.to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || coalesce(content, '')))$q$, n);
END
$$;

-- One refresh, as kabsd_refresh() records it: in kabsd.refresh_history and
-- in the backlog's own refreshes table (which a copy receives); both keep
-- the newest 1000.
-- A failed refresh, recorded by a background worker in a transaction of its
-- own: the ERROR that follows rolls back everything but this.
CREATE OR REPLACE FUNCTION kabsd_record_failure(name text, started_at timestamptz,
  duration interval, error text, sqlstate text)
RETURNS boolean
AS 'MODULE_PATHNAME'
LANGUAGE C VOLATILE;

REVOKE EXECUTE ON FUNCTION kabsd_record_failure(text, timestamptz, interval, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kabsd_record_failure(text, timestamptz, interval, text, text) TO pg_read_server_files;

-- (a failed one is kabsd_record_failure()'s)
DROP FUNCTION IF EXISTS kabsd_record(kabsd.refresh_result, integer, bigint, bigint, integer, text);
CREATE FUNCTION kabsd_record(res kabsd.refresh_result, views_refreshed integer,
  files_read bigint, rows_written bigint, workers integer, git_commit text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  hid bigint;
BEGIN
  INSERT INTO kabsd.refresh_history (name, started_at, duration, status, files,
    items, decisions, links, worklog, sections, checklist, errors, views_refreshed,
    files_read, rows_written, parallel_workers, error, git_commit)
  VALUES (res.name, res.started_at, res.duration, res.status, res.files, res.items,
    res.decisions, res.links, res.worklog, res.sections, res.checklist, res.errors,
    views_refreshed, files_read, rows_written, workers, res.error, git_commit)
  RETURNING id INTO hid;
  DELETE FROM kabsd.refresh_history h
  WHERE h.name = res.name
    AND h.id < (SELECT h2.id FROM kabsd.refresh_history h2 WHERE h2.name = res.name
                ORDER BY h2.id DESC OFFSET 999 LIMIT 1);
  IF pg_catalog.to_regclass(pg_catalog.format('%I.refreshes', res.name)) IS NOT NULL THEN
    EXECUTE pg_catalog.format($q$INSERT INTO %I.refreshes (id, started_at, duration, status,
      files, items, decisions, links, worklog, sections, checklist, errors, files_read,
      rows_written, error, git_commit)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)$q$,
      res.name)
    USING hid, res.started_at, res.duration, res.status, res.files, res.items, res.decisions,
      res.links, res.worklog, res.sections, res.checklist, res.errors, files_read, rows_written,
      res.error, git_commit;
    EXECUTE pg_catalog.format($q$DELETE FROM %1$I.refreshes
      WHERE id < (SELECT id FROM %1$I.refreshes ORDER BY id DESC OFFSET 999 LIMIT 1)$q$, res.name);
  END IF;
END
$$;

-- Writing the snapshot is for its owner: the role that attached it, which
-- owns its server.  Refreshing, and having the watcher refresh, check it.
CREATE OR REPLACE FUNCTION kabsd_check_refresh_privilege(name text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  owner oid;
BEGIN
  SELECT v.srvowner INTO owner FROM pg_catalog.pg_foreign_server v
  WHERE v.srvname = kabsd_check_refresh_privilege.name;
  IF owner IS NULL OR NOT pg_catalog.pg_has_role(owner, 'USAGE') THEN
    RAISE EXCEPTION 'permission denied to refresh backlog "%"', kabsd_check_refresh_privilege.name
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Refreshing writes the snapshot tables, which only their owner may do.',
            HINT = 'Run kabsd_refresh() and kabsd_watch() as the role that attached the backlog, or schedule them as that role.';
  END IF;
END
$$;

-- 0.1.0's kabsd_refresh had no paths
DROP FUNCTION IF EXISTS kabsd_refresh(text, boolean);
CREATE OR REPLACE FUNCTION kabsd_refresh(name text DEFAULT NULL, full boolean DEFAULT false,
  paths text[] DEFAULT NULL)
RETURNS SETOF kabsd.refresh_result
LANGUAGE plpgsql
AS $$
DECLARE
  res kabsd.refresh_result;
  b record;
  r record;
  t0 timestamptz;
  known bigint[];
  created text[];
  refreshed integer;
  written bigint;
  msg text;
  state text;
  detail text;
  failed text[] := '{}';
  recorded boolean;
  first_error text;
  first_state text;
BEGIN
  IF kabsd_refresh.name IS NOT NULL THEN
    PERFORM @extschema@.kabsd_check_attached(kabsd_refresh.name);
  ELSIF kabsd_refresh.paths IS NOT NULL THEN
    RAISE EXCEPTION 'paths to refresh need the name of their backlog'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Paths are relative to one backlog''s root: call kabsd_refresh(name, paths => ...).';
  END IF;

  FOR b IN SELECT * FROM kabsd.backlogs k
           WHERE kabsd_refresh.name IS NULL OR k.name = kabsd_refresh.name
           ORDER BY k.name
  LOOP
    PERFORM @extschema@.kabsd_check_refresh_privilege(b.name);
    -- one refresh of a backlog at a time: a second one waits here
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('kabsd_refresh:' || b.name, 0));
    t0 := pg_catalog.clock_timestamp();
    res := ROW(b.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, t0, NULL, NULL, NULL);
    BEGIN
      created := @extschema@.kabsd_snapshot_create(b.name);
      -- read again under the lock: a refresh that ran meanwhile changed it
      SELECT k.fingerprint INTO b.fingerprint FROM kabsd.backlogs k WHERE k.name = b.name;
      -- the counts of the last refresh that succeeded
      SELECT ARRAY[h.files, h.items, h.decisions, h.links, h.worklog, h.sections,
                   h.checklist, h.errors] INTO known
      FROM kabsd.refresh_history h
      WHERE h.name = b.name AND h.status <> 'failed'
      ORDER BY h.id DESC LIMIT 1;

      SELECT * INTO r FROM @extschema@.kabsd_snapshot_apply(b.name::name,
        ARRAY(SELECT pg_catalog.format('%I.%I', b.name, x)::regclass
              FROM pg_catalog.unnest(@extschema@.kabsd_tables()) WITH ORDINALITY AS u(x, o)
              ORDER BY o),
        kabsd_refresh.full, b.fingerprint, known, kabsd_refresh.paths);
      -- a table made now gets its indexes after its rows
      IF pg_catalog.cardinality(created) > 0 THEN
        PERFORM @extschema@.kabsd_snapshot_indexes(b.name);
      END IF;
      IF r.status <> 'unchanged' THEN
        UPDATE kabsd.backlogs k SET fingerprint = r.fingerprint, refreshed_at = t0
        WHERE k.name = b.name;
      END IF;
      -- the files may be unchanged on another commit: the newest one counts
      UPDATE kabsd.backlogs k SET git_commit = r.git_commit
      WHERE k.name = b.name AND k.git_commit IS DISTINCT FROM r.git_commit;
      SELECT count(*) FILTER (WHERE i + d > 0), coalesce(sum(i + d), 0)
        INTO refreshed, written
      FROM ROWS FROM (pg_catalog.unnest(r.inserted), pg_catalog.unnest(r.deleted)) AS u(i, d);
      res.status := r.status;
      res.files := r.counts[1]; res.items := r.counts[2]; res.decisions := r.counts[3];
      res.links := r.counts[4]; res.worklog := r.counts[5]; res.sections := r.counts[6];
      res.checklist := r.counts[7]; res.errors := r.counts[8];
      res.duration := pg_catalog.clock_timestamp() - t0;
      PERFORM @extschema@.kabsd_record(res, refreshed, r.files_read, written,
                                       r.parallel_workers, r.git_commit);
    EXCEPTION WHEN OTHERS THEN
      -- the subtransaction rolled back: the old snapshot stands.  The
      -- failure is recorded in a transaction of its own, since the ERROR
      -- raised below rolls back the caller's.
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE,
                              detail = PG_EXCEPTION_DETAIL;
      recorded := @extschema@.kabsd_record_failure(b.name, t0, pg_catalog.clock_timestamp() - t0,
                                                   msg, state);
      IF kabsd_refresh.name IS NOT NULL THEN
        RAISE EXCEPTION 'could not refresh backlog "%": %', b.name, msg
          USING ERRCODE = state,
                DETAIL = pg_catalog.concat_ws(' ', 'The previous snapshot is kept.', nullif(detail, '')),
                HINT = CASE WHEN recorded
                            THEN 'kabsd.refresh_history records the failure; the next kabsd_refresh() tries again.'
                            ELSE 'The next kabsd_refresh() tries again.' END;
      END IF;
      -- every backlog: the others are tried, then the first failure is raised
      failed := failed || b.name::text;
      first_error := coalesce(first_error, msg);
      first_state := coalesce(first_state, state);
      CONTINUE;
    END;
    PERFORM pg_catalog.pg_notify('kabsd_refresh', pg_catalog.json_build_object(
      'name', b.name, 'status', res.status, 'files', res.files, 'errors', res.errors,
      'error', res.error)::text);
    RETURN NEXT res;
  END LOOP;
  IF pg_catalog.cardinality(failed) > 0 THEN
    RAISE EXCEPTION 'could not refresh backlog "%": %', failed[1], first_error
      USING ERRCODE = first_state,
            DETAIL = pg_catalog.format('%s of the attached backlogs failed (%s); this call changes no snapshot.',
                                       pg_catalog.cardinality(failed), pg_catalog.array_to_string(failed, ', ')),
            HINT = 'kabsd.refresh_history records each failure; refresh each backlog on its own (kabsd_refresh(name)) so that one failure does not hold back the others.';
  END IF;
END
$$;

COMMENT ON FUNCTION kabsd_refresh(text, boolean, text[]) IS
  'Brings the snapshot of one or every attached backlog up to date with its files; full reads every file, not only those whose stamp changed; paths (relative to the root) limits it to those files and directories; a row per backlog';

DROP FUNCTION IF EXISTS kabsd_attach(text, text);
CREATE FUNCTION kabsd_attach(root text, name text DEFAULT 'backlog', watch boolean DEFAULT false)
RETURNS SETOF kabsd.refresh_result
LANGUAGE plpgsql
AS $$
DECLARE
  n text := kabsd_attach.name;
  live text := kabsd_attach.name || '_live';
BEGIN
  PERFORM @extschema@.kabsd_check_name(n);
  IF EXISTS (SELECT 1 FROM kabsd.backlogs k WHERE k.name = n) THEN
    RAISE EXCEPTION 'backlog "%" is already attached', n
      USING ERRCODE = 'duplicate_object',
            HINT = 'Detach it first with kabsd_detach(name), or attach under another name.';
  END IF;

  -- the server's validator checks the caller's right to read root
  EXECUTE pg_catalog.format('CREATE SERVER %I FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root %L)', n, root);
  EXECUTE pg_catalog.format('COMMENT ON SERVER %I IS %L', n, 'Backlog ' || root);
  EXECUTE pg_catalog.format('CREATE SCHEMA %I', live);
  EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', live, 'Live tables over the files of backlog ' || n || ': always current');
  EXECUTE pg_catalog.format('IMPORT FOREIGN SCHEMA kabsd FROM SERVER %I INTO %I', n, live);
  -- a schema of that name that exists already is someone else's: refused
  EXECUTE pg_catalog.format('CREATE SCHEMA %I', n);
  EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', n,
    'Snapshot of backlog ' || n || ': written by kabsd_refresh() only, from the Markdown files');
  INSERT INTO kabsd.backlogs (name, root) VALUES (n, root);
  -- the snapshot's tables are made, filled and indexed by the first refresh
  RETURN QUERY SELECT * FROM @extschema@.kabsd_refresh(n);
  -- and from then on the watcher follows the files (kabsd_fdw_watch.sql)
  IF kabsd_attach.watch THEN
    PERFORM @extschema@.kabsd_watch(n);
  END IF;
END
$$;

COMMENT ON FUNCTION kabsd_attach(text, text, boolean) IS
  'Attaches a backlog directory: a server, live tables, a snapshot of tables with indexes, and a first refresh; watch => true hands it to the watcher (kabsd_watch)';

CREATE OR REPLACE FUNCTION kabsd_detach(name text)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_detach.name);
  EXECUTE pg_catalog.format('DROP PUBLICATION IF EXISTS %I', 'kabsd_' || kabsd_detach.name);
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name);
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name || '_stage');
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name || '_live');
  EXECUTE pg_catalog.format('DROP SERVER IF EXISTS %I CASCADE', kabsd_detach.name);
  DELETE FROM kabsd.file_stamps s WHERE s.backlog = kabsd_detach.name;
  DELETE FROM kabsd.backlogs k WHERE k.name = kabsd_detach.name;
END
$$;

COMMENT ON FUNCTION kabsd_detach(text) IS
  'Drops an attached backlog: its publication, server, live tables and snapshot (the files are untouched)';

CREATE OR REPLACE FUNCTION kabsd_status(name text DEFAULT 'backlog')
RETURNS SETOF kabsd.status_result
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_status.name);
  -- the live side reads path, size and mtime only: a walk, nothing parsed;
  -- what the watcher holds, from shared memory, for a watched backlog only
  RETURN QUERY EXECUTE pg_catalog.format($q$
    SELECT c.*,
           CASE WHEN c.watched THEN p.pending END,
           CASE WHEN c.watched THEN p.pending_since END
    FROM (SELECT %1$L::text, (SELECT k.refreshed_at FROM kabsd.backlogs k WHERE k.name = %1$L),
                 count(s.path),
                 count(*) FILTER (WHERE s.path IS NULL),
                 count(*) FILTER (WHERE l.path IS NOT NULL AND s.path IS NOT NULL
                                  AND (l.size <> s.size OR l.mtime <> s.mtime)),
                 count(*) FILTER (WHERE l.path IS NULL),
                 count(*) FILTER (WHERE s.path IS NULL OR l.path IS NULL
                                  OR l.size <> s.size OR l.mtime <> s.mtime) > 0,
                 (SELECT k.git_commit FROM kabsd.backlogs k WHERE k.name = %1$L),
                 (SELECT k.watch FROM kabsd.backlogs k WHERE k.name = %1$L) AS watched
          FROM (SELECT path, size, mtime FROM %2$I.files) l
          FULL JOIN (SELECT path, size, mtime FROM %3$I.files) s ON s.path = l.path) c,
         @extschema@.kabsd_watch_pending(%1$L) p$q$,
    kabsd_status.name, kabsd_status.name || '_live', kabsd_status.name);
END
$$;

COMMENT ON FUNCTION kabsd_status(text) IS
  'How stale a snapshot is: files added, changed (size or mtime) and removed since the last refresh, without parsing; the Git commit the last refresh saw; whether the watcher follows it, and how many changed paths wait for its refresh, since when';

--------------------------------------------------------------------------
-- The cloud cache: a publication of the snapshot, and the script that
-- makes a database without kabsd_fdw ready to subscribe to it
--------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION kabsd_publish(name text DEFAULT 'backlog')
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
  pub text := 'kabsd_' || kabsd_publish.name;
  tables text;
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_publish.name);
  IF pg_catalog.current_setting('wal_level') <> 'logical' THEN
    RAISE EXCEPTION 'cannot publish backlog "%"', kabsd_publish.name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('Logical replication needs wal_level = logical; this server has wal_level = %s.',
                                       pg_catalog.current_setting('wal_level')),
            HINT = 'Set wal_level = logical in postgresql.conf and restart the server.';
  END IF;
  -- the snapshot's tables, its refreshes and the vocabulary of its views
  SELECT pg_catalog.string_agg(pg_catalog.format('%I.%I', kabsd_publish.name, t), ', ' ORDER BY o)
    INTO tables
  FROM pg_catalog.unnest(@extschema@.kabsd_tables() || ARRAY['refreshes', 'vocabulary']) WITH ORDINALITY AS u(t, o);
  EXECUTE pg_catalog.format(CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_publication p WHERE p.pubname = pub)
                                 THEN 'ALTER PUBLICATION %I SET TABLE %s'
                                 ELSE 'CREATE PUBLICATION %I FOR TABLE %s' END, pub, tables);
  EXECUTE pg_catalog.format('COMMENT ON PUBLICATION %I IS %L', pub,
    'The snapshot of backlog ' || kabsd_publish.name || ', its refreshes and its vocabulary; kabsd_subscriber_sql() gives the subscriber''s tables');
  RETURN pub;
END
$$;

COMMENT ON FUNCTION kabsd_publish(text) IS
  'Publishes the snapshot of a backlog and its refresh history as publication kabsd_<name>, for logical replication to any PostgreSQL';

-- The script is made from the catalogue of the snapshot as it is, so the
-- copy has exactly its columns, types, keys, indexes, comments and views.
-- search_path is pg_catalog alone, so that every name comes out qualified.
CREATE OR REPLACE FUNCTION kabsd_subscriber_sql(name text DEFAULT 'backlog')
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog
AS $$
DECLARE
  n text := kabsd_subscriber_sql.name;
  nsp oid;
  out text[];
  rel record;
  x record;
BEGIN
  PERFORM @extschema@.kabsd_check_attached(n);
  nsp := pg_catalog.to_regnamespace(n);
  IF nsp IS NULL OR pg_catalog.to_regclass(pg_catalog.format('%I.refreshes', n)) IS NULL THEN
    RAISE EXCEPTION 'backlog "%" has no snapshot tables', n
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Run kabsd_refresh(name) first.';
  END IF;
  out := ARRAY[
    pg_catalog.format('-- The cloud copy of backlog %s: tables that subscribe to publication %s.', n, 'kabsd_' || n),
    pg_catalog.format('-- Made by kabsd_subscriber_sql() in database %I. Run it in any PostgreSQL 15 or later', pg_catalog.current_database()),
    '-- (no extension needed), then subscribe with the command at the end.',
    'BEGIN;',
    pg_catalog.format('CREATE SCHEMA %I;', n),
    pg_catalog.format('COMMENT ON SCHEMA %I IS %L;', n, pg_catalog.obj_description(nsp, 'pg_namespace'))];
  FOR x IN SELECT p.oid FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = nsp AND p.prokind = 'f' ORDER BY p.proname LOOP
    out := out || (pg_catalog.pg_get_functiondef(x.oid) || ';');
  END LOOP;

  FOR rel IN SELECT c.oid, c.relname
             FROM pg_catalog.unnest(@extschema@.kabsd_tables() || ARRAY['refreshes', 'vocabulary']) WITH ORDINALITY AS u(t, o)
             JOIN pg_catalog.pg_class c ON c.relnamespace = nsp AND c.relname = u.t
             ORDER BY u.o
  LOOP
    out := out || pg_catalog.format(E'CREATE TABLE %I.%I (\n  %s\n);', n, rel.relname,
      (SELECT pg_catalog.string_agg(d, E',\n  ' ORDER BY o1, o2) FROM (
         SELECT 1 AS o1, a.attnum::integer AS o2, pg_catalog.format('%I %s%s', a.attname,
                  pg_catalog.format_type(a.atttypid, a.atttypmod),
                  CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END) AS d
         FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
         UNION ALL
         SELECT 2, 0, pg_catalog.format('CONSTRAINT %I %s', k.conname,
                  pg_catalog.pg_get_constraintdef(k.oid))
         FROM pg_catalog.pg_constraint k WHERE k.conrelid = rel.oid AND k.contype IN ('p', 'u', 'c')) cols));
    out := out || pg_catalog.format('COMMENT ON TABLE %I.%I IS %L;', n, rel.relname,
                                    pg_catalog.obj_description(rel.oid, 'pg_class'));
    FOR x IN SELECT pg_catalog.pg_get_indexdef(i.indexrelid) AS d
             FROM pg_catalog.pg_index i
             WHERE i.indrelid = rel.oid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid)
             ORDER BY 1 LOOP
      out := out || (x.d || ';');
    END LOOP;
    FOR x IN SELECT pg_catalog.pg_get_triggerdef(g.oid) AS d
             FROM pg_catalog.pg_trigger g WHERE g.tgrelid = rel.oid AND NOT g.tgisinternal
             ORDER BY g.tgname LOOP
      out := out || (x.d || ';');
    END LOOP;
  END LOOP;

  -- views after the views they read: by the length of their longest chain
  -- of views read (pg_depend of their rewrite rules), then by name
  FOR rel IN WITH RECURSIVE v AS (
               SELECT c.oid, c.relname FROM pg_catalog.pg_class c
               WHERE c.relnamespace = nsp AND c.relkind = 'v'),
             reads AS (
               SELECT DISTINCT w.ev_class AS view, d.refobjid AS read
               FROM pg_catalog.pg_rewrite w
               JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                 AND d.objid = w.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
               WHERE w.ev_class IN (SELECT v.oid FROM v) AND d.refobjid IN (SELECT v.oid FROM v)
                 AND d.refobjid <> w.ev_class),
             chain AS (
               SELECT v.oid, 0 AS depth FROM v
               UNION ALL
               SELECT r.view, ch.depth + 1 FROM chain ch JOIN reads r ON r.read = ch.oid)
             SELECT v.oid, v.relname FROM v JOIN chain ch ON ch.oid = v.oid
             GROUP BY v.oid, v.relname ORDER BY pg_catalog.max(ch.depth), v.relname LOOP
    out := out || pg_catalog.format(E'CREATE VIEW %I.%I AS\n%s', n, rel.relname,
                                    pg_catalog.pg_get_viewdef(rel.oid, true));
    out := out || pg_catalog.format('COMMENT ON VIEW %I.%I IS %L;', n, rel.relname,
                                    pg_catalog.obj_description(rel.oid, 'pg_class'));
  END LOOP;
  -- the comments of the columns, the tables' and the views' alike
  FOR x IN SELECT c.relname, a.attname, pg_catalog.col_description(c.oid, a.attnum) AS d
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
           WHERE c.relnamespace = nsp AND c.relkind IN ('r', 'v')
             AND a.attnum > 0 AND NOT a.attisdropped
             AND pg_catalog.col_description(c.oid, a.attnum) IS NOT NULL
           ORDER BY c.relname, a.attnum LOOP
    out := out || pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L;', n, x.relname, x.attname, x.d);
  END LOOP;
  out := out || 'COMMIT;'::text;
  out := out || ARRAY[
    '',
    '-- Subscribe, as a role that may create subscriptions, naming a role of the indexer',
    '-- that has REPLICATION and SELECT on these tables:',
    pg_catalog.format('-- CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I;', n,
                      'host=INDEXER port=5432 dbname=''' ||
                        pg_catalog.regexp_replace(pg_catalog.current_database(), '([\\''])', '\\\1', 'g') ||
                        ''' user=ROLE',
                      'kabsd_' || n)];
  RETURN pg_catalog.array_to_string(out, E'\n') || E'\n';
END
$$;

COMMENT ON FUNCTION kabsd_subscriber_sql(text) IS
  'A SQL script that makes, in a database without kabsd_fdw, the tables, indexes, comments and views that subscribe to the publication of a backlog';
