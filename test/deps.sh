#!/usr/bin/env bash
# Installs everything kabsd_fdw needs to build and test, from Debian 12's
# packages.  Needs root; does nothing when every package is already there.
set -euo pipefail
PACKAGES=(
	make gcc perl ca-certificates git       # git: the HEAD reader's tests, the hooks
	postgresql-15 postgresql-server-dev-15   # server, headers, pgbench
	libyaml-dev libcmark-dev                 # the parsers
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl  # pgTAP, pg_prove
	postgresql-15-cron                       # scheduled refreshes
	libipc-run-perl                          # TAP tests (PostgreSQL::Test::Cluster)
	clang libclang-rt-14-dev valgrind        # fuzzing, sanitizers
)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# the Debian package starts a cluster of its own; the tests use their own
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
