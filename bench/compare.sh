#!/usr/bin/env bash
# bench/compare.sh: PostgreSQL directly, pgmux and PgBouncer side by side, driven by pgmux-load.
#
# Starts a throwaway PostgreSQL 15 (loopback, free port, max_connections = 150) and, for every
# point, a fresh pgmux or PgBouncer with the same pool (transaction mode, default_pool_size = 20)
# and the same auth (md5 by default, on both sides). For each workload (select, tx) and each
# client count (10, 100, 1000, 10000) it runs the three targets one after the other (the two
# poolers alternate which goes first), each for COMPARE_SECONDS, and records:
#   - connected / failed connections by cause (PostgreSQL directly cannot take 1,000 clients:
#     what happens is reported, not skipped);
#   - TPS, latency p50 / p99 (pgmux-load's report, whole run, ramp-up included);
#   - per pooler: CPU microseconds per transaction (utime+stime from /proc/PID/stat before and
#     after the run, divided by the transactions completed; the logins are included) and RSS
#     bytes per connected client ((VmHWM after − VmRSS before) / peak connected clients).
# Writes a markdown table to bench/out/compare.md and a gnuplot PNG of TPS and p99 against
# clients to bench/out/compare.png, then copies them to bench/RESULTS.md and bench/results.png
# (unless COMPARE_NO_RESULTS is set). Logs and every pgmux-load report (text, JSON, CSV) are
# copied to bench/out/logs-compare/. See bench/README.md.
#
# Environment (all optional):
#   COMPARE_SECONDS=10               length of each point (pgmux-load --duration)
#   COMPARE_CLIENTS="10 100 1000 10000"
#   COMPARE_WORKLOADS="select tx"    pgmux-load workloads
#   COMPARE_TARGETS="direct pgmux pgbouncer"
#   COMPARE_AUTH=md5                 md5 or scram-sha-256 (SCRAM makes 10k logins take 35-90 s)
#   COMPARE_POOL_SIZE=20             default_pool_size of both poolers
#   COMPARE_PG_MAX_CONNECTIONS=150   PostgreSQL max_connections
#   COMPARE_CONNECT_RATE=5000/s      pgmux-load --connect-rate
#   COMPARE_PROCS_FROM=1000          use pgmux-load --procs 2 from this many clients on
#   COMPARE_SOURCE_ADDRS=127.0.0.1-127.0.0.4  --source-addrs from COMPARE_SOURCES_FROM clients on
#   COMPARE_SOURCES_FROM=5000
#   COMPARE_NO_RESULTS=1             do not overwrite bench/RESULTS.md and bench/results.png
#   COMPARE_REBUILD=1                run the cmake build even if the binaries exist
#   PGMUX_BIN=path, PGMUX_LOAD=path  binaries (default: build/pgmux, build/tools/pgmux-load)
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB_TAG=compare
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
LOGS_DEST="$OUT/logs-compare"
SECS=${COMPARE_SECONDS:-10}
CLIENTS=${COMPARE_CLIENTS:-"10 100 1000 10000"}
WORKLOADS=${COMPARE_WORKLOADS:-"select tx"}
TARGETS=${COMPARE_TARGETS:-"direct pgmux pgbouncer"}
AUTH=${COMPARE_AUTH:-md5}
POOL_SIZE=${COMPARE_POOL_SIZE:-20}
PG_MAX_CONNECTIONS=${COMPARE_PG_MAX_CONNECTIONS:-150}
PG_AUTH=$AUTH
RATE=${COMPARE_CONNECT_RATE:-5000/s}
PROCS_FROM=${COMPARE_PROCS_FROM:-1000}
SOURCE_ADDRS=${COMPARE_SOURCE_ADDRS:-127.0.0.1-127.0.0.4}
SOURCES_FROM=${COMPARE_SOURCES_FROM:-5000}
LOAD_BIN=${PGMUX_LOAD:-$REPO/build/tools/pgmux-load}
MAXN=0
for n in $CLIENTS; do [[ $n -gt $MAXN ]] && MAXN=$n; done
MAX_CLIENT_CONN=$((MAXN + 200))
LISTEN_BACKLOG=1024
POOLER_EXTRA_CONF="admin_users = bench"
T_START=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
case $AUTH in md5 | scram-sha-256) ;; *) die "COMPARE_AUTH must be md5 or scram-sha-256" ;; esac
NAME[direct]="PostgreSQL"
mkdir -p "$OUT"

