#!/usr/bin/env bash
# Runs every test of kabsd_fdw on a fresh Debian 12 machine:
#   - installs the dependencies (test/deps.sh),
#   - builds and installs the extension,
#   - starts a throwaway PostgreSQL 15 cluster (test/cluster.sh),
#   - runs the pg_regress suites, the pgTAP suite,
#     the TAP tests (several clusters; crash, load and memory included),
#     the Debian package (built, installed, tested), the C unit tests under ASan/UBSan and
#     valgrind, and the fuzzer for a bounded time.
# With CI=true the build uses -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/deps.sh

# The server runs as "postgres" and reads the fixtures in place: work from a
# copy it can read if this checkout is not readable to it (under /root, say).
if [ "$(id -u)" = 0 ] && ! su postgres -s /bin/sh -c "test -r '$PWD/test/fixtures/backlog/README.md'"; then
	rm -rf /tmp/kabsd-src
	cp -a . /tmp/kabsd-src
	chmod -R a+rX /tmp/kabsd-src
	exec bash /tmp/kabsd-src/test/run.sh "$@"
fi

WERROR=""
[ "${CI:-}" = "true" ] && WERROR="-Werror"
make clean >/dev/null
make PG_CFLAGS="-std=gnu99 $WERROR"
make install >/dev/null

bash test/cluster.sh start
eval "$(bash test/cluster.sh env)"
trap 'bash test/cluster.sh stop' EXIT

status=0
step() { printf '\n=== %s\n' "$*"; }

step "pg_regress"
if ! make installcheck TAP_TESTS=; then
	cat regression.diffs 2>/dev/null || true
	status=1
fi

step "pgTAP"
bash test/pgtap/run.sh || status=1

step "TAP tests (test/t: replication, upgrade, pg_cron, crash, file changes, load, memory, watcher, Git)"
# initdb refuses root: the TAP tests run as "postgres", from a copy it owns
if [ "$(id -u)" = 0 ]; then
	rm -rf /tmp/kabsd-tap
	cp -a . /tmp/kabsd-tap
	chown -R postgres /tmp/kabsd-tap
	su postgres -s /bin/sh -c "cd /tmp/kabsd-tap && make installcheck REGRESS= ISOLATION=" || {
		cat /tmp/kabsd-tap/tmp_check/log/regress_log_* 2>/dev/null | tail -n 60
		status=1
	}
else
	make installcheck REGRESS= ISOLATION= || status=1
fi

step "C unit tests (ASan + UBSan, then valgrind)"
rm -f test/unit/test_core
make test/unit/test_core CORE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer $WERROR"
(cd test/unit && ./test_core) || status=1
rm -f test/unit/test_core
make test/unit/test_core CORE_CFLAGS="$WERROR" >/dev/null
valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=3 test/unit/test_core || status=1

step "fuzzing the core (bounded)"
make test/fuzz/fuzz_core
corpus=$(mktemp -d)
find test/fixtures test/fuzz/crashes -type f -name '*.md' -exec cp {} "$corpus/" \; 2>/dev/null || true
# regression inputs first, then a bounded run from the fixtures
for f in test/fuzz/crashes/*; do
	[ -f "$f" ] && { test/fuzz/fuzz_core "$f" >/dev/null 2>&1 || { echo "fuzz regression: $f"; status=1; }; }
done
test/fuzz/fuzz_core -max_total_time="${KABSD_FUZZ_SECONDS:-60}" -max_len=65536 \
	-rss_limit_mb=2048 -artifact_prefix=/tmp/kabsd-fuzz- "$corpus" 2>&1 | tail -n 3 || status=1
rm -rf "$corpus"

step "Debian package (build, apt install, pg_regress against the installed package)"
bash test/deb.sh || status=1

echo
if [ $status -eq 0 ]; then
	echo "kabsd_fdw: all test steps passed"
else
	echo "kabsd_fdw: some test steps FAILED"
fi
exit $status
