#!/usr/bin/env bash
# 8 clients (pgbench) query the live and the snapshot tables while
# kabsd_refresh() runs in a loop and files change underneath: no query
# fails, nothing deadlocks, and the snapshot never misses an item that the
# files had before and after (the stable items are always all there).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/system/lib.sh
dir=/tmp/kabsd-load
attach_corpus kabsd_load "$dir" 600 7 lb
stable=$(q -d kabsd_load -c "SELECT count(*) FROM lb.items")
script=$(mktemp)
cat >"$script" <<SQL
SELECT count(*) AS n FROM lb.items \gset
\if :n < $stable
SELECT 'snapshot lost items' AS failure, 1/0;
\endif
SELECT count(*) FROM lb.links WHERE target_uid IS NOT NULL;
SELECT id, state FROM lb.items WHERE state = 'Done' LIMIT 5;
SELECT count(*) FROM lb_live.items WHERE product = 'atlas';
SELECT count(*) FROM lb.worklog w JOIN lb.items i ON i.uid = w.item_uid;
SQL
# refreshes in a loop, and files edited and added underneath
# (a refresh that fails returns status "failed" with a WARNING: both count)
( for i in $(seq 1 25); do
	s=$(q -d kabsd_load -c "SELECT status FROM kabsd_refresh('lb')" 2>&1) || s="error"
	case "$s" in refreshed | unchanged | rebuilt) ;; *) echo "refresh failed: $s" ;; esac
done ) > /tmp/kabsd-load-refresh.log 2>&1 &
refresher=$!
( for i in $(seq 1 40); do
	f=$(find "$dir/products/atlas/items" -name '*.md' ! -name '*.index.md' | sed -n "$((i * 3))p")
	sed -i 's/^state: .*/state: Done/' "$f"
	printf -- '---\nid: NEW-%d\nuid: 019b8f52-0000-7000-8000-%012d\n---\n' "$i" "$i" > "$dir/products/atlas/items/task/0000/NEW-$i.md"
	sleep 0.05
done ) &
editor=$!
pgbench -n -c 8 -j 2 -T 15 -f "$script" kabsd_load > /tmp/kabsd-load-pgbench.log 2>&1 || true
wait $editor
wait $refresher
cat /tmp/kabsd-load-pgbench.log | grep -E 'transactions|failed|latency average|tps' || true
ok "$(grep -c 'refresh failed' /tmp/kabsd-load-refresh.log || true)" 0 "every refresh under load succeeded"
ok "$(grep -Ec 'ERROR|deadlock|aborted' /tmp/kabsd-load-pgbench.log || true)" 0 "no client query failed or deadlocked"
ok_true "grep -Eq 'number of failed transactions: 0' /tmp/kabsd-load-pgbench.log" "pgbench reports no failed transactions"
ok_true "[ \$(grep -Eo 'number of transactions actually processed: [0-9]+' /tmp/kabsd-load-pgbench.log | grep -Eo '[0-9]+$') -gt 0 ]" "clients made progress during refreshes"
q -d kabsd_load -c "SELECT status FROM kabsd_refresh('lb')" >/dev/null
ok "$(q -d kabsd_load -c "SELECT count(*) FROM lb.items")" "$((stable + 40))" "after the last refresh the snapshot has every item of the files"
ok "$(q -d kabsd_load -c "SELECT count(*) FROM kabsd.refresh_history WHERE name = 'lb' AND status = 'failed'")" 0 "no failed refresh in the history"
rm -f "$script"
finish
