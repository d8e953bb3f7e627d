#!/usr/bin/env bash
# The kabsd_fdw benchmark: builds a synthetic backlog of N items (default
# 10,000; deterministic), attaches it to a throwaway cluster and reports,
# as medians of several runs, files/s and MB/s for
#   (a) SELECT count(*) on the live files   (walk and stat only)
#   (b) SELECT count(*) on the live items   (frontmatter only)
#   (c) a full kabsd_refresh() of all seven tables: every file read and
#       compared with the snapshot, in place (readers never blocked), with
#       parallel workers as configured, and with none (one core)
#   (c0) a rebuild from nothing: kabsd_attach() of a backlog (tables made,
#       filled, then indexed), and every table emptied, then kabsd_refresh()
#       (tables filled with their indexes in place)
#   (c1) a kabsd_refresh() after one item was edited, (c2) after 1% were,
#   (c3) a kabsd_refresh(paths => ...) of the one edited file, in a new
#       session and in one that refreshed before
#   (d) a kabsd_refresh() when nothing changed
#   (e) a point query on the snapshot
# with the peak memory of the refreshing backend, and beside them, in the
# same run, the floors (C: walk and read; walk, read and libyaml) and the
# Python + PyYAML (C loader) + COPY route, which builds what a rebuild
# builds (seven tables, the same indexes, one transaction).  Then, on a
# second cluster with the library preloaded and the watcher running, how
# soon the snapshot follows the files (bench/freshness.pl):
#   (f1) edit-to-visible latency through the watcher, p50, p95 and max
#   (f2) a git checkout between two trees 5,000 files apart: time to a
#        consistent snapshot with the watcher, beside the checkout followed
#        by a whole-tree and by a targeted kabsd_refresh()
#   (f3) the watcher's start-up, its CPU while idle, its memory
# It reports; it never fails on a timing.
#   bash bench/run.sh [ITEMS] [SEED]
# Settings (environment):
#   KABSD_BENCH_ONLY=freshness      the freshness part alone
#   KABSD_BENCH_RUNS (5)            runs of each throughput measure
#   KABSD_BENCH_EDITS (50)          (f1) single-file edits
#   KABSD_BENCH_CHECKOUTS (3)       (f2) checkouts of each kind
#   KABSD_BENCH_CHECKOUT_FILES (5000)  files the two trees differ in (at
#                                   most half the corpus)
#   KABSD_BENCH_IDLE (30)           (f3) seconds the idle watcher is watched
#   KABSD_BENCH_BASE, KABSD_BENCH_PORT  the cluster's directory and port
#                                   (/tmp/kabsd-bench-pg, 54331; the watcher's
#                                   cluster: BASE-watch, PORT + 1)
#   KABSD_BENCH_GIT                 the Git copy of the corpus
#                                   (/tmp/kabsd-bench-git-ITEMS-SEED)
#   PG_CONFIG                       the PostgreSQL to build for and run
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
SEED=${2:-1}
RUNS=${KABSD_BENCH_RUNS:-5}
ONLY=${KABSD_BENCH_ONLY:-}
case $ONLY in
'' | freshness) ;;
*)
	echo "KABSD_BENCH_ONLY: \"freshness\" or unset, not \"$ONLY\"" >&2
	exit 2
	;;
esac
BASE=${KABSD_BENCH_BASE:-/tmp/kabsd-bench-pg}
PORT=${KABSD_BENCH_PORT:-54331}
export PG_CONFIG=${PG_CONFIG:-pg_config}
# psql and the server of that installation
PATH="$("$PG_CONFIG" --bindir):$PATH"
bash test/deps.sh
if ! python3 -c 'import yaml; yaml.CSafeLoader' 2>/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-yaml >/dev/null
	fi
fi
make >/dev/null && make install >/dev/null
mkdir -p bench/out
gcc -O2 -o bench/out/floor bench/floor.c -lyaml

corpus=/tmp/kabsd-bench-$N-$SEED
[ -f "$corpus/README.md" ] || perl bench/gen_corpus.pl "$corpus" "$N" "$SEED"
chmod -R a+rX "$corpus"
nfiles=$(find "$corpus" -name '*.md' | wc -l)
mb=$(du -sm --apparent-size "$corpus" | cut -f1)

# Two clusters: the throughput measures' and the watcher's
export KABSD_TEST_BASE=$BASE KABSD_TEST_PORT=$PORT
WBASE=$BASE-watch
WPORT=$((PORT + 1))
trap 'bash test/cluster.sh stop; KABSD_TEST_BASE=$WBASE bash test/cluster.sh stop' EXIT

