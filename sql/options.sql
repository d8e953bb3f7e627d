--
-- Options and privileges
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixture_sql :abs_srcdir '/test/sql-include/fixture.sql'
\i :fixture_sql

-- unknown options, with the closest valid one as a hint
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (rot '/tmp');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', colour 'red');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', table 'items');  -- ERROR
CREATE FOREIGN TABLE t (id text) SERVER fixture OPTIONS (tabel 'items');  -- ERROR
CREATE FOREIGN TABLE t (id text OPTIONS (kee 'x')) SERVER fixture OPTIONS (table 'items');  -- ERROR
CREATE USER MAPPING FOR CURRENT_USER SERVER fixture OPTIONS (user 'x');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', root '/var');  -- ERROR

-- root is required, absolute, and a directory
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw;  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root 'relative/path');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/no/such/backlog');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/etc/passwd');  -- ERROR

-- values of the other options
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', max_file_size '0');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', max_file_size '12 parsecs');  -- ERROR
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp', max_file_size '512kB');
ALTER SERVER s OPTIONS (SET max_file_size '2GB');
ALTER SERVER s OPTIONS (SET max_file_size '100');
ALTER SERVER s OPTIONS (DROP root);  -- ERROR
DROP SERVER s;
CREATE FOREIGN TABLE t (id text) SERVER fixture OPTIONS (table 'itemz');  -- ERROR
CREATE FOREIGN TABLE t (id text OPTIONS (key '')) SERVER fixture OPTIONS (table 'items');  -- ERROR
CREATE FOREIGN TABLE t (id text OPTIONS (key 'a..b')) SERVER fixture OPTIONS (table 'items');  -- ERROR

-- only superusers and pg_read_server_files may set root (as file_fdw)
DROP ROLE IF EXISTS regress_kabsd_plain;
DROP ROLE IF EXISTS regress_kabsd_reader;
CREATE ROLE regress_kabsd_plain;
CREATE ROLE regress_kabsd_reader IN ROLE pg_read_server_files;
GRANT USAGE ON FOREIGN DATA WRAPPER kabsd_fdw TO regress_kabsd_plain, regress_kabsd_reader;
GRANT CREATE ON SCHEMA public TO regress_kabsd_reader;
SET ROLE regress_kabsd_plain;
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '/tmp');  -- ERROR
RESET ROLE;
SET ROLE regress_kabsd_reader;
CREATE SERVER s FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root :'fixtures');
CREATE FOREIGN TABLE reader_items (id text) SERVER s OPTIONS (table 'items');
SELECT count(*) FROM reader_items;
DROP FOREIGN TABLE reader_items;
DROP SERVER s;
RESET ROLE;

-- a role without access to the tables cannot read them
SET ROLE regress_kabsd_plain;
SELECT count(*) FROM live.items;  -- ERROR
RESET ROLE;
REVOKE USAGE ON FOREIGN DATA WRAPPER kabsd_fdw FROM regress_kabsd_plain, regress_kabsd_reader;
REVOKE CREATE ON SCHEMA public FROM regress_kabsd_reader;
DROP ROLE regress_kabsd_plain;
DROP ROLE regress_kabsd_reader;

-- foreign tables of other wrappers are left alone by the column check
CREATE FOREIGN DATA WRAPPER regress_other;
CREATE SERVER regress_other_server FOREIGN DATA WRAPPER regress_other;
CREATE FOREIGN TABLE other_table (anything point) SERVER regress_other_server;
DROP SERVER regress_other_server CASCADE;
DROP FOREIGN DATA WRAPPER regress_other;

DROP SERVER fixture CASCADE;
DROP SCHEMA live;
