#!/bin/bash
# Tensors stored once across files and models (DESIGN 2), one run:
#  1. a model shipping the same weights as model.safetensors and
#     pytorch_model.bin (real torch.save), imported: bytes stored vs the
#     originals, and the import time against importing the safetensors alone;
#  2. a second model with the same tensors but one, and new metadata: bytes
#     the store grew by.
#   SIZE_MB=512 (default) bytes of weights, in 8 F32 tensors.  KEEP=1 keeps
#   the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-512}
B=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/modeld-bench.XXXXXX")
trap '[ -n "${PID:-}" ] && kill $PID 2>/dev/null; wait 2>/dev/null; [ "${KEEP:-}" = 1 ] || rm -rf "$W"' EXIT
/usr/bin/python3 - "$W" "$SIZE_MB" <<'PY'
import json, os, struct, sys, torch
w, mb = sys.argv[1], int(sys.argv[2])
rows = mb * (1 << 20) // 8 // 4 // 1024
g = torch.Generator().manual_seed(1)
sd = {f"layers.{i}.weight": torch.randn(rows, 1024, generator=g) for i in range(8)}
def st(path, sd, meta):
    hdr, off = {"__metadata__": meta}, 0
    for k, t in sd.items():
        n = t.numel() * 4
        hdr[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for t in sd.values():
            f.write(t.numpy().tobytes())
for d in ("one", "alone", "two"):
    os.makedirs(os.path.join(w, d))
st(os.path.join(w, "one", "model.safetensors"), sd, {"format": "pt"})
torch.save(sd, os.path.join(w, "one", "pytorch_model.bin"))
st(os.path.join(w, "alone", "model.safetensors"), sd, {"format": "pt", "copy": "1"})
sd["layers.7.weight"] = torch.randn(rows, 1024, generator=g)
st(os.path.join(w, "two", "model.safetensors"), sd, {"format": "pt", "note": "tuned"})
PY
sync
now() { date +%s.%N; }
blobs() { du -sb "$1/blobs" | cut -f1; }
start() {
	"$B/modeld" -f --store "$1" --socket "$W/s.sock" --log-level error & PID=$!
	for _ in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.05; done
}
stop() { kill $PID; wait $PID 2>/dev/null || true; PID=; rm -f "$W/s.sock"; }
ctl() { "$B/modelctl" --socket "$W/s.sock" -q "$@" > /dev/null; }
# the safetensors file alone, for the time a plain import takes
start "$W/store0"
t0=$(now); ctl import "$W/alone" --name bench/alone; t1=$(now)
stop
start "$W/store"
t2=$(now); ctl import "$W/one" --name bench/one; t3=$(now)
s1=$(blobs "$W/store")
ctl import "$W/two" --name bench/two
s2=$(blobs "$W/store")
stop
orig=$(du -cb "$W/one/model.safetensors" "$W/one/pytorch_model.bin" | tail -1 | cut -f1)
st=$(stat -c %s "$W/one/model.safetensors")
printf 'weights                         %d MiB (8 F32 tensors)\n' "$SIZE_MB"
printf 'safetensors + torch originals   %d bytes\n' "$orig"
printf 'stored                          %d bytes  (%.3f of the originals, %.3f of one copy)\n' \
	"$s1" "$(echo "$s1 / $orig" | bc -l)" "$(echo "$s1 / $st" | bc -l)"
printf 'import time                     %.2f s   (safetensors alone: %.2f s)\n' \
	"$(echo "$t3 - $t2" | bc -l)" "$(echo "$t1 - $t0" | bc -l)"
printf 'second model, 1 of 8 new        store grew %d bytes  (%.3f of its %d)\n' \
	"$((s2 - s1))" "$(echo "($s2 - $s1) / $st" | bc -l)" "$st"
