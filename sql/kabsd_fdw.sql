/* kabsd_fdw: foreign tables over a Markdown backlog directory */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION kabsd_fdw" to load this file. \quit

CREATE FUNCTION kabsd_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kabsd_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER kabsd_fdw
  HANDLER kabsd_fdw_handler
  VALIDATOR kabsd_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER kabsd_fdw IS
  'Read-only tables over a Markdown backlog directory; the files are the source of truth';

-- Checks that a kabsd_fdw foreign table's columns can be filled: called by
-- the event trigger below, so a bad column fails CREATE FOREIGN TABLE.
CREATE FUNCTION kabsd_check_foreign_table(oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION kabsd_check_foreign_tables()
RETURNS event_trigger
LANGUAGE plpgsql
AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
           WHERE object_type = 'foreign table'
  LOOP
    PERFORM @extschema@.kabsd_check_foreign_table(r.objid);
  END LOOP;
END
$$;

CREATE EVENT TRIGGER kabsd_check_foreign_tables
  ON ddl_command_end
  WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA')
  EXECUTE FUNCTION kabsd_check_foreign_tables();

--------------------------------------------------------------------------
-- The materialized backlog: kabsd_attach(), kabsd_refresh(), kabsd_status()
--
-- For a backlog named N:
--   server N          the kabsd_fdw server on the backlog root
--   schema N_live     the seven foreign tables (always current)
--   schema N_stage    internal: unlogged staging tables, filled by one read
--                     of each file when the snapshot is rebuilt and emptied
--                     again; and the stamp of every file in the snapshot
--   schema N          a materialized view of each table, with indexes;
--                     once populated, refreshed in place: only the files
--                     whose stamp changed are read, only differing rows
--                     are written, readers are never blocked
-- Data flows one way only: files -> foreign tables -> views.
--------------------------------------------------------------------------

CREATE SCHEMA kabsd;
COMMENT ON SCHEMA kabsd IS 'State of kabsd_fdw: attached backlogs and the refresh history';
GRANT USAGE ON SCHEMA kabsd TO PUBLIC;

CREATE TABLE kabsd.backlogs (
  name text PRIMARY KEY,
  root text NOT NULL,
  attached_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  fingerprint text,
  refreshed_at timestamptz
);
COMMENT ON TABLE kabsd.backlogs IS 'Backlogs attached with kabsd_attach()';
COMMENT ON COLUMN kabsd.backlogs.name IS 'Name of the backlog: its server and snapshot schema';
COMMENT ON COLUMN kabsd.backlogs.root IS 'The backlog directory';
COMMENT ON COLUMN kabsd.backlogs.fingerprint IS 'Hash of path, size, times and inode of every file the snapshot was built from';
COMMENT ON COLUMN kabsd.backlogs.refreshed_at IS 'When the snapshot was last brought up to date with the files';

CREATE TABLE kabsd.refresh_history (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  started_at timestamptz NOT NULL,
  duration interval NOT NULL,
  status text NOT NULL CHECK (status IN ('refreshed', 'rebuilt', 'unchanged', 'failed')),
  files bigint,
  items bigint,
  decisions bigint,
  links bigint,
  worklog bigint,
  sections bigint,
  checklist bigint,
  errors bigint,
  views_refreshed integer,
  error text,
  sqlstate text,
  files_read bigint,
  rows_written bigint,
  parallel_workers integer
);
CREATE INDEX ON kabsd.refresh_history (name, id);
COMMENT ON TABLE kabsd.refresh_history IS 'Every kabsd_refresh() of every backlog, failed ones included; the newest 1000 per backlog are kept';
COMMENT ON COLUMN kabsd.refresh_history.status IS 'refreshed: the changed files were applied; rebuilt: every view was rebuilt from the files; unchanged: no file changed, nothing written; failed: the old snapshot was kept';
COMMENT ON COLUMN kabsd.refresh_history.errors IS 'Files whose files.error is set';
COMMENT ON COLUMN kabsd.refresh_history.views_refreshed IS 'Views whose rows changed; the others were left as they were';
COMMENT ON COLUMN kabsd.refresh_history.files_read IS 'Files read and parsed: those whose stamp changed, or every file of a rebuild or a full refresh';
COMMENT ON COLUMN kabsd.refresh_history.rows_written IS 'Rows inserted and deleted in the views';
COMMENT ON COLUMN kabsd.refresh_history.parallel_workers IS 'Parallel workers that read files beside the refreshing backend (max_parallel_maintenance_workers, when kabsd_fdw.min_parallel_refresh_files files or more were read)';
COMMENT ON COLUMN kabsd.refresh_history.error IS 'Why the refresh failed';

GRANT SELECT ON kabsd.backlogs, kabsd.refresh_history TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON kabsd.backlogs TO pg_read_server_files;
GRANT INSERT, DELETE ON kabsd.refresh_history TO pg_read_server_files;
GRANT USAGE ON SEQUENCE kabsd.refresh_history_id_seq TO pg_read_server_files;
SELECT pg_catalog.pg_extension_config_dump('kabsd.backlogs', '');
SELECT pg_catalog.pg_extension_config_dump('kabsd.refresh_history', '');
SELECT pg_catalog.pg_extension_config_dump('kabsd.refresh_history_id_seq', '');

-- What kabsd_refresh() and kabsd_attach() return: a row per backlog.
CREATE TYPE kabsd.refresh_result AS (
  name text, files bigint, items bigint, decisions bigint, links bigint,
  worklog bigint, sections bigint, checklist bigint, errors bigint,
  started_at timestamptz, duration interval, status text, error text);

CREATE TYPE kabsd.status_result AS (
  name text, refreshed_at timestamptz, files bigint, added bigint,
  changed bigint, removed bigint, stale boolean);

-- The data model's tables and columns, from the C catalogue.
CREATE FUNCTION kabsd_table_columns(
  OUT table_name text, OUT ordinal integer, OUT column_name text,
  OUT column_type text, OUT comment text, OUT table_comment text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION kabsd_fingerprint(server name)
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- The rebuild: every file read once into the seven staging tables, and its
-- stamp into the stamps table.
CREATE FUNCTION kabsd_stage_load(server name, stage regclass[], stamps regclass,
  OUT files bigint, OUT items bigint, OUT decisions bigint, OUT links bigint,
  OUT worklog bigint, OUT sections bigint, OUT checklist bigint,
  OUT errors bigint, OUT fingerprint text)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- The refresh in place of a populated snapshot: the files whose stamp
-- changed (every file when full) are read, and only rows that differ are
-- written to the views; many files are shared with parallel workers.
CREATE FUNCTION kabsd_snapshot_apply(server name, views regclass[], stamps regclass,
  full boolean, OUT inserted bigint[], OUT deleted bigint[],
  OUT errors_delta bigint, OUT files_read bigint, OUT fingerprint text,
  OUT parallel_workers integer)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- The seven tables in the loader's order.
CREATE FUNCTION kabsd_tables()
RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT ARRAY['files', 'items', 'decisions', 'links', 'worklog', 'sections', 'checklist'] $$;

CREATE FUNCTION kabsd_check_name(name text)
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

CREATE FUNCTION kabsd_check_attached(name text)
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

CREATE FUNCTION kabsd_refresh(name text DEFAULT NULL, full boolean DEFAULT false)
RETURNS SETOF kabsd.refresh_result
LANGUAGE plpgsql
AS $$
DECLARE
  res kabsd.refresh_result;
  b record;
  r record;
  prev record;
  t text;
  fp text;
  unpopulated text[];
  t0 timestamptz;
  i integer;
  refreshed integer;
  files_read bigint;
  written bigint;
  workers integer;
  counts bigint[];
  n bigint;
  msg text;
  state text;
  detail text;
BEGIN
  IF kabsd_refresh.name IS NOT NULL THEN
    PERFORM @extschema@.kabsd_check_attached(kabsd_refresh.name);
  END IF;

  FOR b IN SELECT * FROM kabsd.backlogs k
           WHERE kabsd_refresh.name IS NULL OR k.name = kabsd_refresh.name
           ORDER BY k.name
  LOOP
    -- writing the snapshot views is for their owner
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                   WHERE c.oid = pg_catalog.to_regclass(pg_catalog.format('%I.files', b.name))
                     AND pg_catalog.pg_has_role(c.relowner, 'USAGE')) THEN
      RAISE EXCEPTION 'permission denied to refresh backlog "%"', b.name
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'Refreshing rewrites the snapshot views, which only their owner may do.',
              HINT = 'Run kabsd_refresh() as the role that attached the backlog, or schedule it as that role.';
    END IF;
    -- one refresh of a backlog at a time: a second one waits here
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('kabsd_refresh:' || b.name, 0));
    t0 := pg_catalog.clock_timestamp();
    res.name := b.name;
    res.started_at := t0;
    res.error := NULL;
    BEGIN
      -- a full refresh reads every file anyway: no fingerprint first
      fp := NULL;
      IF NOT kabsd_refresh.full THEN
        fp := @extschema@.kabsd_fingerprint(b.name::name);
      END IF;
      SELECT pg_catalog.array_agg(c.relname::text) INTO unpopulated
      FROM pg_catalog.pg_class c
      WHERE c.relnamespace = b.name::regnamespace AND c.relkind = 'm' AND NOT c.relispopulated;
      -- read again under the lock: a refresh that ran meanwhile changed it
      SELECT k.fingerprint INTO b.fingerprint FROM kabsd.backlogs k WHERE k.name = b.name;
      -- the counts of the last refresh that succeeded
      SELECT h.files, h.items, h.decisions, h.links, h.worklog, h.sections,
             h.checklist, h.errors INTO prev
      FROM kabsd.refresh_history h
      WHERE h.name = b.name AND h.status <> 'failed'
      ORDER BY h.id DESC LIMIT 1;
      files_read := 0;
      written := 0;
      refreshed := 0;
      workers := 0;
      -- the rows the files view holds: a view restored or refreshed by
      -- other means than kabsd_refresh() shows here
      n := NULL;
      IF unpopulated IS NULL AND NOT kabsd_refresh.full THEN
        EXECUTE pg_catalog.format('SELECT count(*) FROM %I.files', b.name) INTO n;
      END IF;

      IF unpopulated IS NULL AND NOT kabsd_refresh.full AND fp = b.fingerprint
         AND n = pg_catalog.split_part(fp, ':', 2)::bigint AND n = prev.files THEN
        -- no file changed since the snapshot: nothing is parsed or written
        res.files := prev.files; res.items := prev.items; res.decisions := prev.decisions;
        res.links := prev.links; res.worklog := prev.worklog; res.sections := prev.sections;
        res.checklist := prev.checklist; res.errors := prev.errors;
        res.status := 'unchanged';
      ELSIF unpopulated IS NOT NULL THEN
        -- a view that is not populated (the first refresh, or one emptied
        -- with REFRESH MATERIALIZED VIEW ... WITH NO DATA): every view is
        -- rebuilt from one read of each file
        FOREACH t IN ARRAY @extschema@.kabsd_tables() || 'stamps'::text LOOP
          EXECUTE pg_catalog.format('TRUNCATE %I.%I', b.name || '_stage', t);
        END LOOP;
        SELECT * INTO r FROM @extschema@.kabsd_stage_load(b.name::name,
          ARRAY(SELECT pg_catalog.format('%I.%I', b.name || '_stage', x)::regclass
                FROM pg_catalog.unnest(@extschema@.kabsd_tables()) WITH ORDINALITY AS u(x, o)
                ORDER BY o),
          pg_catalog.format('%I.stamps', b.name || '_stage')::regclass);
        FOREACH t IN ARRAY @extschema@.kabsd_tables() LOOP
          EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', b.name, t);
        END LOOP;
        FOREACH t IN ARRAY @extschema@.kabsd_tables() LOOP
          EXECUTE pg_catalog.format('TRUNCATE %I.%I', b.name || '_stage', t);
        END LOOP;
        res.files := r.files; res.items := r.items; res.decisions := r.decisions;
        res.links := r.links; res.worklog := r.worklog; res.sections := r.sections;
        res.checklist := r.checklist; res.errors := r.errors;
        files_read := r.files;
        written := r.files + r.items + r.decisions + r.links + r.worklog + r.sections + r.checklist;
        refreshed := 7;
        fp := r.fingerprint;
        res.status := 'rebuilt';
      ELSE
        -- in place: only files whose stamp changed are read, only rows
        -- that differ are written
        SELECT * INTO r FROM @extschema@.kabsd_snapshot_apply(b.name::name,
          ARRAY(SELECT pg_catalog.format('%I.%I', b.name, x)::regclass
                FROM pg_catalog.unnest(@extschema@.kabsd_tables()) WITH ORDINALITY AS u(x, o)
                ORDER BY o),
          pg_catalog.format('%I.stamps', b.name || '_stage')::regclass,
          kabsd_refresh.full);
        EXECUTE pg_catalog.format('SELECT count(*) FROM %I.files', b.name) INTO n;
        IF prev.files IS NULL OR prev.files + r.inserted[1] - r.deleted[1] <> n THEN
          -- the last counts are gone or do not add up: count again
          counts := '{}';
          FOREACH t IN ARRAY @extschema@.kabsd_tables() LOOP
            EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', b.name, t) INTO n;
            counts := counts || n;
          END LOOP;
          EXECUTE pg_catalog.format('SELECT count(*) FROM %I.files WHERE error IS NOT NULL', b.name) INTO n;
          counts := counts || n;
        ELSE
          counts := ARRAY[prev.files, prev.items, prev.decisions, prev.links, prev.worklog,
                          prev.sections, prev.checklist, prev.errors];
          FOR i IN 1 .. 7 LOOP
            counts[i] := counts[i] + r.inserted[i] - r.deleted[i];
          END LOOP;
          counts[8] := counts[8] + r.errors_delta;
        END IF;
        res.files := counts[1]; res.items := counts[2]; res.decisions := counts[3];
        res.links := counts[4]; res.worklog := counts[5]; res.sections := counts[6];
        res.checklist := counts[7]; res.errors := counts[8];
        FOR i IN 1 .. 7 LOOP
          IF r.inserted[i] + r.deleted[i] > 0 THEN
            refreshed := refreshed + 1;
          END IF;
          written := written + r.inserted[i] + r.deleted[i];
        END LOOP;
        files_read := r.files_read;
        workers := r.parallel_workers;
        fp := r.fingerprint;
        res.status := 'refreshed';
      END IF;
      IF res.status <> 'unchanged' THEN
        UPDATE kabsd.backlogs k SET fingerprint = fp, refreshed_at = t0
        WHERE k.name = b.name;
      END IF;
      res.duration := pg_catalog.clock_timestamp() - t0;
      INSERT INTO kabsd.refresh_history (name, started_at, duration, status, files,
        items, decisions, links, worklog, sections, checklist, errors, views_refreshed,
        files_read, rows_written, parallel_workers)
      VALUES (b.name, t0, res.duration, res.status, res.files, res.items,
        res.decisions, res.links, res.worklog, res.sections, res.checklist, res.errors,
        refreshed, files_read, written, workers);
    EXCEPTION WHEN OTHERS THEN
      -- the subtransaction rolled back: the old snapshot stands
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE,
                              detail = PG_EXCEPTION_DETAIL;
      res.files := NULL; res.items := NULL; res.decisions := NULL; res.links := NULL;
      res.worklog := NULL; res.sections := NULL; res.checklist := NULL; res.errors := NULL;
      res.status := 'failed';
      res.error := msg;
      res.duration := pg_catalog.clock_timestamp() - t0;
      INSERT INTO kabsd.refresh_history (name, started_at, duration, status, error, sqlstate)
      VALUES (b.name, t0, res.duration, res.status, msg, state);
      RAISE WARNING 'could not refresh backlog "%": %', b.name, msg
        USING DETAIL = pg_catalog.concat_ws(' ', 'The previous snapshot is kept.', nullif(detail, '')),
              HINT = 'See kabsd.refresh_history; the next kabsd_refresh() tries again.';
    END;
    DELETE FROM kabsd.refresh_history h
    WHERE h.name = b.name
      AND h.id < (SELECT h2.id FROM kabsd.refresh_history h2 WHERE h2.name = b.name
                  ORDER BY h2.id DESC OFFSET 999 LIMIT 1);
    PERFORM pg_catalog.pg_notify('kabsd_refresh', pg_catalog.json_build_object(
      'name', b.name, 'status', res.status, 'files', res.files, 'errors', res.errors,
      'error', res.error)::text);
    RETURN NEXT res;
  END LOOP;
