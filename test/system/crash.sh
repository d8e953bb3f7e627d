#!/usr/bin/env bash
# A refresh cancelled by statement_timeout, and a backend killed with
# SIGKILL in the middle of a refresh: afterwards the server is up, the old
# snapshot is complete, and the next refresh succeeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/system/lib.sh
dir=/tmp/kabsd-crash
attach_corpus kabsd_crash "$dir" 6000 3 cr
sums="SELECT md5(string_agg(x::text, '|' ORDER BY x.path)) FROM cr.items x"
before=$(q -d kabsd_crash -c "$sums")
count=$(q -d kabsd_crash -c "SELECT count(*) FROM cr.sections")

# something changed, so the next refresh writes; a full one also reads
# every file, so that it is still running when it is stopped
find "$dir/products/beacon/items" -name '*.md' ! -name '*.index.md' | xargs sed -i 's/^state: .*/state: Review/'

# (1) statement_timeout cancels the refresh: the error is the query's, the
# old snapshot stays
out=$(psql -X -q -d kabsd_crash -c "SET statement_timeout = '100ms'" -c "SELECT status FROM kabsd_refresh('cr', full => true)" 2>&1 || true)
ok_true "echo \"\$out\" | grep -q 'canceling statement due to statement timeout'" "statement_timeout cancels a refresh"
ok "$(q -d kabsd_crash -c "$sums")" "$before" "the old snapshot is intact after the cancel"

# (2) SIGKILL of the backend in the middle of a refresh
psql -X -q -d kabsd_crash -c "SELECT pg_sleep(0)" -c "SELECT status FROM kabsd_refresh('cr', full => true)" > /tmp/kabsd-crash-victim.log 2>&1 &
victim=$!
pid=""
for _ in $(seq 1 100); do
	pid=$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%kabsd_refresh(''cr'', full%' AND pid <> pg_backend_pid() AND state = 'active'" 2>/dev/null || true)
	[ -n "$pid" ] && break
	sleep 0.05
done
ok_true "[ -n '$pid' ]" "the refresh was caught running"
sleep 0.1
kill -9 "$pid" 2>/dev/null || true
wait $victim || true
for _ in $(seq 1 60); do pg_isready -q && q -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
ok "$(q -d postgres -c 'SELECT 1')" 1 "the server is up again after the crash"
ok "$(q -d kabsd_crash -c "$sums")" "$before" "the old snapshot is complete after the crash"
ok "$(q -d kabsd_crash -c "SELECT count(*) FROM cr.sections")" "$count" "every table kept its rows"
ok "$(q -d kabsd_crash -c "SELECT status FROM kabsd_refresh('cr')")" refreshed "the next refresh succeeds"
ok "$(q -d kabsd_crash -c "SELECT count(*) FROM cr.items WHERE state = 'Review' AND product = 'beacon'")" \
	"$(q -d kabsd_crash -c "SELECT count(*) FROM cr_live.items WHERE state = 'Review' AND product = 'beacon'")" \
	"and brings the edits in"
finish
