#!/bin/bash
# Runs every test tier and ends with one line "N passed, N failed".
#   unit tests: build/tests/test_* and build/asan/tests/test_* (cmocka)
#   integration: tests/integration/test_*.py under Debian's python3 + pytest,
#                against build/modeld and build/modelctl on loopback.
# --integration-only skips the unit tiers. Extra args go to pytest.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
passed=0 failed=0
failures=()

run_unit_dir() {
	local dir=$1 label=$2
	for t in "$dir"/test_*; do
		[ -x "$t" ] || continue
		local out
		out=$(ASAN_OPTIONS=detect_leaks=1 CMOCKA_MESSAGE_OUTPUT=stdout "$t" 2>&1)
		local rc=$?
		local p f
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
		p=${p:-0}; f=${f:-0}
		if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
		passed=$((passed + p)); failed=$((failed + f))
		if [ "$f" -ne 0 ]; then
			failures+=("$label $(basename "$t")")
			printf '%s\n' "$out" | tail -40
		fi
		printf '%-6s %-32s %3d passed, %d failed\n' "$label" "$(basename "$t")" "$p" "$f"
	done
}

if [ "${1:-}" != "--integration-only" ]; then
	run_unit_dir build/tests unit
	run_unit_dir build/asan/tests asan
else
	shift
fi

if ls tests/integration/test_*.py >/dev/null 2>&1; then
	log=$(mktemp)
	$PY -m pytest -q -p no:cacheprovider tests/integration "$@" 2>&1 | tee "$log"
	line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|^(=+ )?no tests ran' "$log" | tail -1)
	p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); p=${p:-0}
	f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+'); f=${f:-0}
	e=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+'); e=${e:-0}
	passed=$((passed + p)); failed=$((failed + f + e))
	[ $((f + e)) -ne 0 ] && failures+=("integration")
	rm -f "$log"
	# the same daemon tests against the ASan+UBSan binaries (not the
	# valgrind or install tests, which need the plain build, nor the fuzz
	# harness build, which does not use the daemon)
	if [ -x build/asan/modeld ] && [ "${SKIP_ASAN_INTEGRATION:-}" != 1 ]; then
		log=$(mktemp)
		MODELD_BUILD=build/asan CRASH_ROUNDS=8 \
			$PY -m pytest -q -p no:cacheprovider tests/integration \
			-k "not valgrind and not install and not libmodeld_c_program and not pipelined_opens and not many_packs and not fuzz_harness" "$@" 2>&1 | tee "$log"
		line=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -1)
		p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); p=${p:-0}
		f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+'); f=${f:-0}
		e=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+'); e=${e:-0}
		passed=$((passed + p)); failed=$((failed + f + e))
		[ $((f + e)) -ne 0 ] && failures+=("integration (asan)")
		rm -f "$log"
	fi
fi

for x in "${failures[@]}"; do echo "FAILED: $x"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