# ---------------------------------------------------------------- install ---
if command -v dpkg-query >/dev/null; then
	apt_install_missing postgresql-15 postgresql-client-15 pgbouncer gnuplot-nox procps util-linux iproute2 jq libpq-dev ||
		die "install the packages above first"
fi
for f in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBOUNCER_BIN"; do [[ -x $f ]] || die "$f not found"; done
for c in psql jq ss gnuplot setpriv runuser; do command -v "$c" >/dev/null || die "$c not found"; done

if [[ -n ${COMPARE_REBUILD:-} || ! -x $PGMUX_BIN || ! -x $LOAD_BIN ]] &&
	[[ $PGMUX_BIN == "$REPO/build/pgmux" || $LOAD_BIN == "$REPO/build/tools/pgmux-load" ]]; then
	log "building pgmux and pgmux-load (log: bench/out/build-compare.log)"
	build_targets "$OUT/build-compare.log" pgmux pgmux-load ||
		{ tail -n 15 "$OUT/build-compare.log" >&2; die "build failed"; }
fi
[[ -x $PGMUX_BIN ]] || die "$PGMUX_BIN not found"
[[ -x $LOAD_BIN ]] || die "$LOAD_BIN not found"
BUILD_NOTE=""
if [[ -f $REPO/build/CMakeCache.txt ]]; then
	grep -q '^PGMUX_SANITIZE:BOOL=ON' "$REPO/build/CMakeCache.txt" && BUILD_NOTE="build/ has sanitizers on: pgmux figures are not representative"
	grep -q '^CMAKE_BUILD_TYPE:STRING=Debug' "$REPO/build/CMakeCache.txt" && BUILD_NOTE="build/ is a Debug build: pgmux figures are not representative"
fi
sn=$(stale_notes)
[[ -n $sn ]] && BUILD_NOTE="${BUILD_NOTE:+$BUILD_NOTE; }$sn (set COMPARE_REBUILD=1 to rebuild)"
[[ -n $BUILD_NOTE ]] && loud "$BUILD_NOTE"
BUSY_NOTE=""
if awk -v l="${LOADAVG_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n * 0.5) }'; then
	BUSY_NOTE="the machine was busy before the run (load average $LOADAVG_START on $(nproc) CPUs): compare the targets within this run only"
	loud "$BUSY_NOTE"
fi

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((MAXN + 100)) ]]; then
	log "warning: open-file limit $(ulimit -n) is below $((MAXN + 100)); the poolers cannot hold $MAXN clients"
fi

# ------------------------------------------------------------- setup ---
lib_workspace
pg_start
# --source-addrs makes clients come from 127.0.0.2...: let them in too.
echo "host all all 127.0.0.0/8 $AUTH" >>"$PGDATA/pg_hba.conf"
psql_admin "SELECT pg_reload_conf()" >/dev/null
write_userlist
L="$TMP/logs"

# load NAME PORT ARGS...: pgmux-load against 127.0.0.1:PORT; report in $L/NAME.{txt,json,csv}.
load() {
	local name=$1 port=$2; shift 2
	timeout -s INT $((SECS + 120)) "$LOAD_BIN" "host=127.0.0.1 port=$port dbname=bench user=bench" \
		--admin-user bench --json "$L/$name.json" --csv "$L/$name.csv" "$@" \
		>"$L/$name.txt" 2>"$L/$name.err" ||
		log "pgmux-load ($name) exited non-zero: $(head -c 300 "$L/$name.err")"
}
# j NAME FILTER: a value from a pgmux-load JSON report (empty if missing).
j() { jq -r "($2) // empty" "$L/$1.json" 2>/dev/null || true; }
causes() {
	jq -r '.connections.failed_by_cause as $c | ($c | to_entries
		| map(select(.value != 0 and (.value | type) == "number")) | map("\(.key) \(.value)") | join(", "))
		+ ($c.other_messages | map(" (other: \(.message | gsub("\n"; " ")) ×\(.count))") | join(""))' \
		"$L/$1.json" 2>/dev/null || true
}

