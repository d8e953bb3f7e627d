# Helpers for the system tests: psql against the test cluster, and checks
# that print "ok" or "not ok" lines and count failures.
fails=0
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
ok() {
	if [ "$1" = "$2" ]; then
		echo "ok - $3"
	else
		echo "not ok - $3 (got '$1', want '$2')"
		fails=$((fails + 1))
	fi
}
ok_true() {
	if eval "$1"; then echo "ok - $2"; else echo "not ok - $2"; fails=$((fails + 1)); fi
}
finish() {
	[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
}
# attach_corpus DB DIR ITEMS SEED NAME: a generated backlog, attached as
# NAME in a fresh database DB
attach_corpus() {
	rm -rf "$2" && perl bench/gen_corpus.pl "$2" "$3" "$4" && chmod -R a+rX "$2"
	dropdb --if-exists "$1" 2>/dev/null
	createdb "$1"
	q -d "$1" -c 'CREATE EXTENSION kabsd_fdw'
	q -d "$1" -c "SELECT status FROM kabsd_attach('$2', '$5')" >/dev/null
}