# The freshness part: the corpus as a Git repository (a copy), on a
# cluster of its own whose watcher watches database postgres.
freshness() {
	local repo=${KABSD_BENCH_GIT:-/tmp/kabsd-bench-git-$N-$SEED} apart
	local conf="shared_preload_libraries = 'kabsd_fdw'
kabsd_fdw.watch_database = 'postgres'
log_min_messages = log"
	apart=$(perl bench/git_corpus.pl "$repo" "$corpus" "${KABSD_BENCH_CHECKOUT_FILES:-5000}")
	KABSD_TEST_BASE=$WBASE KABSD_TEST_PORT=$WPORT KABSD_TEST_CONF=$conf bash test/cluster.sh start >/dev/null
	local wsql=(psql -X -q -t -A -h "$WBASE" -p "$WPORT" -U postgres -d postgres)
	"${wsql[@]}" -c 'CREATE EXTENSION kabsd_fdw'
	{
		echo
		echo "freshness: $N items, $nfiles files; the watcher's defaults (kabsd_fdw.watch_quiet_ms $("${wsql[@]}" -c 'SHOW kabsd_fdw.watch_quiet_ms'), watch_max_delay_ms $("${wsql[@]}" -c 'SHOW kabsd_fdw.watch_max_delay_ms')); a Git copy in $repo whose branches differ in $apart files; $(nproc) cores"
		PGHOST=$WBASE PGPORT=$WPORT PGUSER=postgres PGDATABASE=postgres \
			perl bench/freshness.pl --repo "$repo" --root "$repo/_kano/backlog" \
			--edits "${KABSD_BENCH_EDITS:-50}" --checkouts "${KABSD_BENCH_CHECKOUTS:-3}" \
			--idle "${KABSD_BENCH_IDLE:-30}" --log "$WBASE/server.log"
	} | tee "bench/out/freshness-$N.md"
	KABSD_TEST_BASE=$WBASE bash test/cluster.sh stop
}
if [ "$ONLY" = freshness ]; then
	freshness
	exit 0
fi

bash test/cluster.sh start >/dev/null
eval "$(bash test/cluster.sh env)"
psql -X -q -d postgres -c 'CREATE EXTENSION kabsd_fdw' -c "SELECT 1 FROM kabsd_attach('$corpus', 'bench')" >/dev/null

# warm the page cache
cat "$(find "$corpus" -name '*.md' | head -n 1)" >/dev/null
bench/out/floor "$corpus" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# seconds of one SQL statement, measured by the server
sql_seconds() {
	psql -X -q -t -A -d postgres -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM ($1); RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0); END \$\$" 2>&1 | sed -n 's/^NOTICE:  //p'
}
runs() { for _ in $(seq 1 "$RUNS"); do "$@"; done | median; }

floor_walk() { bench/out/floor "$corpus" | awk '{print $3}'; }
floor_yaml() { bench/out/floor --yaml "$corpus" | awk '{print $3}'; }
live_files() { sql_seconds "SELECT count(*) FROM bench_live.files"; }
live_items() { sql_seconds "SELECT count(*) FROM bench_live.items"; }
# a full refresh: every file read, parsed and compared with the snapshot
full_refresh() { sql_seconds "SELECT count(*) FROM kabsd_refresh('bench', full => true)"; }
full_refresh_alone() { PGOPTIONS="-c max_parallel_maintenance_workers=0" full_refresh; }
# the backend and one worker: as many processes as this machine has cores,
# when it has two
full_refresh_one() { PGOPTIONS="-c max_parallel_maintenance_workers=1" full_refresh; }
workers() { psql -X -q -t -A -d postgres -c "SELECT parallel_workers FROM kabsd.refresh_history WHERE name = 'bench' ORDER BY id DESC LIMIT 1"; }
# a rebuild from nothing: detached, then attached again (the tables are
# made, filled from one read of each file, then indexed)
reattach() {
	psql -X -q -d postgres -c "SELECT kabsd_detach('bench')" >/dev/null
	sql_seconds "SELECT count(*) FROM kabsd_attach('$corpus', 'bench')"
}
# every table emptied past the guard (as by a restore without the
# snapshot's rows), then filled again with its indexes in place
clear_tables="SET session_replication_role = replica; TRUNCATE bench.files, bench.items,
	bench.decisions, bench.links, bench.worklog, bench.sections, bench.checklist"
