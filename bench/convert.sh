#!/bin/bash
# safetensors -> pack throughput against `cp` of the same file, same run.
#   SIZE_MB=4096 bench/convert.sh        (default 4096 MiB; BENCH_DIR=/tmp/...)
# Makes a checkpoint of SIZE_MB MiB (64 F16/F32 tensors of random bytes),
# reads it once to warm the page cache, then times, alternating, ROUNDS
# times each: cp; conv_convert with the source's sha256 known (what a pull
# does: it hashed the file while downloading, so the conversion only copies
# and hashes the tensors, one thread per CPU); and conv_convert hashing the
# source too (a local import). Prints the best of each and the ratios (goal:
# >= 0.8 for the conversion). Also checks the recipe's source digest.
set -eu
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-4096}
DIR=${BENCH_DIR:-/tmp/modeld-bench}
ROUNDS=${ROUNDS:-3}
mkdir -p "$DIR"
make -s build/libmdcore.a >/dev/null
PKGS="jansson libcrypto libxxhash"
cc -std=c17 -O2 -D_GNU_SOURCE -I. bench/convert_main.c build/libmdcore.a \
	$(pkg-config --libs $PKGS) -lpthread -o build/bench-convert
SRC=$DIR/model-${SIZE_MB}M.safetensors
if [ ! -f "$SRC" ] || [ "$(stat -c %s "$SRC")" -lt $((SIZE_MB * 1048576)) ]; then
	/usr/bin/python3 - "$SRC" "$SIZE_MB" <<'PY'
import json, os, struct, sys
path, mb = sys.argv[1], int(sys.argv[2])
n = 64
per = (mb << 20) // n // 4096 * 4096
hdr, off = {"__metadata__": {"format": "pt"}}, 0
for i in range(n):
    dt, es = ("F16", 2) if i % 2 else ("F32", 4)
    hdr["layers.%d.weight" % i] = {"dtype": dt, "shape": [per // es // 1024, 1024],
                                   "data_offsets": [off, off + per]}
    off += per
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    block = os.urandom(1 << 24)
    left = off
    while left:
        k = min(left, len(block))
        f.write(block[:k])
        left -= k
PY
fi
size=$(stat -c %s "$SRC")
cat "$SRC" >/dev/null
now() { date +%s.%N; }
best_cp=999999 best_cv=999999 best_kn=999999
all_cp=() all_kn=() all_cv=()
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
run_cv() {   # seconds of one conversion ($1: extra args)
	rm -f "$DIR/pack" "$DIR/recipe"
	sync
	local t0 t1
	t0=$(now); ./build/bench-convert "$SRC" "$DIR/pack" "$DIR/recipe" $1 >"$DIR/out"; t1=$(now)
	echo "$t1 - $t0" | bc -l
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
for i in $(seq "$ROUNDS"); do
	rm -f "$DIR/copy" "$DIR/pack" "$DIR/recipe"
	sync
	t0=$(now); cp "$SRC" "$DIR/copy"; t1=$(now)
	cp_s=$(echo "$t1 - $t0" | bc -l)
	rm -f "$DIR/copy"
	kn_s=$(run_cv "$SHA")
	cv_s=$(run_cv "")
	printf 'round %d: cp %.2fs  convert (sha256 known) %.2fs  convert + source sha256 %.2fs\n' \
		"$i" "$cp_s" "$kn_s" "$cv_s"
	all_cp+=("$cp_s") all_kn+=("$kn_s") all_cv+=("$cv_s")
	best_cp=$(min "$cp_s" "$best_cp")
	best_kn=$(min "$kn_s" "$best_kn")
	best_cv=$(min "$cv_s" "$best_cv")
done
t0=$(now); openssl dgst -sha256 "$SRC" >/dev/null; t1=$(now)
sha_s=$(echo "$t1 - $t0" | bc -l)
out=$(cat "$DIR/out")
echo "$out" | head -1
printf 'one sha256 pass over the file (openssl dgst, one core): %.2fs\n' "$sha_s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
src_sha=$(echo "$out" | sed -n 's/^src_sha256=//p')
mb=$(echo "$size / 1048576" | bc -l)
rate() { echo "$mb / $1" | bc -l; }
printf 'file %.0f MiB: cp %.2fs (%.0f MiB/s)\n' "$mb" "$best_cp" "$(rate "$best_cp")"
printf '  convert, source sha256 known (pull): %.2fs (%.0f MiB/s), ratio %.2f (goal >= 0.80)\n' \
	"$best_kn" "$(rate "$best_kn")" "$(echo "$best_cp / $best_kn" | bc -l)"
printf '  convert + source sha256 (import):    %.2fs (%.0f MiB/s), ratio %.2f\n' \
	"$best_cv" "$(rate "$best_cv")" "$(echo "$best_cp / $best_cv" | bc -l)"
# this VM's wall times swing with its neighbours' load: the medians too
med_cp=$(median "${all_cp[@]}") med_kn=$(median "${all_kn[@]}") med_cv=$(median "${all_cv[@]}")
printf 'medians over %d rounds: cp %.2fs, convert (sha256 known) %.2fs ratio %.2f, convert + source sha256 %.2fs ratio %.2f\n' \
	"$ROUNDS" "$med_cp" "$med_kn" "$(echo "$med_cp / $med_kn" | bc -l)" "$med_cv" "$(echo "$med_cp / $med_cv" | bc -l)"
[ "$SHA" = "$src_sha" ] && echo "sha256 of the source computed during conversion agrees with sha256sum"
rm -f "$DIR/pack" "$DIR/recipe" "$DIR/copy" "$DIR/out"
