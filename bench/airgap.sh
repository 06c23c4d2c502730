#!/bin/bash
# Air-gap benchmarks (issue 7), one run each, page cache warm for both sides:
#  1. the mirror serving one big file to curl on loopback vs nginx serving the
#     same bytes from a plain file (goal: >= 0.9x nginx's throughput);
#  2. modelctl export of the model vs tar -cf over the same files, plain and
#     with zstd -1 (goal: within 1.3x);
#  3. modelctl import of those bundles into a second store vs tar -xf (and
#     zstd -dc | tar -x) (goal: within 1.3x).
#   SIZE_MB=4096 (default) size of the weight file; KEEP=1 keeps the work dir.
#   ROUNDS=3 curl rounds per server (best of); PAIRS=2 alternating rounds
#   of each export/import comparison (best of each side).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-4096}
ROUNDS=${ROUNDS:-3}
B=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/var/tmp}/modeld-airgap.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$W/nginx/nginx.pid" ] && kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null || true
	wait 2>/dev/null || true
	[ "${KEEP:-}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

chmod 755 "$W"   # nginx workers may run as another user
SRC=$W/src; mkdir -p "$SRC"
# incompressible bytes, fast: AES-CTR keystream
(openssl enc -aes-128-ctr -pass pass:modeld -nosalt -pbkdf2 < /dev/zero 2>/dev/null || true) |
	head -c $((SIZE_MB * 1024 * 1024)) > "$SRC/model.safetensors"
echo '{"architectures":["LlamaForCausalLM"]}' > "$SRC/config.json"
printf -- '---\nlicense: apache-2.0\n---\n# bench\n' > "$SRC/README.md"
sync

HP=$(free_port)
"$B/modeld" -f --store "$W/store1" --socket "$W/s1.sock" --log-level error --http "127.0.0.1:$HP" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$W/s1.sock" ] && break; sleep 0.05; done
"$B/modelctl" --socket "$W/s1.sock" -q import "$SRC" --name bench/big > /dev/null

# --- 1. mirror vs nginx ----------------------------------------------------
NP=$(free_port)
mkdir -p "$W/nginx/www" "$W/nginx/tmp"
ln "$SRC/model.safetensors" "$W/nginx/www/model.safetensors" 2>/dev/null ||
	cp "$SRC/model.safetensors" "$W/nginx/www/model.safetensors"
cat > "$W/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  sendfile_max_chunk 0;   # nginx at its fastest: no per-call limit
  tcp_nopush on;
  client_body_temp_path $W/nginx/tmp; proxy_temp_path $W/nginx/tmp;
  fastcgi_temp_path $W/nginx/tmp; uwsgi_temp_path $W/nginx/tmp; scgi_temp_path $W/nginx/tmp;
  server { listen 127.0.0.1:$NP; root $W/nginx/www; }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log"
sleep 0.3
speed() { curl -s -o /dev/null -w '%{speed_download}' "$1"; }
best_m=0 best_n=0
for r in $(seq "$ROUNDS"); do
	n=$(speed "http://127.0.0.1:$NP/model.safetensors")
	m=$(speed "http://127.0.0.1:$HP/bench/big/resolve/main/model.safetensors")
	best_n=$(echo "if ($n > $best_n) $n else $best_n" | bc -l)
	best_m=$(echo "if ($m > $best_m) $m else $best_m" | bc -l)
	printf 'round %d: nginx %.0f MiB/s, mirror %.0f MiB/s\n' "$r" "$(echo "$n/1048576" | bc -l)" "$(echo "$m/1048576" | bc -l)"
done
printf 'mirror vs nginx (%d MiB, best of %d): nginx %.0f MiB/s, mirror %.0f MiB/s, ratio %.2fx (goal >= 0.90x)\n' \
	"$SIZE_MB" "$ROUNDS" "$(echo "$best_n/1048576" | bc -l)" "$(echo "$best_m/1048576" | bc -l)" \
	"$(echo "$best_m / $best_n" | bc -l)"
kill "$(cat "$W/nginx/nginx.pid")"; rm -f "$W/nginx/www/model.safetensors"

# --- 2. export vs tar (+ zstd -1) ------------------------------------------
# Every timed step starts clean and ends with sync, so both sides pay for
# their writes reaching the disk. This VM's disk throughput drifts a lot
# over a run, so the two sides alternate (A B A B ...) and each keeps its
# best time.
t1() { local t0; sync; t0=$(now); eval "$1" > /dev/null; sync; echo "$(now) - $t0" | bc -l; }
# ab NAME "CMD A" "CMD B" ["PRE A" "PRE B"]: sets NAME_a and NAME_b (best of PAIRS)
PAIRS=${PAIRS:-2}
ab() {
	local ba=999999 bb=999999 x
	for _ in $(seq "$PAIRS"); do
		[ -n "${4:-}" ] && eval "$4"
		x=$(t1 "$2"); ba=$(echo "if ($x < $ba) $x else $ba" | bc -l)
		[ -n "${5:-}" ] && eval "$5"
		x=$(t1 "$3"); bb=$(echo "if ($x < $bb) $x else $bb" | bc -l)
	done
	printf -v "${1}_a" '%s' "$ba"
	printf -v "${1}_b" '%s' "$bb"
}
CTL1="'$B/modelctl' --socket '$W/s1.sock' -q"
ab exp "tar -cf '$W/tar.tar' -C '$SRC' ." "$CTL1 export bench/big -o '$W/b.tar'"
ab expz "tar -cf - -C '$SRC' . | zstd -1 -q -f -o '$W/tar.tar.zst'" "$CTL1 export bench/big -o '$W/b.tar.zst'"
printf 'export  plain: tar -cf %.2f s, modelctl export %.2f s, ratio %.2fx (goal <= 1.30x)\n' "$exp_a" "$exp_b" "$(echo "$exp_b / $exp_a" | bc -l)"
printf 'export  zstd:  tar|zstd -1 %.2f s, modelctl export %.2f s, ratio %.2fx (goal <= 1.30x)\n' "$expz_a" "$expz_b" "$(echo "$expz_b / $expz_a" | bc -l)"
rm -f "$W/tar.tar" "$W/tar.tar.zst"

# --- 3. import vs tar -x (+ zstd -dc) --------------------------------------
"$B/modeld" -f --store "$W/store2" --socket "$W/s2.sock" --log-level error &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$W/s2.sock" ] && break; sleep 0.05; done
CTL2="'$B/modelctl' --socket '$W/s2.sock' -q"
CLEAN_X="rm -rf '$W/x1'; mkdir -p '$W/x1'"
CLEAN_S="$CTL2 rm bench/big > /dev/null 2>&1 || true"
ab imp "tar -xf '$W/b.tar' -C '$W/x1'" "$CTL2 import '$W/b.tar'" "$CLEAN_X" "rm -rf '$W/x1'; $CLEAN_S"
ab impz "zstd -dc -q '$W/b.tar.zst' | tar -xf - -C '$W/x1'" "$CTL2 import '$W/b.tar.zst'" "$CLEAN_X" "rm -rf '$W/x1'; $CLEAN_S"
printf 'import  plain: tar -xf %.2f s, modelctl import %.2f s, ratio %.2fx (goal <= 1.30x)\n' \
	"$imp_a" "$imp_b" "$(echo "$imp_b / $imp_a" | bc -l)"
printf 'import  zstd:  zstd -dc|tar -x %.2f s, modelctl import %.2f s, ratio %.2fx (goal <= 1.30x)\n' \
	"$impz_a" "$impz_b" "$(echo "$impz_b / $impz_a" | bc -l)"
echo "(each timing includes a final sync; import also verifies the sha256 of every byte)"