rebuild() {
	psql -X -q -d postgres -c "$clear_tables" >/dev/null
	sql_seconds "SELECT count(*) FROM kabsd_refresh('bench')"
}
# the every-minute case: one item's state edited since the last refresh
edited=$(find "$corpus/products/atlas/items" -name '*.md' ! -name '*.index.md' | sort | sed -n 1p)
one_edit() {
	sed -i "s/^state: .*/state: Edited$RANDOM/" "$edited"
	sql_seconds "SELECT count(*) FROM kabsd_refresh('bench')"
}
# the same edit, refreshed as a watcher or a hook that knows the path does
one_path() {
	sed -i "s/^state: .*/state: Path$RANDOM/" "$edited"
	sql_seconds "SELECT count(*) FROM kabsd_refresh('bench', paths => ARRAY['${edited#"$corpus"/}'])"
}
# the same, in a session that refreshed before, as the watcher's does: a
# new session's first refresh also loads the library, compiles the SQL
# functions and opens the tables
one_path_warm() {
	local rel=${edited#"$corpus"/}
	psql -X -q -t -A -d postgres 2>&1 <<SQL | sed -n 's/^NOTICE:  //p'
SELECT count(*) FROM kabsd_refresh('bench', paths => ARRAY['$rel']) \g /dev/null
\! sed -i "s/^state: .*/state: Warm$RANDOM/" "$edited"
DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN PERFORM (SELECT count(*) FROM kabsd_refresh('bench', paths => ARRAY['$rel'])); RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0); END \$\$;
SQL
}
# a pull that changed 1% of the items (their state)
mapfile -t pulled < <(find "$corpus/products" -name '*.md' -path '*/items/*' ! -name '*.index.md' | sort | awk -v n="$N" 'NR % 100 == 0 && NR <= n')
pull_edit() {
	local s="Pulled$RANDOM"
	printf '%s\0' "${pulled[@]}" | xargs -0 sed -i "s/^state: .*/state: $s/"
	sql_seconds "SELECT count(*) FROM kabsd_refresh('bench')"
}
noop_refresh() { sql_seconds "SELECT count(*) FROM kabsd_refresh('bench')"; }
point_query() { sql_seconds "SELECT count(*) FROM bench.items WHERE id = 'ATL-TSK-0100'"; }
python_copy() {
	if python3 -c 'import yaml; yaml.CSafeLoader' 2>/dev/null; then
		python3 bench/python_copy.py "$corpus" postgres | tee -a "bench/out/python-$N.log" | awk '{print $1}'
	else
		echo NaN
	fi
}

# memory of a backend during one refresh: the peak of its private memory
# (RssAnon, sampled), and VmHWM, which also counts the shared buffers it
# touched
peak_kb() {
	local pid max=0 cur
	coproc PSQL { psql -X -q -t -A -d postgres 2>&1; }
	echo "SELECT pg_backend_pid();" >&"${PSQL[1]}"
	read -r pid <&"${PSQL[0]}"
	echo "$1;" >&"${PSQL[1]}"
	while ! read -r -t 0.05 _ <&"${PSQL[0]}"; do
		cur=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		[ "${cur:-0}" -gt "$max" ] && max=$cur
	done
	echo "$max $(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
	# closes psql's input (shellcheck misreads the named descriptor)
	# shellcheck disable=SC1083,SC2093
	exec {PSQL[1]}>&-
	wait "$PSQL_PID" 2>/dev/null || true
}

# the full-text index over sections alone: built as a rebuild builds it
fts_index() {
	psql -X -q -t -A -d postgres -c "DO \$\$ DECLARE t0 timestamptz; BEGIN
		DROP INDEX bench.sections_fts_idx;
		t0 := clock_timestamp();
		CREATE INDEX ON bench.sections USING gin
		  (to_tsvector('simple'::regconfig, coalesce(heading, '') || ' ' || coalesce(content, '')));
		RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0);
		RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'rollback';
	EXCEPTION WHEN raise_exception THEN NULL; END \$\$" 2>&1 | sed -n 's/^NOTICE:  //p'
}