END
$$;

COMMENT ON FUNCTION kabsd_refresh(text, boolean) IS
  'Brings the snapshot of one or every attached backlog up to date with its files; full reads every file, not only those whose stamp changed; a row per backlog';

CREATE FUNCTION kabsd_attach(root text, name text DEFAULT 'backlog')
RETURNS SETOF kabsd.refresh_result
LANGUAGE plpgsql
AS $$
DECLARE
  n text := kabsd_attach.name;
  live text := kabsd_attach.name || '_live';
  stage text := kabsd_attach.name || '_stage';
  t text;
  cols text;
  c record;
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
  EXECUTE pg_catalog.format('CREATE SCHEMA %I', stage);
  EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', stage, 'Internal: staging tables of kabsd_refresh() for backlog ' || n);
  EXECUTE pg_catalog.format('CREATE SCHEMA %I', n);
  EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', n, 'Snapshot of backlog ' || n || ', rebuilt from the files by kabsd_refresh()');

  -- the stamp (path, size, times, inode, device) of every file in the
  -- snapshot, written with it: logged, like the views
  EXECUTE pg_catalog.format('CREATE TABLE %I.stamps (path text NOT NULL, stamp bigint NOT NULL)', stage);
  EXECUTE pg_catalog.format('COMMENT ON TABLE %I.stamps IS %L', stage,
    'Internal: what each file of the snapshot was when last read; a file whose stamp differs is read again');
  FOREACH t IN ARRAY @extschema@.kabsd_tables() LOOP
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', k.column_name, k.column_type), ', ' ORDER BY k.ordinal) AS defs,
           pg_catalog.string_agg(pg_catalog.format('s.%I', k.column_name), ', ' ORDER BY k.ordinal) AS list,
           pg_catalog.min(k.table_comment) AS comment
      INTO c
    FROM @extschema@.kabsd_table_columns() k WHERE k.table_name = t;
    EXECUTE pg_catalog.format('CREATE UNLOGGED TABLE %I.%I (%s) WITH (autovacuum_enabled = off)',
                              stage, t, c.defs);
    cols := c.list;
    IF t = 'links' THEN
      -- target_uid: the one item or decision of the same product whose id
      -- is the target (for a wikilink, the last path component without .md,
      -- compared with ids and file names); NULL when none or several match
      EXECUTE pg_catalog.format($q$
        CREATE MATERIALIZED VIEW %1$I.links AS
        WITH docs AS (
          SELECT product, id, path, uid FROM %2$I.items
          UNION ALL
          SELECT product, id, path, uid FROM %2$I.decisions
        ),
        targets AS (
          SELECT product, id AS key, path, uid, true AS by_id FROM docs WHERE id IS NOT NULL
          UNION ALL
          SELECT product, pg_catalog.regexp_replace(pg_catalog.regexp_replace(path, '^.*/', ''), '\.md$', ''),
                 path, uid, false
          FROM docs
        ),
        by_id AS (
          SELECT product, key, CASE WHEN count(DISTINCT path) = 1 THEN (array_agg(uid))[1] END AS uid
          FROM targets WHERE by_id GROUP BY product, key
        ),
        by_name AS (
          SELECT product, key, CASE WHEN count(DISTINCT path) = 1 THEN (array_agg(uid))[1] END AS uid
          FROM targets GROUP BY product, key
        )
        SELECT %3$s, coalesce(i.uid, w.uid) AS target_uid
        FROM %2$I.links s
        LEFT JOIN by_id i ON s.type <> 'wikilink' AND i.product = s.product AND i.key = s.target_id
        LEFT JOIN by_name w ON s.type = 'wikilink' AND w.product = s.product
          AND w.key = pg_catalog.regexp_replace(pg_catalog.regexp_replace(s.target_id, '^.*/', ''), '\.md$', '')
        WITH NO DATA$q$, n, stage, cols);
    ELSE
      EXECUTE pg_catalog.format('CREATE MATERIALIZED VIEW %I.%I AS SELECT %s FROM %I.%I s WITH NO DATA',
                                n, t, cols, stage, t);
    END IF;
    IF t IN ('files', 'items', 'decisions') THEN
      EXECUTE pg_catalog.format('CREATE UNIQUE INDEX ON %I.%I (path)', n, t);
    ELSE
      EXECUTE pg_catalog.format('CREATE UNIQUE INDEX ON %I.%I (path, ordinal)', n, t);
    END IF;
    -- comments on the view and every column, from the catalogue
    EXECUTE pg_catalog.format('COMMENT ON MATERIALIZED VIEW %I.%I IS %L', n, t,
                              c.comment || ' Snapshot; refresh with kabsd_refresh().');
    FOR c IN SELECT * FROM @extschema@.kabsd_table_columns() k WHERE k.table_name = t LOOP
      EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.%I.%I IS %L', n, t, c.column_name, c.comment);
    END LOOP;
  END LOOP;
  -- wide values: staging is emptied after each refresh, so it does not
  -- compress them (pglz was a third of the load); the views use lz4 when
  -- the server has it
  FOR c IN SELECT k.table_name, k.column_name FROM @extschema@.kabsd_table_columns() k
           WHERE k.column_name IN ('body', 'frontmatter', 'content', 'message')
  LOOP
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I SET STORAGE EXTERNAL',
                              stage, c.table_name, c.column_name);
    BEGIN
      EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %I.%I ALTER COLUMN %I SET COMPRESSION lz4',
                                n, c.table_name, c.column_name);
    EXCEPTION WHEN feature_not_supported THEN
      NULL;  -- a server built without lz4 keeps pglz
    END;
  END LOOP;
  EXECUTE pg_catalog.format('COMMENT ON COLUMN %I.links.target_uid IS %L', n,
    'uid of the one item or decision of the same product that the target names; NULL when none or several match.');
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.items (uid)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.items (id)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.items (state)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.items (parent)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.items (product)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.decisions (id)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.links (target_uid)', n);
  EXECUTE pg_catalog.format('CREATE INDEX ON %I.worklog (item_uid)', n);
  EXECUTE pg_catalog.format($q$CREATE INDEX ON %I.sections USING gin
    (pg_catalog.to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || coalesce(content, '')))$q$, n);

  -- for BI tools that cannot read arrays
  EXECUTE pg_catalog.format($q$CREATE VIEW %1$I.item_tags AS
    SELECT i.uid, i.id, t.tag, i.path FROM %1$I.items i, pg_catalog.unnest(i.tags) AS t(tag)$q$, n);
  EXECUTE pg_catalog.format('COMMENT ON VIEW %I.item_tags IS %L', n, 'One row per tag of an item (uid, tag), for tools that cannot read arrays.');

  INSERT INTO kabsd.backlogs (name, root) VALUES (n, root);
  RETURN QUERY SELECT * FROM @extschema@.kabsd_refresh(n);
