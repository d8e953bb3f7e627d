#!/usr/bin/env bash
# Builds the Debian package postgresql-15-kabsd-fdw (debian/, pg_buildext)
# from a copy of this tree, installs it with apt, and runs the pg_regress
# suites (the Makefile's REGRESS)
# against the installed package: nothing is built or installed from source
# for the tests.  Then the package's /usr/bin/kabsd-git-hooks installs its
# hooks into a Git repository holding a backlog, and a commit refreshes the
# backlog.  Needs root (apt-get, dpkg).
#   bash test/deb.sh
# KABSD_DEB_WORK (default /tmp/kabsd-deb) is where the copy is built and the
# .deb files land; the test cluster (test/cluster.sh) uses KABSD_TEST_BASE
# (default /tmp/kabsd-deb-test) and KABSD_TEST_PORT (default 54338).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=${KABSD_DEB_WORK:-/tmp/kabsd-deb}
export KABSD_TEST_BASE=${KABSD_TEST_BASE:-/tmp/kabsd-deb-test}
export KABSD_TEST_PORT=${KABSD_TEST_PORT:-54338}
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PKG=postgresql-15-kabsd-fdw

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "kabsd_fdw Debian package: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (apt-get, dpkg, the test cluster as postgres)"

step "build tools and Build-Depends"
# The build tools, debian/control's Build-Depends, and what the test cluster
# needs: the server (pg_cron too, which the TAP tests preload), git for the
# hooks.
PACKAGES=(
	build-essential dpkg-dev debhelper
	postgresql-server-dev-all libyaml-dev libcmark-dev
	postgresql-15 postgresql-15-cron
	git
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "copy of the tree in $WORK/src"
rm -rf "$WORK"
mkdir -p "$WORK/src"
# Tracked and new files, without what .gitignore lists (this tree's own build
# outputs); a plain copy when this is not a checkout (the build cleans first).
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$SRC" ls-files -z -c -o --exclude-standard |
		tar -C "$SRC" --null --ignore-failed-read -T - -cf - |
		tar -C "$WORK/src" -xf -
else
	cp -a "$SRC/." "$WORK/src/"
fi
[ -f "$WORK/src/debian/control" ] || fail "no debian/ in $SRC"

step "dpkg-buildpackage -us -uc -b (log: $WORK/build.log)"
start=$(date +%s)
if ! (cd "$WORK/src" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1; then
	tail -n 60 "$WORK/build.log"
	fail "dpkg-buildpackage"
fi
echo "built in $(($(date +%s) - start)) s:"
debs=("$WORK/$PKG"_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
	fail "expected one ${PKG}_*.deb in $WORK, found: ${debs[*]}"
fi
ls -l "$WORK"/*.deb

step "apt-get install ./$(basename "${debs[0]}")"
# --reinstall: the same version may already be installed from an earlier run.
# dpkg replaces the files an earlier "make install" left there (owned by no
# package); "dpkg --verify" then proves that the installed files are the
# package's.
(cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "./$(basename "${debs[0]}")") ||
	fail "apt-get install"
dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' "$PKG"
if ! dpkg --verify "$PKG"; then
	fail "installed files differ from the package's (dpkg --verify)"
fi
dpkg -L "$PKG"
for f in "$($PG_CONFIG --pkglibdir)/kabsd_fdw.so" \
	"$($PG_CONFIG --sharedir)/extension/kabsd_fdw.control" \
	"$($PG_CONFIG --sharedir)/extension/kabsd_fdw--0.2.0.sql" \
	"$($PG_CONFIG --sharedir)/extension/kabsd_fdw--0.1.0--0.2.0.sql" \
	/usr/bin/kabsd-git-hooks; do
	dpkg -S "$f" 2>/dev/null | grep -q "^$PKG: " || fail "$f is not owned by $PKG"
done

step "pg_regress against the installed package"
# The tests run from the built copy (cleaned by the build: no .so, no
# generated SQL in it); the server reads the fixtures, so the copy must be
# readable by "postgres".
TESTDIR="$WORK/src"
chmod a+rx "$WORK"
chmod -R a+rX "$TESTDIR"
# The suites and their options (with --dbname), as PGXS's installcheck has
# them, from the Makefile.
read_make_var() {
	# shellcheck disable=SC2016 # $(...) is make's, not the shell's
	printf 'print-var:\n\t@echo $(%s)\n' "$1" |
		make -s --no-print-directory -C "$TESTDIR" -f Makefile -f - print-var PG_CONFIG="$PG_CONFIG"
}
REGRESS=$(read_make_var REGRESS)
REGRESS_OPTS=$(read_make_var REGRESS_OPTS)
[ -n "$REGRESS" ] || fail "no REGRESS list in the Makefile"
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/..
BINDIR=$($PG_CONFIG --bindir)

trap 'bash "$TESTDIR/test/cluster.sh" stop' EXIT
bash "$TESTDIR/test/cluster.sh" start
eval "$(bash "$TESTDIR/test/cluster.sh" env)"

cd "$TESTDIR"
status=0
# shellcheck disable=SC2086 # lists of words
if ! "$PGXS_DIR/test/regress/pg_regress" --inputdir=. --bindir="$BINDIR" \
	$REGRESS_OPTS $REGRESS; then
	echo "**** regression.diffs ****"
	cat regression.diffs 2>/dev/null || true
	status=1
fi
[ $status -eq 0 ] || fail "pg_regress (diffs above)"

step "kabsd-git-hooks from the package: hooks installed, a commit refreshes"
HOOKS=/usr/bin/kabsd-git-hooks
[ -x "$HOOKS" ] || fail "$HOOKS is not executable"
"$HOOKS" --help >"$WORK/hooks-help.txt" || fail "$HOOKS --help"
grep -q '^Usage:' "$WORK/hooks-help.txt" || fail "$HOOKS --help says no usage"
# a repository with the fixture backlog in it, readable by the server
repo=$WORK/hooks-repo
rm -rf "$repo"
mkdir -p "$repo"
cp -a "$TESTDIR/test/fixtures/backlog" "$repo/backlog"
chmod -R a+rX "$repo"
git_repo() { git -C "$repo" -c user.name=deb -c user.email=deb@localhost "$@"; }
git_repo init -q
git_repo add -A
git_repo commit -q -m backlog
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d postgres -c "$1"; }
sql "CREATE EXTENSION IF NOT EXISTS kabsd_fdw" >/dev/null
sql "SELECT status FROM kabsd_attach('$repo/backlog', 'hooks')" >/dev/null
"$HOOKS" --repo "$repo" --backlog hooks -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres ||
	fail "$HOOKS could not install the hooks"
for h in post-commit post-merge post-checkout post-rewrite; do
	[ -x "$repo/.git/hooks/$h" ] || fail "no hook $h in $repo/.git/hooks"
done
refreshes() { sql "SELECT count(*) FROM kabsd.refresh_history WHERE name = 'hooks'"; }
before=$(refreshes)
echo >>"$(find "$repo/backlog/products" -name '*.md' -path '*/items/*' | sort | head -n 1)"
git_repo commit -q -a -m "an edit"
# the hook refreshes in the background
for _ in $(seq 1 300); do
	[ "$(refreshes)" -gt "$before" ] && break
	sleep 0.1
done
if [ "$(refreshes)" -le "$before" ]; then
	cat "$repo/.git/kabsd-hooks.log" 2>/dev/null || true
	fail "a commit did not refresh the backlog through the package's hooks"
fi
hook_status=$(sql "SELECT status FROM kabsd.refresh_history WHERE name = 'hooks' ORDER BY id DESC LIMIT 1")
[ "$hook_status" = refreshed ] || fail "the hook's refresh: \"$hook_status\", not \"refreshed\""
echo "a commit refreshed backlog \"hooks\" through the package's hooks"
"$HOOKS" --uninstall --repo "$repo" || fail "$HOOKS --uninstall"
[ ! -e "$repo/.git/hooks/post-commit" ] || fail "--uninstall left post-commit"
sql "SELECT kabsd_detach('hooks')" >/dev/null

echo
echo "kabsd_fdw Debian package: built, installed and tested ($(basename "${debs[0]}"))"
