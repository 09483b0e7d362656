#!/usr/bin/env bash
# run_fuzz.sh: how ctest runs the libFuzzer targets (see CMakeLists.txt).
#
#   run_fuzz.sh replay BIN CORPUS
#       runs every input in CORPUS once, without mutating: the regression
#       test of the checked-in corpus; deterministic and quick.
#   run_fuzz.sh fuzz BIN CORPUS WORK SECONDS DICT ARTIFACT_PREFIX
#       mutates for SECONDS, starting from CORPUS, which is only read; new
#       inputs go to WORK (emptied first) and a crash, leak or timeout to
#       ARTIFACT_PREFIX<kind>-<sha1>.
#
# Exits non-zero on a crash, a sanitizer report, a leak or a timeout.
set -euo pipefail

mode=$1 bin=$2 corpus=$3
# -timeout: one input must never take 10 s (a hang in pgmux);
# -rss_limit_mb: nor grow the process past 1 GB (unbounded buffering).
common=(-timeout=10 -rss_limit_mb=1024)

case $mode in
replay)
	shopt -s nullglob
	files=("$corpus"/*)
	if [ ${#files[@]} -eq 0 ]; then
		echo "run_fuzz.sh: $corpus is empty" >&2
		exit 1
	fi
	echo "run_fuzz.sh: replaying ${#files[@]} inputs from $corpus"
	exec "$bin" "${common[@]}" "${files[@]}"
	;;
fuzz)
	work=$4 seconds=$5 dict=$6 prefix=$7
	rm -rf "$work"
	mkdir -p "$work" "$(dirname "$prefix")"
	exec "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
		-dict="$dict" -artifact_prefix="$prefix" "$work" "$corpus"
	;;
*)
	echo "usage: $0 replay BIN CORPUS | fuzz BIN CORPUS WORK SECONDS DICT ARTIFACT_PREFIX" >&2
	exit 2
	;;
esac