echo "corpus: $N items, $nfiles files, $mb MB ($corpus); $RUNS runs each; $(nproc) cores"
fw=$(runs floor_walk)
fy=$(runs floor_yaml)
a=$(runs live_files)
b=$(runs live_items)
c=$(runs full_refresh)
cw=$(workers)
c1w=$(runs full_refresh_one)
cs=$(RUNS=3 runs full_refresh_alone)
c0a=$(RUNS=3 runs reattach)
c0=$(RUNS=3 runs rebuild)
c1=$(runs one_edit)
c2=$(runs pull_edit)
c3=$(runs one_path)
c3w=$(runs one_path_warm)
fts=$(RUNS=1 runs fts_index)
d=$(runs noop_refresh)
e=$(runs point_query)
p=$(RUNS=3 runs python_copy)
read -r anon_kb hwm_kb <<<"$(peak_kb "SELECT count(*) FROM kabsd_refresh('bench', full => true)")"
read -r anon0_kb hwm0_kb <<<"$(psql -X -q -d postgres -c "$clear_tables" >/dev/null; peak_kb "SELECT count(*) FROM kabsd_refresh('bench')")"

row() { awk -v n="$nfiles" -v mb="$mb" -v s="$2" -v name="$1" -v note="$3" \
	'BEGIN { if (s == "NaN" || s == 0) printf "| %s | %s | | | %s |\n", name, s, note;
	         else printf "| %s | %.3f | %.0f | %.1f | %s |\n", name, s, n / s, mb / s, note }'; }
vs_python() { awk -v a="$1" -v f="$p" 'BEGIN { if (f == "NaN") print "no python3-yaml"; else if (f >= a) printf "%.1fx faster than Python + COPY", f / a; else printf "%.1fx slower than Python + COPY", a / f}'; }
share() { awk -v a="$1" -v f="$c" 'BEGIN {printf "%.1f%% of a full refresh", 100 * a / f}'; }
{
	echo "| measurement | seconds | files/s | MB/s | note |"
	echo "| --- | ---: | ---: | ---: | --- |"
	row "floor: walk + read (C)" "$fw" ""
	row "floor: walk + read + libyaml events (C)" "$fy" ""
	row "(a) live files, count(*)" "$a" "$(awk -v a="$a" -v f="$fw" 'BEGIN {printf "%.2fx the walk floor", a / f}')"
	row "(b) live items, count(*)" "$b" "$(awk -v a="$b" -v f="$fy" 'BEGIN {printf "%.2fx the libyaml floor", a / f}')"
	row "(c) full kabsd_refresh(), 7 tables, in place" "$c" "every file read and compared, $cw parallel workers (max_parallel_maintenance_workers as set: $(psql -X -q -t -A -d postgres -c 'SHOW max_parallel_maintenance_workers')); $(vs_python "$c")"
	row "(c) the same, one parallel worker" "$c1w" "two processes; $(vs_python "$c1w")"
	row "(c) the same, no parallel workers" "$cs" "one core; $(vs_python "$cs")"
	row "(c0) kabsd_attach(): 7 tables made, filled, indexed" "$c0a" "$(vs_python "$c0a")"
	row "(c0) every table emptied, then kabsd_refresh()" "$c0" "indexes kept in place; $(vs_python "$c0")"
	row "(c1) kabsd_refresh() after one item's state changed" "$c1" "$(share "$c1")"
	row "(c2) kabsd_refresh() after 1% of the items changed" "$c2" "$(share "$c2")"
	row "(c3) kabsd_refresh(paths => that file) after one item's state changed" "$c3" "nothing else walked, the first refresh of a new session; $(share "$c3")"
	row "(c3) the same, in a session that refreshed before (the watcher's)" "$c3w" "$(share "$c3w")"
	row "(d) kabsd_refresh(), nothing changed" "$d" "$(share "$d")"
	echo "| (e) point query on the snapshot | $e | | | an index lookup |"
	row "Python + PyYAML C loader + COPY, 7 tables, the same indexes" "$p" "one transaction"
	echo
	echo "Memory of the backend (private RssAnon peak; VmHWM also counts the shared buffers it touched): full refresh in place $((anon_kb / 1024)) MB / $((hwm_kb / 1024)) MB; rebuild $((anon0_kb / 1024)) MB / $((hwm0_kb / 1024)) MB."
	echo
	fts=$(printf '%.2f' "$fts")
	echo "Building the full-text index over sections alone (CREATE INDEX, as kabsd_attach() builds it) takes ${fts}s."
	echo
	echo "The Python route, phase by phase (the last run): $(tail -n 1 "bench/out/python-$N.log")"
} | tee "bench/out/results-$N.md"
bash test/cluster.sh stop
freshness