# Create pgmux-load's TPC-B tables and warm PostgreSQL, directly.
log "warm-up: pgmux-load tx and select, 4 clients, 3 s each, straight to PostgreSQL"
load warmup-tx "$PGPORT" --clients 4 --duration 3s --workload tx
load warmup-select "$PGPORT" --clients 4 --duration 3s --workload select

PG_BACKLOG=$(ss -Hltn "sport = :$PGPORT" | awk '{ print $3; exit }')
pg_settle_init  # baseline for pg_settle: PostgreSQL's backends once the warm-up has left

declare -A R
# measure TARGET WORKLOAD N: one point; fills R[W:N:TARGET:*].
measure() {
	local t=$1 w=$2 n=$3 name="$2-$3-$1" port pid="" args=() c0 c1 r0 h1 txns peak
	net_settle
	R[$w:$n:$t:netsettle]=$NET_SETTLE_S
	if [[ ${NET_SETTLE_S%.*} -ge 2 ]]; then
		log "waited $NET_SETTLE_S s for the last run's TIME-WAIT sockets to go before $t"
	fi
	if [[ $t == direct ]]; then
		port=$PGPORT
	else
		if ! start_pooler "$t" "$w-$n" "$AUTH"; then
			R[$w:$n:$t:note]="did not start"
			return 0
		fi
		port=${PORT[$t]} pid=${PID[$t]}
		sleep 0.3
		r0=$(rss_bytes "$pid")
		c0=$(cpu_ticks "$pid")
	fi
	args=(--clients "$n" --connect-rate "$RATE" --duration "${SECS}s" --workload "$w")
	[[ $n -ge $PROCS_FROM ]] && args+=(--procs 2)
	[[ $n -ge $SOURCES_FROM && -n $SOURCE_ADDRS ]] && args+=(--source-addrs "$SOURCE_ADDRS")
	load "$name" "$port" "${args[@]}"
	if [[ -n $pid ]]; then
		c1=$(cpu_ticks "$pid")
		h1=$(hwm_bytes "$pid")
		stop_pooler "$t"
	fi
	R[$w:$n:$t:connected]=$(j "$name" .connections.connected)
	R[$w:$n:$t:failed]=$(j "$name" .connections.failed)
	R[$w:$n:$t:causes]=$(causes "$name")
	R[$w:$n:$t:tps]=$(j "$name" '.transactions.tps | round')
	R[$w:$n:$t:txns]=$(j "$name" .transactions.completed)
	R[$w:$n:$t:txfailed]=$(j "$name" .transactions.failed)
	R[$w:$n:$t:p50]=$(j "$name" '.transactions.latency_us.p50 / 1000 * 100 | round / 100')
	R[$w:$n:$t:p99]=$(j "$name" '.transactions.latency_us.p99 / 1000 * 100 | round / 100')
	# From the timeline: when every client had connected or failed, and the mean TPS of the
	# seconds after that (the first such second left out, and the empty tick after the end).
	R[$w:$n:$t:ramp]=$(awk -F, -v n="$n" 'NR > 1 && $3 == 0 && $2 + $4 >= n { printf "%.1f", $1; exit }' "$L/$name.csv" 2>/dev/null || true)
	R[$w:$n:$t:steady]=$(awk -F, -v n="$n" -v dur="$SECS" 'NR > 1 && $3 == 0 && $2 + $4 >= n && $1 <= dur + 0.5 && !($1 > dur && $5 == 0) {
		if (!seen) { seen = 1; next } s += $5; k++ } END { if (k) printf "%.0f", s / k }' "$L/$name.csv" 2>/dev/null || true)
	txns=${R[$w:$n:$t:txns]:-0}
	peak=$(j "$name" .connections.peak_connected)
	if [[ -n $pid ]]; then
		[[ $txns -gt 0 && $c0 -ge 0 && $c1 -ge 0 ]] &&
			R[$w:$n:$t:cpu]=$(calc 'printf "%.1f", (c1 - c0) * 1e6 / hz / tx' c0="$c0" c1="$c1" hz="$CLK_TCK" tx="$txns")
		[[ ${peak:-0} -gt 0 && $h1 -gt 0 ]] &&
			R[$w:$n:$t:rss]=$(calc 'printf "%.0f", (h - r) / p' h="$h1" r="$r0" p="$peak")
		R[$w:$n:$t:rss0]=$r0 R[$w:$n:$t:hwm]=$h1 R[$w:$n:$t:cpu_s]=$(calc 'printf "%.2f", (c1 - c0) / hz' c0="$c0" c1="$c1" hz="$CLK_TCK")
	fi
	log "$(printf '%-10s %-6s %5s clients: connected %5s failed %5s  %8s tps  p50 %8s ms  p99 %8s ms  CPU %6s us/txn  RSS %5s B/client %s' \
		"${NAME[$t]}" "$w" "$n" "${R[$w:$n:$t:connected]:-?}" "${R[$w:$n:$t:failed]:-?}" "${R[$w:$n:$t:tps]:-?}" \
		"${R[$w:$n:$t:p50]:-?}" "${R[$w:$n:$t:p99]:-?}" "${R[$w:$n:$t:cpu]:--}" "${R[$w:$n:$t:rss]:--}" "${R[$w:$n:$t:causes]:-}")"
	pg_settle
	R[$w:$n:$t:settle]=$SETTLE_S
	if [[ ${SETTLE_S%.*} -ge 2 ]]; then
		log "PostgreSQL needed $SETTLE_S s to drain the queued connections and exiting backends left by this run"
	fi
}

