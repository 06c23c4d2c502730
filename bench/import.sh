#!/bin/bash
# Import of a local folder vs `cp -r` + `sha256sum` of the same files, one run.
# Goal (issue 2): modelctl import within 1.3x of cp -r + sha256sum.
#   SIZE_MB=2048 (default) total size, split into 4 shards + small files.
#   KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-2048}
B=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/modeld-bench.XXXXXX")
trap '[ -n "${PID:-}" ] && kill $PID 2>/dev/null; wait 2>/dev/null; [ "${KEEP:-}" = 1 ] || rm -rf "$W"' EXIT
SRC=$W/src; mkdir -p "$SRC"
per=$((SIZE_MB / 4))
# real safetensors shards (weight files are parsed and converted to packs):
# a JSON header, then random tensor bytes
for i in 1 2 3 4; do
	f="$SRC/model-0000$i-of-00004.safetensors"
	/usr/bin/python3 - "$f" $((per * 1024 * 1024)) <<'PY'
import json, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
k = 8
each = (n // k) & ~7
hdr = {f"layers.{j}.weight": {"dtype": "BF16", "shape": [each // 2],
                               "data_offsets": [j * each, (j + 1) * each]} for j in range(k)}
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(path, "wb").write(struct.pack("<Q", len(h)) + h)
print(k * each, file=open(path + ".n", "w"))
PY
	head -c "$(cat "$f.n")" /dev/urandom >> "$f"
	rm "$f.n"
done
echo '{"architectures":["LlamaForCausalLM"]}' > "$SRC/config.json"
head -c 2000000 /dev/urandom | base64 > "$SRC/tokenizer.json"
sync
now() { date +%s.%N; }

# cp -r + sha256sum (page cache warm for both: the files were just written)
t0=$(now); cp -r "$SRC" "$W/copy"; sha256sum "$W/copy"/* > /dev/null; t1=$(now); sync; t1s=$(now)
rm -rf "$W/copy"; sync
"$B/modeld" -f --store "$W/store" --socket "$W/s.sock" --log-level error & PID=$!
for _ in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
t2=$(now); "$B/modelctl" --socket "$W/s.sock" -q import "$SRC" --name bench/import > /dev/null; t3=$(now)
base=$(echo "$t1 - $t0" | bc -l); ours=$(echo "$t3 - $t2" | bc -l)
based=$(echo "$t1s - $t0" | bc -l)
printf 'size            %d MiB\n' "$SIZE_MB"
printf 'cp -r+sha256sum %.2f s  (%.0f MiB/s), %.2f s with a final sync\n' "$base" "$(echo "$SIZE_MB / $base" | bc -l)" "$based"
printf 'modelctl import %.2f s  (%.0f MiB/s)\n' "$ours" "$(echo "$SIZE_MB / $ours" | bc -l)"
printf 'ratio           %.2fx vs cp+sha256sum without sync (goal <= 1.30x); %.2fx vs with sync\n' \
	"$(echo "$ours / $base" | bc -l)" "$(echo "$ours / $based" | bc -l)"
