--
-- Helpers for the snapshot suites (sql/refresh.sql, sql/incremental.sql
-- and test/t/006_incremental.pl), which drop them at their end:
--   snapshot_sums(backlog)    a checksum of each table of the snapshot
--   snapshot_clear(backlog)   every table emptied, past the guard trigger
--   matches_rebuild(backlog)  the snapshot against a rebuild from the
--                             files; call it in a transaction rolled back
--
CREATE OR REPLACE FUNCTION snapshot_sums(backlog text) RETURNS TABLE (t text, sum text)
LANGUAGE plpgsql AS $$
BEGIN
  FOREACH t IN ARRAY kabsd_tables() LOOP
    EXECUTE format('SELECT md5(string_agg(x::text, ''|'' ORDER BY x.path%s)) FROM %I.%I x',
                   CASE WHEN t IN ('files', 'items', 'decisions') THEN '' ELSE ', x.ordinal' END,
                   backlog, t) INTO sum;
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION snapshot_clear(backlog text) RETURNS void
LANGUAGE plpgsql SET session_replication_role = replica AS $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY kabsd_tables() LOOP
    EXECUTE format('TRUNCATE %I.%I', backlog, t);
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION matches_rebuild(backlog text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  differ text;
BEGIN
  CREATE TEMP TABLE before_rebuild ON COMMIT DROP AS SELECT * FROM snapshot_sums(backlog);
  PERFORM snapshot_clear(backlog);
  IF (SELECT status FROM kabsd_refresh(backlog)) <> 'rebuilt' THEN
    RETURN 'no rebuild';
  END IF;
  SELECT string_agg(b.t, ', ' ORDER BY b.t) INTO differ
  FROM before_rebuild b JOIN snapshot_sums(backlog) n USING (t)
  WHERE b.sum IS DISTINCT FROM n.sum;
  RETURN coalesce('differs from a rebuild: ' || differ, 'same as a rebuild');
END
$$;
