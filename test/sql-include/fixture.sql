--
-- The fixture backlog, read in place: a server "fixture" on it and its
-- seven tables imported into the schema "live", after a quiet cleanup (a
-- rerun starts clean, and the output names no path).  A suite includes
-- this at its top, with abs_srcdir set, and ends with
--   DROP SERVER fixture CASCADE;
--   DROP SCHEMA live;
--
\set fixtures :abs_srcdir '/test/fixtures/backlog'
SET client_min_messages = warning;
DROP SERVER IF EXISTS fixture CASCADE;
DROP SCHEMA IF EXISTS live CASCADE;
RESET client_min_messages;
CREATE SERVER fixture FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root :'fixtures');
CREATE SCHEMA live;
IMPORT FOREIGN SCHEMA kabsd FROM SERVER fixture INTO live;