point=0
for w in $WORKLOADS; do
	for n in $CLIENTS; do
		order=()
		for t in $TARGETS; do [[ $t == direct ]] && order+=(direct); done
		# the poolers alternate which goes first
		if ((point % 2 == 0)); then pair=(pgmux pgbouncer); else pair=(pgbouncer pgmux); fi
		for t in "${pair[@]}"; do [[ " $TARGETS " == *" $t "* ]] && order+=("$t"); done
		for t in "${order[@]}"; do measure "$t" "$w" "$n"; done
		point=$((point + 1))
	done
done

# ------------------------------------------------------------- report ---
# waits KEY PREFIX: "PREFIX<target> <workload> <clients> clients: N s, ..." for the points whose
# R[...:KEY] wait was 2 s or more.
waits() {
	local w n t sv out=""
	for w in $WORKLOADS; do
		for n in $CLIENTS; do
			for t in $TARGETS; do
				sv=${R[$w:$n:$t:$1]:-0}
				[[ ${sv%.*} -ge 2 ]] && out+="${out:+, }$2${NAME[$t]} $w $n clients: $sv s"
			done
		done
	done
	printf '%s' "$out"
}
T_END=$(date +%s)
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
v() { local x=${R[$1]:-}; printf '%s' "${x:-—}"; }
PGMUX_VER="$("$PGMUX_BIN" --version 2>/dev/null | head -n1 || true) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
PGB_VER=$("$PGBOUNCER_BIN" --version | head -n1)
STAMP="$(date -u '+%Y-%m-%d %H:%M UTC')"

# Plot data: one file per workload and target: clients, TPS, p99 ms, label (only points with
# transactions; the label says how many clients got in when some did not).
for w in $WORKLOADS; do
	for t in $TARGETS; do
		: >"$TMP/plot-$w-$t.dat"
		for n in $CLIENTS; do
			if [[ -n ${R[$w:$n:$t:tps]:-} && ${R[$w:$n:$t:txns]:-0} -gt 0 ]]; then
				label=""
				[[ ${R[$w:$n:$t:failed]:-0} != 0 ]] && label="${R[$w:$n:$t:connected]:-?}/$n connected"
				echo "$n ${R[$w:$n:$t:tps]} ${R[$w:$n:$t:p99]} \"$label\"" >>"$TMP/plot-$w-$t.dat"
			fi
		done
	done
