#!/bin/bash
# `modelctl list --json` with N stored models (default 10,000) and the idle
# RSS of modeld: on an empty store, after the lists, and after a restart on
# the full store. Goals (issue 2): list under 200 ms; idle RSS under 10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
B=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/modeld-bench.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
start() {
	"$B/modeld" -f --store "$W/store" --socket "$W/s.sock" --log-level error & PID=$!
	for _ in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
	sleep 1   # the socket loop trims 200 ms after the last request
}
rss() { awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2}
	END {printf "%d KiB (anon %d, file %d)", r, a, f}' /proc/$PID/status; }
start
echo "idle RSS, empty store:      $(rss)"
t0=$(date +%s.%N)
/usr/bin/python3 bench/populate.py "$W/s.sock" "$N"
t1=$(date +%s.%N)
printf 'populated %d models in %.1f s\n' "$N" "$(echo "$t1 - $t0" | bc -l)"
C="$B/modelctl --socket $W/s.sock"
$C list --json > /dev/null   # warm
best=999
for i in 1 2 3 4 5; do
	a=$(date +%s%N); $C list --json > "$W/out.json"; b=$(date +%s%N)
	ms=$(( (b - a) / 1000000 )); [ $ms -lt $best ] && best=$ms
done
echo "list --json, $N models: best of 5 = ${best} ms (goal < 200 ms), $(wc -c < "$W/out.json") bytes"
sleep 1
echo "idle RSS after the lists:   $(rss) (goal < 10240 KiB)"
kill $PID; wait $PID || true
rm -f "$W/s.sock"
start
echo "idle RSS after a restart:   $(rss)"
echo "catalog size on disk:       $(du -sk "$W/store/catalog" | cut -f1) KiB"
