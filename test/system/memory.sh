#!/usr/bin/env bash
# A scan of 100,000 files keeps the backend's memory flat: the peak
# resident size of a backend that scanned 100,000 files is at most a few MB
# above one that scanned 1,000 (generous bounds, not a benchmark).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/system/lib.sh
small=/tmp/kabsd-mem-small
big=/tmp/kabsd-mem-big
[ -f "$small/README.md" ] || perl bench/gen_corpus.pl "$small" 1000 5
[ -f "$big/README.md" ] || perl bench/gen_corpus.pl "$big" 77000 5
chmod -R a+rX "$small" "$big"
nbig=$(find "$big" -name '*.md' | wc -l)
echo "# big corpus: $nbig files"
dropdb --if-exists kabsd_mem 2>/dev/null
createdb kabsd_mem
q -d kabsd_mem -c 'CREATE EXTENSION kabsd_fdw' \
	-c "CREATE SERVER small FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$small')" \
	-c "CREATE SERVER big FOREIGN DATA WRAPPER kabsd_fdw OPTIONS (root '$big')" \
	-c 'CREATE SCHEMA s' -c 'CREATE SCHEMA b' \
	-c 'IMPORT FOREIGN SCHEMA kabsd FROM SERVER small INTO s' \
	-c 'IMPORT FOREIGN SCHEMA kabsd FROM SERVER big INTO b'

# peak RSS (kB) of a fresh backend after one query; the backend is kept
# alive (psql reads from a FIFO) while /proc is read
peak() {
	local fifo pid kb
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	psql -X -q -t -A -d kabsd_mem <"$fifo" >"$fifo.out" 2>&1 &
	exec 7>"$fifo"
	echo "SELECT pg_backend_pid();" >&7
	echo "$1;" >&7
	echo "SELECT 'done';" >&7
	for _ in $(seq 1 600); do grep -q done "$fifo.out" 2>/dev/null && break; sleep 0.2; done
	pid=$(head -1 "$fifo.out")
	kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
	exec 7>&-
	wait
	rm -f "$fifo" "$fifo.out"
	echo "$kb"
}
for t in files items sections checklist links worklog; do
	a=$(peak "SELECT count(*) FROM s.$t")
	b=$(peak "SELECT count(*), max(length(b::text)) FROM b.$t b")
	echo "# $t: peak RSS ${a} kB after 1,000 items, ${b} kB after $nbig files"
	ok_true "[ $((b - a)) -lt 12288 ]" "$t: memory flat in the number of files (+$(((b - a) / 1024)) MB)"
done
finish
