#!/usr/bin/env bash
# Runs the pgTAP suite with pg_prove against the running test cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
dropdb --if-exists kabsd_tap 2>/dev/null
createdb kabsd_tap
psql -X -q -d kabsd_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION kabsd_fdw'
pg_prove -d kabsd_tap -S fixtures="$PWD/test/fixtures/backlog" test/pgtap/*.sql
