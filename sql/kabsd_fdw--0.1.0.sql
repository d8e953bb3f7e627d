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
