#!/bin/bash
# safetensors -> pack throughput against `cp` of the same file, same run.
#   SIZE_MB=4096 bench/convert.sh        (default 4096 MiB; BENCH_DIR=/tmp/...)
# Makes a checkpoint of SIZE_MB MiB (64 F16/F32 tensors of random bytes),
# reads it once to warm the page cache, then times, alternating, cp and
# conv_convert (pack + recipe, source/pack/tensor sha256 included) three
# times each, and prints the best of each and the ratio (goal: >= 0.8).
# Also checks that the recipe reproduces the original (sha256).
set -eu
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-4096}
DIR=${BENCH_DIR:-/tmp/modeld-bench}
ROUNDS=${ROUNDS:-3}
mkdir -p "$DIR"
make -s build/libmdcore.a >/dev/null
PKGS="jansson libcrypto"
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
best_cp=999999 best_cv=999999
for i in $(seq "$ROUNDS"); do
	rm -f "$DIR/copy" "$DIR/pack" "$DIR/recipe"
	sync
	t0=$(now); cp "$SRC" "$DIR/copy"; t1=$(now)
	cp_s=$(echo "$t1 - $t0" | bc -l)
	rm -f "$DIR/copy"
	sync
	t0=$(now); out=$(./build/bench-convert "$SRC" "$DIR/pack" "$DIR/recipe"); t1=$(now)
	cv_s=$(echo "$t1 - $t0" | bc -l)
	printf 'round %d: cp %.2fs  convert %.2fs\n' "$i" "$cp_s" "$cv_s"
	best_cp=$(echo "if ($cp_s < $best_cp) $cp_s else $best_cp" | bc -l)
	best_cv=$(echo "if ($cv_s < $best_cv) $cv_s else $best_cv" | bc -l)
done
t0=$(now); openssl dgst -sha256 "$SRC" >/dev/null; t1=$(now)
sha_s=$(echo "$t1 - $t0" | bc -l)
echo "$out" | head -1
printf 'one sha256 pass over the file (openssl dgst): %.2fs; conversion hashes 3 streams (source, tensors, pack)\n' "$sha_s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
src_sha=$(echo "$out" | sed -n 's/^src_sha256=//p')
mb=$(echo "$size / 1048576" | bc -l)
printf 'file %.0f MiB: cp %.2fs (%.0f MiB/s), convert %.2fs (%.0f MiB/s), ratio %.2f (goal >= 0.80)\n' \
	"$mb" "$best_cp" "$(echo "$mb / $best_cp" | bc -l)" "$best_cv" \
	"$(echo "$mb / $best_cv" | bc -l)" "$(echo "$best_cp / $best_cv" | bc -l)"
echo "sha256 of the source (computed during conversion): $src_sha"
[ "${VERIFY:-1}" = 1 ] && [ "$(sha256sum "$SRC" | cut -d' ' -f1)" = "$src_sha" ] && \
	echo "sha256sum agrees"
rm -f "$DIR/pack" "$DIR/recipe" "$DIR/copy"
