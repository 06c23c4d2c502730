#!/bin/bash
# bench/git.sh — pulling an LFS-backed model from a loopback git host
# (tests/fixtures/githost.py: git http-backend behind nginx + fcgiwrap, LFS
# batch API, objects served by nginx) with `modelctl pull git+http://...`
# versus `git lfs clone` of the same repository, in the same run.
#   SIZE_MB=2048 REPEAT=1 BENCH_DIR=/tmp/md-gitbench bench/git.sh
# The model: 4 safetensors shards (SIZE_MB in all) + config, tokenizer and
# README, the shards as LFS pointers. modeld verifies every object against
# its oid, converts the shards into packs and fsyncs; git lfs clone verifies
# and checks the files out (every byte written twice: .git/lfs/objects and
# the checkout), so `git clone` with GIT_LFS_SKIP_SMUDGE=1 + `git lfs fetch`
# (objects only) is timed too. All write to the same filesystem (BENCH_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SIZE_MB=${SIZE_MB:-2048}
REPEAT=${REPEAT:-1}
W=${BENCH_DIR:-$(mktemp -d /tmp/md-gitbench-XXXXXX)}
PY=/usr/bin/python3
mkdir -p "$W"
W=$(cd "$W" && pwd)
make -s -j2 >/dev/null

HOST=$W/host
if [ "$(cat "$W/size" 2>/dev/null)" != "$SIZE_MB" ]; then
	rm -rf "$HOST" "$W/work"
	echo "generating a ${SIZE_MB} MiB LFS model..." >&2
	mkdir -p "$HOST/lfs" "$HOST/repos/acme" "$W/work"
	$PY - "$W/work" "$HOST/lfs" "$SIZE_MB" <<'PYEOF'
import hashlib, json, os, struct, sys
work, lfs, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
shards = 4
per = size_mb * 1048576 // shards
for i in range(shards):
    n = per // 2 * 2
    hdr = json.dumps({f"layer{i}.weight": {"dtype": "F16", "shape": [n // 2], "data_offsets": [0, n]}}).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    tmp = os.path.join(lfs, "tmp")
    h = hashlib.sha256()
    with open(tmp, "wb") as f:
        head = struct.pack("<Q", len(hdr)) + hdr
        f.write(head); h.update(head)
        left = n
        while left:
            b = os.urandom(min(left, 8 << 20))
            f.write(b); h.update(b); left -= len(b)
    oid = h.hexdigest()
    total = 8 + len(hdr) + n
    os.rename(tmp, os.path.join(lfs, oid))
    name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
    with open(os.path.join(work, name), "w") as f:
        f.write(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {total}\n")
with open(os.path.join(work, "config.json"), "w") as f:
    f.write('{"architectures":["LlamaForCausalLM"],"hidden_size":4096}\n')
with open(os.path.join(work, "tokenizer.json"), "w") as f:
    f.write('{"version":"1.0"}\n')
with open(os.path.join(work, "README.md"), "w") as f:
    f.write("---\nlicense: apache-2.0\n---\n# big\n")
with open(os.path.join(work, ".gitattributes"), "w") as f:
    f.write("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
PYEOF
	export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.org
	git -C "$W/work" init -q -b main
	git -C "$W/work" -c filter.lfs.clean= -c filter.lfs.smudge= -c filter.lfs.required=false add -A
	git -C "$W/work" commit -q -m big
	git clone -q --bare "$W/work" "$HOST/repos/acme/big.git"
	echo "$SIZE_MB" >"$W/size"
fi

$PY tests/fixtures/githost.py --root "$HOST" >"$W/port" &
GH=$!
trap 'kill $GH 2>/dev/null || true; [ -n "${MD:-}" ] && kill $MD 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$W/port")/acme/big.git
TOTAL=$(du -sb "$HOST/lfs" | cut -f1)
now() { date +%s.%N; }
rate() { $PY -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{t:7.2f} s  {int(sys.argv[3])/t/1048576:8.1f} MiB/s')" "$@"; }

for r in $(seq "$REPEAT"); do
	# git lfs clone (git-lfs's default 8 concurrent transfers)
	rm -rf "$W/clone"; sync
	t0=$(now)
	GIT_TERMINAL_PROMPT=0 HOME=$W git lfs clone -q "$URL" "$W/clone" 2>/dev/null
	sync
	t1=$(now)
	echo "git lfs clone           : $(rate "$t0" "$t1" "$TOTAL")"
	G=$($PY -c "print(float('$t1') - float('$t0'))")

	# objects only, no checkout: clone without smudging, then git lfs fetch
	rm -rf "$W/clone"; sync
	t0=$(now)
	GIT_LFS_SKIP_SMUDGE=1 GIT_TERMINAL_PROMPT=0 HOME=$W git clone -q "$URL" "$W/clone" 2>/dev/null
	(cd "$W/clone" && HOME=$W git lfs fetch -q 2>/dev/null >/dev/null || HOME=$W git lfs fetch >/dev/null 2>&1)
	sync
	t1=$(now)
	echo "git clone + lfs fetch   : $(rate "$t0" "$t1" "$TOTAL")   (objects only, no checkout)"
	rm -rf "$W/clone"

	# modelctl pull git+http (fresh store each time: fetch, batch, download,
	# verify, convert, commit)
	rm -rf "$W/store"; sync
	./build/modeld -f --store "$W/store" --socket "$W/md.sock" --log-level warn >"$W/modeld.log" 2>&1 &
	MD=$!
	for _ in $(seq 100); do ./build/modelctl --socket "$W/md.sock" status >/dev/null 2>&1 && break; sleep 0.05; done
	t0=$(now)
	./build/modelctl --socket "$W/md.sock" pull "git+$URL" -q
	sync
	t1=$(now)
	echo "modelctl pull git+http  : $(rate "$t0" "$t1" "$TOTAL")"
	M=$($PY -c "print(float('$t1') - float('$t0'))")
	kill $MD; wait $MD 2>/dev/null || true; MD=
	$PY -c "print(f'ratio modeld / git lfs clone: {float(\"$M\") / float(\"$G\"):.2f}x')"
done