done
PLOT_OK=0
{
	echo "set terminal pngcairo size 1400,1000 font 'sans,11'"
	echo "set output '$OUT/compare.png'"
	echo "set multiplot layout 2,2 title 'PostgreSQL directly vs pgmux vs PgBouncer (pool $POOL_SIZE, auth $AUTH, ${SECS} s per point; $STAMP)'"
	echo "set logscale x; set xlabel 'clients'; set grid; set key top right"
	echo "set xrange [5:40000]; set xtics ('10' 10, '100' 100, '1,000' 1000, '10,000' 10000)"
	echo "set style line 1 lc rgb '#888888' lw 2 pt 7 ps 1.3"
	echo "set style line 2 lc rgb '#1f77b4' lw 2 pt 5 ps 1.3"
	echo "set style line 3 lc rgb '#d62728' lw 2 pt 9 ps 1.3"
	for metric in tps p99; do
		for w in $WORKLOADS; do
			if [[ $metric == tps ]]; then
				echo "unset logscale y; set yrange [0:*]; set ylabel 'TPS'; set title '$w: TPS (whole run)'"
				col=2
			else
				echo "set logscale y; set yrange [*:*]; set ylabel 'p99 latency, ms'; set title '$w: p99 latency'"
				col=3
			fi
			plots=()
			i=0
			for t in $TARGETS; do
				i=$((i + 1))
				ls=1
				[[ $t == pgmux ]] && ls=2
				[[ $t == pgbouncer ]] && ls=3
				if [[ -s $TMP/plot-$w-$t.dat ]]; then
					plots+=("'$TMP/plot-$w-$t.dat' using 1:$col with linespoints ls $ls title '${NAME[$t]}'")
					plots+=("'' using 1:$col:4 with labels offset char 0,-1.2 font ',9' textcolor ls $ls notitle")
				fi
			done
			if [[ ${#plots[@]} -gt 0 ]]; then
				(IFS=,; echo "plot ${plots[*]}")
			fi
		done
	done
	echo "unset multiplot"
} >"$TMP/plot.gp"
if gnuplot "$TMP/plot.gp" >"$L/gnuplot.log" 2>&1; then
	PLOT_OK=1
else
	log "gnuplot failed: $(head -c 300 "$L/gnuplot.log")"
fi

{
	echo "# PostgreSQL directly vs pgmux vs PgBouncer"
	echo
	echo "$STAMP, \`bench/compare.sh\`, $((T_END - T_START)) s"
	echo
	echo "- machine: $(machine_line), CLK_TCK $CLK_TCK; load average before the run $LOADAVG_START, after $LOADAVG_END (the machine is shared with other engineers' test runs)"
	echo "- versions: $("$PGBIN/postgres" --version); $PGB_VER; $PGMUX_VER; pgmux-load with libpq $(pkg-config --modversion libpq 2>/dev/null || echo '?')"
	echo "- setup: PostgreSQL max_connections = $PG_MAX_CONNECTIONS (3 reserved for superusers; listen backlog $PG_BACKLOG), shared_buffers = 256MB, fsync off; both poolers pool_mode = transaction, default_pool_size = $POOL_SIZE, max_client_conn = $MAX_CLIENT_CONN, listen_backlog = $LISTEN_BACKLOG, auth_type = $AUTH (userlist with the plain password; the poolers log in to PostgreSQL with $AUTH too); a fresh pooler process for every point; loopback TCP, sslmode=disable"
	echo "- load: \`pgmux-load --clients N --connect-rate $RATE --duration ${SECS}s --workload W\`, \`--procs 2\` from $PROCS_FROM clients, \`--source-addrs $SOURCE_ADDRS\` from $SOURCES_FROM; pgmux-load, the pooler and PostgreSQL share the same $(nproc) CPUs"
	echo "- workloads: \`select\` = \`SELECT 1\` back to back; \`tx\` = TPC-B-like (BEGIN; UPDATE account; SELECT; UPDATE one of 10 branches; COMMIT as one simple query; the 10 branch rows are contended)"
	echo "- TPS and latency: pgmux-load's figures over the whole run, ramp-up (connecting N clients at $RATE) included; latency is per transaction, pool wait included, for the clients that connected. \"all in after\": the second of pgmux-load's timeline (\`--csv\`) from which every client had connected or failed (— if some were still connecting at the end); \"TPS after that\": the mean of the later seconds, the first one left out"
	echo "- pooler CPU µs/txn: the pooler's utime+stime (/proc/PID/stat) over the run ÷ transactions completed (N logins included); RSS B/client: (VmHWM after the run − VmRSS before) ÷ peak connected clients"
	[[ -n $BUILD_NOTE ]] && echo "- **$BUILD_NOTE**"
	[[ -n $BUSY_NOTE ]] && echo "- **warning: $BUSY_NOTE**"
	echo
	echo "| workload | clients | target | connected | failed (cause) | TPS | all in after, s | TPS after that | p50 ms | p99 ms | pooler CPU µs/txn | pooler RSS B/client |"
	echo "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	for w in $WORKLOADS; do
		for n in $CLIENTS; do
			for t in $TARGETS; do
				if [[ -n ${R[$w:$n:$t:note]:-} ]]; then
					echo "| $w | $n | ${NAME[$t]} | ${R[$w:$n:$t:note]} | | | | | | | | |"
					continue
				fi
				f=$(v "$w:$n:$t:failed")
				[[ -n ${R[$w:$n:$t:causes]:-} ]] && f="$f (${R[$w:$n:$t:causes]})"
				tf=""
				[[ ${R[$w:$n:$t:txfailed]:-0} != 0 ]] && tf=" (${R[$w:$n:$t:txfailed]} failed)"
				echo "| $w | $n | ${NAME[$t]} | $(v "$w:$n:$t:connected") | $f | $(v "$w:$n:$t:tps")$tf | $(v "$w:$n:$t:ramp") | $(v "$w:$n:$t:steady") | $(v "$w:$n:$t:p50") | $(v "$w:$n:$t:p99") | $(v "$w:$n:$t:cpu") | $(v "$w:$n:$t:rss") |"
			done
		done
	done
	echo
	if [[ $PLOT_OK -eq 1 ]]; then
		echo "![TPS and p99 against clients](results.png)"
		echo
	fi
	settle_notes=$(waits settle "")
	net_notes=$(waits netsettle "before ")
	if [[ -n $net_notes ]]; then
		echo "Each target starts once the TIME-WAIT sockets of the run before are nearly gone (under 500): a target started right after a 10,000-client run ran at a fraction of its TPS, whichever pooler it was (waits: $net_notes)."
		echo
	fi
	if [[ -n $settle_notes ]]; then
		echo "After some runs PostgreSQL needed a while to drain the connections still queued on its listener and the backends still exiting; the next target was started only after that (time to drain: $settle_notes)."
		echo
	fi
	echo "Caveats: pgmux-load, the pooler and PostgreSQL share the same $(nproc) CPUs, and the machine is shared with other test runs (see the load averages above), so TPS is the machine's and moves between runs, most at 10,000 clients, where the 10 s include seconds of logins. Compare the targets within one run. PostgreSQL's rows at 1,000 and 10,000 clients are for the clients it let in: its listen backlog overflows under a burst of connects, most of the rest are still in SYN retransmission when the run ends (\`unfinished\`), and every connection it does accept costs it a process, refused or not. RSS per client at 10 and 100 clients is mostly the first allocations of a fresh process. See bench/README.md."
	echo
	echo "<details><summary>raw pooler figures</summary>"
	echo
	echo "| workload | clients | pooler | transactions | pooler CPU s | VmRSS before | VmHWM after |"
	echo "|---|---:|---|---:|---:|---:|---:|"
	for w in $WORKLOADS; do
		for n in $CLIENTS; do
			for t in $TARGETS; do
				[[ $t == direct ]] && continue
				echo "| $w | $n | ${NAME[$t]} | $(v "$w:$n:$t:txns") | $(v "$w:$n:$t:cpu_s") | $(v "$w:$n:$t:rss0") | $(v "$w:$n:$t:hwm") |"
			done
		done
	done
	echo
	echo "</details>"
} >"$OUT/compare.md"
if [[ -z ${COMPARE_NO_RESULTS:-} ]]; then
	cp "$OUT/compare.md" "$BENCH_DIR/RESULTS.md"
	[[ $PLOT_OK -eq 1 ]] && cp "$OUT/compare.png" "$BENCH_DIR/results.png"
fi
sed 's/](results.png)/](compare.png)/' "$OUT/compare.md" >"$OUT/compare.md.tmp" && mv "$OUT/compare.md.tmp" "$OUT/compare.md"
cat "$OUT/compare.md"
log "done in $((T_END - T_START)) s; table in bench/out/compare.md$([[ -z ${COMPARE_NO_RESULTS:-} ]] && echo " and bench/RESULTS.md"), plot in bench/out/compare.png, logs in bench/out/logs-compare/"
