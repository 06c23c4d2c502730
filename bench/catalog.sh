#!/bin/bash
# The catalog with N synthetic models (default 100,000): single-filter and
# three-filter lists, local search, compare; the daemon's own time
# (elapsed_ms, request parsed -> last frame queued, best of 5 over one
# connection) and modelctl's wall time (best of 5, whole process, --json to
# /dev/null); catalog size on disk. Goals (issue 8): one filter < 50 ms,
# three filters < 100 ms, search < 100 ms, inside the daemon.
#
# The models are entered with the benchmark-only bench_put op (modeld runs
# with MODELD_BENCH_OPS=1): synthetic manifests without files, stored by
# catalog_put_rev exactly like an import's, indexes included, 5,000 per
# transaction. Real imports do ~250/s (bench/populate.py).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
B=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/modeld-catbench.XXXXXX")
trap 'kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
MODELD_BENCH_OPS=1 "$B/modeld" -f --store "$W/store" --socket "$W/s.sock" --log-level error & PID=$!
for _ in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
t0=$(date +%s.%N)
/usr/bin/python3 bench/catalog_populate.py "$W/s.sock" "$N" 2>/dev/null
t1=$(date +%s.%N)
printf 'populated %d synthetic models in %.1f s (bench_put)\n' "$N" "$(echo "$t1 - $t0" | bc -l)"
C="$B/modelctl --socket $W/s.sock"
cli() { # best-of-5 wall time of modelctl "$@"
	local best=999999999
	"$@" > /dev/null
	for _ in 1 2 3 4 5; do
		local a b; a=$(date +%s%N); "$@" > /dev/null; b=$(date +%s%N)
		local us=$(( (b - a) / 1000 )); [ $us -lt $best ] && best=$us
	done
	printf '%d.%03d' $((best / 1000)) $((best % 1000))
}
q() { # label, JSON request, modelctl arguments...
	local label=$1 req=$2; shift 2
	local srv; srv=$(/usr/bin/python3 bench/catalog_query.py "$W/s.sock" "$req" 5 $PID)
	printf '%-44s %s   modelctl %8s ms\n' "$label" "$srv" "$(cli $C --json "$@")"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "query                                        daemon (elapsed_ms, best of 5) / socket round trip / results / daemon CPU per query (mean of 20) / modelctl --json wall (best of 5)"
q "list --task text-generation" '{"op":"find","task":"text-generation"}' list --task text-generation
q "list --provider org007" '{"op":"find","provider":"org007"}' list --provider org007
q "list --license mit" '{"op":"find","license":"mit"}' list --license mit
q "list --library gguf" '{"op":"find","library":"gguf"}' list --library gguf
q "list --size small" '{"op":"find","size":"small"}' list --size small
q "list --size 1b-10b" '{"op":"find","size":"1b-10b"}' list --size 1b-10b
q "list --min-params 70B" '{"op":"find","min_params":70000000000}' list --min-params 70B
q "list --fits 24GiB" '{"op":"find","fits":25769803776}' list --fits 24GiB
q "list --fits 24GiB --sort params" '{"op":"find","fits":25769803776,"sort":"params"}' list --fits 24GiB --sort params
q "list --task T --license mit --size large" '{"op":"find","task":"text-generation","license":"mit","size":"large"}' list --task text-generation --license mit --size large
q "list --provider P --task T --fits 24GiB" '{"op":"find","provider":"org007","task":"text-generation","fits":25769803776}' list --provider org007 --task text-generation --fits 24GiB
q "list --library L --min-params 1B --sort size" '{"op":"find","library":"transformers","min_params":1000000000,"sort":"size"}' list --library transformers --min-params 1B --sort size
q "search zebra" '{"op":"search","query":"zebra"}' search zebra
q "search 'llama chat' --task T" '{"op":"search","query":"llama chat","task":"text-generation"}' search "llama chat" --task text-generation
q "search w01 (prefix of 100 words)" '{"op":"search","query":"w01"}' search w01
[ "$N" -le 20000 ] && printf '%-44s %s\n' "list (unfiltered, raw path)" "modelctl $(cli $C --json list) ms"
echo "catalog size on disk:       $(du -sh "$W/store/catalog" | cut -f1) for $N models"
mdb_stat -a "$W/store/catalog" 2>/dev/null | awk '/^Status of/ {db=$3} /Leaf pages|Branch pages|Overflow pages/ {pages[db]+=$3} END {for (d in pages) printf "  %-14s %7d pages (main tree; dupsort sub-trees not counted)\n", d, pages[d]}' | sort
mdb_stat -ef "$W/store/catalog" 2>/dev/null | grep -E 'Number of pages used|Free pages'
mkdir "$W/compact" && mdb_copy -c "$W/store/catalog" "$W/compact" 2>/dev/null &&
	echo "compacted copy (mdb_copy -c, no free pages): $(du -sh "$W/compact" | cut -f1)"
