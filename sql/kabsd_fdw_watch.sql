--------------------------------------------------------------------------
-- The watcher (src/watch.c): a background worker, started when kabsd_fdw
-- is in shared_preload_libraries and kabsd_fdw.watch_database names a
-- database, that refreshes the backlogs whose kabsd.backlogs.watch is set
-- as their files change.  Like kabsd_fdw_functions.sql, this file ends the
-- install script and each update script (the Makefile appends it), so
-- every definition here replaces its earlier version.
--------------------------------------------------------------------------

-- What kabsd_watch() needs of the server and of the root: the watcher
-- configured for this database, and the root taking an inotify watch.
CREATE OR REPLACE FUNCTION kabsd_watch_check(root text)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;

-- It probes a path on the server, as the root option does: for the same
-- roles (and checked again in C).
REVOKE EXECUTE ON FUNCTION kabsd_watch_check(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kabsd_watch_check(text) TO pg_read_server_files;

-- The watched set may have changed: the watcher reads it again when the
-- transaction commits.  Any change counts (kabsd_watch, kabsd_unwatch,
-- kabsd_detach, a hand-written UPDATE); a refresh's does not.
CREATE OR REPLACE FUNCTION kabsd_watch_changed()
RETURNS trigger
AS 'MODULE_PATHNAME'
LANGUAGE C;

CREATE OR REPLACE TRIGGER watch_changed
  AFTER INSERT OR DELETE OR UPDATE OF name, root, watch OR TRUNCATE ON kabsd.backlogs
  FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.kabsd_watch_changed();

CREATE OR REPLACE FUNCTION kabsd_watch(name text DEFAULT 'backlog')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_watch.name);
  PERFORM @extschema@.kabsd_check_refresh_privilege(kabsd_watch.name);
  PERFORM @extschema@.kabsd_watch_check(k.root)
  FROM kabsd.backlogs k WHERE k.name = kabsd_watch.name;
  UPDATE kabsd.backlogs k SET watch = true
  WHERE k.name = kabsd_watch.name AND NOT k.watch;
END
$$;

COMMENT ON FUNCTION kabsd_watch(text) IS
  'Has the watcher refresh a backlog as its files change, within about a second; the first refresh walks the whole tree';

CREATE OR REPLACE FUNCTION kabsd_unwatch(name text DEFAULT 'backlog')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM @extschema@.kabsd_check_attached(kabsd_unwatch.name);
  PERFORM @extschema@.kabsd_check_refresh_privilege(kabsd_unwatch.name);
  UPDATE kabsd.backlogs k SET watch = false
  WHERE k.name = kabsd_unwatch.name AND k.watch;
END
$$;

COMMENT ON FUNCTION kabsd_unwatch(text) IS
  'Stops the watcher refreshing a backlog; kabsd_refresh() still does';

-- For kabsd_status(): how many changed paths of a backlog the watcher
-- holds for its next refresh, and since when the oldest waits; NULL when
-- no watcher runs in this database or it does not follow the backlog.
CREATE OR REPLACE FUNCTION kabsd_watch_pending(name text, OUT pending bigint, OUT pending_since timestamptz)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE;
