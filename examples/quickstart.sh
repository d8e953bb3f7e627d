#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine (as root): installs the
# dependencies, builds and installs kabsd_fdw, starts a throwaway
# PostgreSQL 15 cluster, attaches the example backlog and queries it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh
make >/dev/null
make install >/dev/null
export KABSD_TEST_BASE=/tmp/kabsd-demo KABSD_TEST_PORT=54330
bash test/cluster.sh start
eval "$(bash test/cluster.sh env)"
root=/tmp/kabsd-demo-backlog
rm -rf "$root" && cp -r examples/backlog "$root" && chmod -R a+rX "$root"
run() { echo; echo "=> $1"; psql -X -d postgres -c "$1"; }
psql -X -q -d postgres -c 'DROP EXTENSION IF EXISTS kabsd_fdw CASCADE' -c 'CREATE EXTENSION kabsd_fdw'
run "SELECT name, files, items, decisions, links, errors, status FROM kabsd_attach('$root')"
run "SELECT id, title, state, owner, created FROM backlog.items ORDER BY id"
run "SELECT source_id, type, target_id, target_uid IS NOT NULL AS resolved FROM backlog.links ORDER BY path, ordinal"
run "SELECT i.id, count(*) FILTER (WHERE c.checked) AS done, count(*) AS total FROM backlog.items i JOIN backlog.checklist c ON c.item_uid = i.uid GROUP BY i.id ORDER BY i.id"
run "SELECT item_id, at, agent, new_state FROM backlog.worklog WHERE new_state IS NOT NULL ORDER BY at"
run "SELECT path, error FROM backlog_live.files WHERE error IS NOT NULL"
sed -i 's/^state: Planned$/state: InProgress/' "$root/products/shop/items/story/0000/SHOP-USR-0002_resume-checkout.md"
run "SELECT name, added, changed, removed, stale FROM kabsd_status()"
run "SELECT name, items, status, duration FROM kabsd_refresh()"
run "SELECT id, state FROM backlog.items WHERE id = 'SHOP-USR-0002'"
cat <<MSG

The example backlog is attached.  Connect with:
  psql -h $PGHOST -p $PGPORT -U postgres postgres
The files are in $root: edit one, then SELECT * FROM kabsd_refresh();
Stop the cluster with: KABSD_TEST_BASE=/tmp/kabsd-demo bash test/cluster.sh stop
MSG
