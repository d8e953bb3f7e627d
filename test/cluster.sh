#!/usr/bin/env bash
# Starts or stops the throwaway PostgreSQL 15 cluster the tests run against.
# initdb refuses root, so the cluster belongs to the "postgres" user.
# The server is the one of $PG_CONFIG (default: pg_config on PATH), as the
# Makefile's; KABSD_TEST_CONF, when set, is appended to postgresql.conf.
#   bash test/cluster.sh start|stop|env
set -euo pipefail
BIN=$("${PG_CONFIG:-pg_config}" --bindir)
BASE=${KABSD_TEST_BASE:-/tmp/kabsd-test}
PORT=${KABSD_TEST_PORT:-54329}
RUNAS=${KABSD_TEST_USER:-postgres}

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		su "$RUNAS" -s /bin/sh -c "$*"
	else
		sh -c "$*"
	fi
}

case "${1:-}" in
start)
	as_owner "$BIN/pg_ctl -D $BASE/data stop -m immediate" >/dev/null 2>&1 || true
	rm -rf "$BASE"
	mkdir -p "$BASE"
	[ "$(id -u)" = 0 ] && chown "$RUNAS" "$BASE"
	as_owner "$BIN/initdb -D $BASE/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$BASE/initdb.log"
	cat >>"$BASE/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$BASE'
max_worker_processes = 16
fsync = off
log_min_messages = warning
${KABSD_TEST_CONF:-}
CONF
	as_owner "$BIN/pg_ctl -D $BASE/data -l $BASE/server.log -w start" >/dev/null
	echo "cluster up: host=$BASE port=$PORT user=postgres"
	;;
stop)
	as_owner "$BIN/pg_ctl -D $BASE/data -m fast -w stop" >/dev/null 2>&1 || true
	;;
env)
	echo "export PGHOST=$BASE PGPORT=$PORT PGUSER=postgres"
	;;
*)
	echo "usage: $0 start|stop|env" >&2
	exit 2
	;;
esac
