#!/bin/bash
# Builds the libFuzzer harnesses (clang -fsanitize=fuzzer,address,undefined)
# and runs each for SECONDS (default 60), starting from the seed corpus in
# tests/fuzz/corpus/<harness>/. New inputs go to build/fuzz/corpus-<harness>/
# ($FUZZ_BUILD instead of build/fuzz when set),
# crashes to build/fuzz/crash-<harness>-*. Prints the exec count per harness
# and exits nonzero if any harness crashed.
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}
[ -n "$secs" ] || secs=60
shift || true
all=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_||; s|\.c$||')
harnesses=${*:-$all}
CC=${FUZZ_CC:-clang}
B=${FUZZ_BUILD:-build/fuzz}
mkdir -p $B
PKGS="lmdb libcurl libarchive libgit2 jansson yaml-0.1 libcrypto libxxhash libmicrohttpd"
CFL="-std=c17 -g -O1 -D_GNU_SOURCE -I. $(pkg-config --cflags $PKGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
LIBS="$(pkg-config --libs $PKGS) -lpthread"
objs=()
# the newest header: an object older than it is rebuilt (a struct may have changed)
newest_h=$(ls -t common/*.h converters/*.h meta/*.h | head -1)
for f in common/*.c converters/*.c meta/card.c meta/config_facts.c meta/spdx.c meta/licdetect.c build/gen/license_corpus.c; do
	o=$B/obj/${f%.c}.o
	mkdir -p "$(dirname "$o")"
	if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ tests/fuzz/run.sh -nt "$o" ] || [ "$newest_h" -nt "$o" ]; then
		$CC $CFL -c -o "$o" "$f" || exit 1
	fi
	objs+=("$o")
done
status=0
for h in $harnesses; do
	src=tests/fuzz/fuzz_$h.c
	bin=$B/fuzz_$h
	$CC $CFL -fsanitize=fuzzer -o "$bin" "$src" "${objs[@]}" $LIBS || exit 1
	corp=$B/corpus-$h
	mkdir -p "$corp"
	log=$B/fuzz_$h.log
	seeds=tests/fuzz/corpus/$h
	[ -d "$seeds" ] || seeds=tests/data/${h}s   # fuzz_card: tests/data/cards
	[ -d "$seeds" ] || seeds=                   # none: start from the empty input
	"$bin" -max_total_time="$secs" -rss_limit_mb=4096 -max_len=262144 -timeout=20 \
		-artifact_prefix="$B/crash-$h-" -print_final_stats=1 "$corp" ${seeds:+"$seeds"} \
		>"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		status=1
		echo "fuzz_$h: CRASH after ${runs:-?} runs (rc $rc), see $log"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
	else
		echo "fuzz_$h: ${runs:-?} runs in ${secs}s, $cov, no crash"
	fi
done
exit $status
