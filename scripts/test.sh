#!/usr/bin/env bash
# test.sh: runs every test. Installs missing packages, builds with gcc into
# build/ and runs the whole ctest suite (unit + integration), then builds with
# clang + ASan/UBSan (-DPGMUX_SANITIZE=ON) into build-asan/ and runs the suite
# again, there with the libFuzzer targets too (-DPGMUX_FUZZ=ON, ctest label
# "fuzz": corpus replay plus 30 s of fuzzing per target, test/fuzz/README.md);
# the integration harness fails a test when pgmux's output holds a
# sanitizer report. Exits non-zero on any failure and ends with one summary
# line: "test.sh: N passed, M failed". .ci/run execs this script.
# Extra arguments go to both ctest runs (e.g. -L unit, -R auth).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
LOGDIR=$ROOT/build-logs
mkdir -p "$LOGDIR"

passed=0
failed=0
steps=()
start_all=$SECONDS

note() { steps+=("$1"); echo "test.sh: $1"; }

# build <dir> <compiler> [cmake args...]
build() {
	local dir=$1 cc=$2 log=$LOGDIR/$(basename "$1").log t=$SECONDS
	shift 2
	echo "==> configure + build $dir ($cc)"
	if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" "$@" >"$log" 2>&1 &&
		cmake --build "$dir" -j"$JOBS" >>"$log" 2>&1; then
		note "build $dir: ok ($((SECONDS - t)) s)"
		return 0
	fi
	tail -60 "$log"
	note "build $dir: FAILED (log: ${log#"$ROOT"/})"
	failed=$((failed + 1))
	return 1
}

# run_ctest <dir> [ctest args...]: adds ctest's counts to the totals.
run_ctest() {
	local dir=$1 log=$LOGDIR/ctest-$(basename "$1").log t=$SECONDS rc summary p f total
	shift
	echo "==> ctest $dir"
	ctest --test-dir "$dir" --output-on-failure -j"$JOBS" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	summary=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
	if [ -n "$summary" ]; then
		f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
		total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
		p=$((total - f))
	else
		p=0
		f=1
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # ctest failed without running tests (e.g. none found)
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		f=1 # a suite that runs nothing is a failure, never a pass
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	note "ctest $dir: $p passed, $f failed ($((SECONDS - t)) s)"
}

"$ROOT/scripts/deps.sh" || { echo "test.sh: 0 passed, 1 failed (deps.sh)"; exit 1; }

# 1. gcc, plain build.
if build build gcc; then
	run_ctest build "$@"
fi

# 2. clang with AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzz
#    targets (their own instrumented copies of the libraries).
if build build-asan clang -DPGMUX_SANITIZE=ON -DPGMUX_FUZZ=ON; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_ctest build-asan "$@"
fi

echo
echo "==> summary ($((SECONDS - start_all)) s)"
for s in "${steps[@]}"; do
	echo "    $s"
done
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
