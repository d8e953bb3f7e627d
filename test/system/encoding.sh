#!/usr/bin/env bash
# A database whose encoding cannot hold every UTF-8 file is refused with a
# clear error when a scan starts, never fed text in the wrong encoding.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/system/lib.sh
dropdb --if-exists kabsd_latin1 2>/dev/null
createdb -T template0 -E LATIN1 --locale=C kabsd_latin1
q -d kabsd_latin1 -c 'CREATE EXTENSION kabsd_fdw' \
	-c "CREATE SERVER fx FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$PWD/test/fixtures/backlog')" \
	-c 'CREATE FOREIGN TABLE items (id text) SERVER fx'
out=$(psql -X -q -d kabsd_latin1 -c 'SELECT count(*) FROM items' 2>&1 || true)
ok_true "echo \"\$out\" | grep -q 'kabsd_fdw requires a database with encoding UTF8'" "a LATIN1 database gets a clear error"
ok "$(q -d kabsd_latin1 -c 'SELECT 1')" 1 "and the session goes on"
dropdb kabsd_latin1
finish
