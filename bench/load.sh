#!/bin/bash
# bench/load.sh — modeld.load_state_dict against a safetensors-style loader
# (bench/load.py): builds what it needs, generates an 8 GiB bf16 checkpoint
# (SIZE_MB=N to change), prints loader, warm GB/s, cold GB/s (cold needs root).
set -eu
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" build/modeld build/modelctl build/modeld-worker >/dev/null
mkdir -p "${BENCH_DIR:-/var/tmp/modeld-bench-load}"
exec /usr/bin/python3 bench/load.py "$@"
