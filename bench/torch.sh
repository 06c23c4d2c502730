#!/bin/bash
# bench/torch.sh — torch checkpoint -> tensors: our converter vs python3-torch.
#
#   bench/torch.sh [SIZE_MIB] [NTENSORS] [legacy]
#
# Makes one checkpoint with real torch.save (SIZE_MIB of fp16/fp32/bf16
# tensors over NTENSORS tensors, default 1024 MiB / 512), then on that same
# file, in the same run, page cache warm, best of 3:
#   ours-read : build/torch_read FILE       conv_torch.parse + pread of every
#               tensor range once (the converter's side of a conversion)
#   ours-write: build/torch_read -o OUT     the same, also writing every range
#               to OUT
#   ours-pack : build/bench-convert FILE PACK RECIPE   the whole conversion the
#               daemon's worker does: parse, pack (aligned, every tensor's
#               digest (XXH3-128), root), recipe, and the file's own sha256
#   ours-pack-known: the same with the file's sha256 given (a pull verified
#               it while downloading), so the file is not hashed again
#   torch     : /usr/bin/python3 -c torch.load(f, weights_only=True), then
#               every tensor's bytes written to OUT
# Prints seconds and MB/s for each and the speed-up over torch.
set -eu
cd "$(dirname "$0")/.."
SIZE=${1:-1024}
NT=${2:-512}
FMT=${3:-zip}
PY=/usr/bin/python3
make -s all >/dev/null
cc -O2 -g -D_GNU_SOURCE -I. -o build/torch_read bench/torch_read.c build/libmdcore.a \
	$(pkg-config --libs jansson libcrypto libxxhash) -lpthread
cc -std=c17 -O2 -D_GNU_SOURCE -I. bench/convert_main.c build/libmdcore.a \
	$(pkg-config --libs jansson libcrypto libxxhash) -lpthread -o build/bench-convert
W=$(mktemp -d /tmp/md-bench-torch.XXXXXX)
trap 'rm -rf "$W"' EXIT
CK=$W/model.bin
$PY - "$CK" "$SIZE" "$NT" "$FMT" <<'PYEOF'
import sys, torch, collections
path, size, nt, fmt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
per = size * 2**20 // nt
sd = collections.OrderedDict()
dts = [torch.float16, torch.float32, torch.bfloat16]
for i in range(nt):
    dt = dts[i % 3]
    n = per // torch.tensor([], dtype=dt).element_size()
    sd[f"layers.{i}.weight"] = torch.empty(n, dtype=dt).uniform_(-1, 1).view(-1, 64) if n % 64 == 0 else torch.empty(n, dtype=dt)
torch.save(sd, path, _use_new_zipfile_serialization=(fmt != "legacy"))
PYEOF
BYTES=$(stat -c %s "$CK")
cat "$CK" > /dev/null
best() { # best wall time of 3 runs of "$@"
	local b=""
	for _ in 1 2 3; do
		local t0 t1 d
		t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
		d=$(echo "$t1 - $t0" | bc -l)
		if [ -z "$b" ] || [ "$(echo "$d < $b" | bc -l)" = 1 ]; then b=$d; fi
		rm -f "$W/out" "$W/pack" "$W/recipe"
	done
	echo "$b"
}
TORCH_PY='import sys, torch
sd = torch.load(sys.argv[1], weights_only=True)
with open(sys.argv[2], "wb") as f:
    for k, t in sd.items():
        f.write((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())'
r=$(best ./build/torch_read "$CK")
w=$(best ./build/torch_read -o "$W/out" "$CK")
c=$(best ./build/bench-convert "$CK" "$W/pack" "$W/recipe")
SHA=$(sha256sum "$CK" | cut -d' ' -f1)
k=$(best ./build/bench-convert "$CK" "$W/pack" "$W/recipe" "$SHA")
p=$(best $PY -c "$TORCH_PY" "$CK" "$W/out")
mbs() { echo "scale=0; $BYTES / $1 / 1000000" | bc -l; }
printf 'file: %s MiB, %s tensors, format %s (%s bytes)\n' "$SIZE" "$NT" "$FMT" "$BYTES"
printf 'ours-read   %8.3f s  %6s MB/s  %5.1fx torch\n' "$r" "$(mbs "$r")" "$(echo "$p / $r" | bc -l)"
printf 'ours-write  %8.3f s  %6s MB/s  %5.1fx torch\n' "$w" "$(mbs "$w")" "$(echo "$p / $w" | bc -l)"
printf 'ours-pack   %8.3f s  %6s MB/s  %5.1fx torch  (goal >= 5x)\n' "$c" "$(mbs "$c")" "$(echo "$p / $c" | bc -l)"
printf 'ours-pack-known %4.3f s  %6s MB/s  %5.1fx torch\n' "$k" "$(mbs "$k")" "$(echo "$p / $k" | bc -l)"
printf 'torch       %8.3f s  %6s MB/s\n' "$p" "$(mbs "$p")"
./build/torch_read -t "$CK"
