--
-- explain_backlog(query, with_analyze): the query's plan, without costs or
-- timings, with the backlog root the plan names shown as $ROOT.  A suite
-- that includes this drops it at its end.
--
CREATE OR REPLACE FUNCTION explain_backlog(query text, with_analyze boolean DEFAULT true)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  ln text;
BEGIN
  FOR ln IN EXECUTE format('EXPLAIN (ANALYZE %s, COSTS OFF, TIMING OFF, SUMMARY OFF) %s', CASE WHEN with_analyze THEN 'on' ELSE 'off' END, query)
  LOOP
    RETURN NEXT regexp_replace(ln, 'Backlog Root: .*', 'Backlog Root: $ROOT');
  END LOOP;
END
$$;