END
$$;

COMMENT ON FUNCTION kabsd_attach(text, text) IS
  'Attaches a backlog directory: a server, live tables, a materialized snapshot with indexes, and a first refresh';

CREATE FUNCTION kabsd_detach(name text)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_detach.name);
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name);
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name || '_stage');
  EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', kabsd_detach.name || '_live');
  EXECUTE pg_catalog.format('DROP SERVER IF EXISTS %I CASCADE', kabsd_detach.name);
  DELETE FROM kabsd.backlogs k WHERE k.name = kabsd_detach.name;
END
$$;

COMMENT ON FUNCTION kabsd_detach(text) IS
  'Drops an attached backlog: its server, live tables and snapshot (the files are untouched)';

CREATE FUNCTION kabsd_status(name text DEFAULT 'backlog')
RETURNS SETOF kabsd.status_result
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_status.name);
  -- the live side reads path, size and mtime only: a walk, nothing parsed
  RETURN QUERY EXECUTE pg_catalog.format($q$
    SELECT %1$L::text, (SELECT k.refreshed_at FROM kabsd.backlogs k WHERE k.name = %1$L),
           count(s.path),
           count(*) FILTER (WHERE s.path IS NULL),
           count(*) FILTER (WHERE l.path IS NOT NULL AND s.path IS NOT NULL
                            AND (l.size <> s.size OR l.mtime <> s.mtime)),
           count(*) FILTER (WHERE l.path IS NULL),
           count(*) FILTER (WHERE s.path IS NULL OR l.path IS NULL
                            OR l.size <> s.size OR l.mtime <> s.mtime) > 0
    FROM (SELECT path, size, mtime FROM %2$I.files) l
    FULL JOIN (SELECT path, size, mtime FROM %3$I.files) s ON s.path = l.path$q$,
    kabsd_status.name, kabsd_status.name || '_live', kabsd_status.name);
END
$$;

COMMENT ON FUNCTION kabsd_status(text) IS
  'How stale a snapshot is: files added, changed (size or mtime) and removed since the last refresh, without parsing';
