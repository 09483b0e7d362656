#!/usr/bin/env bash
# bench/bench.sh: pgmux vs PgBouncer on this machine, same PostgreSQL, same pool.
#
# Starts a throwaway PostgreSQL 15 (loopback, free port), pgmux and PgBouncer
# with the same pool (transaction mode, 20 server connections, SCRAM on both
# sides), then measures, alternating the two poolers:
#   - pgbench -S -M simple at 20, 100 and 500 clients: TPS, pooler CPU
#     microseconds per transaction, pooler syscalls per transaction;
#   - pgbench -M prepared (protocol-level named statements) against -M
#     extended (unnamed), select-only and TPC-B, at 100 clients: TPS and
#     errors. PgBouncer 1.18 (Debian) has no prepared statements in
#     transaction mode (1.21 added max_prepared_statements), so its clients
#     abort with "prepared statement ... does not exist";
#   - 10,000 idle clients: pooler RSS per idle client, 10k login time and
#     pooler CPU per login (SCRAM, and trust).
# Prints a markdown table on stdout and writes it to bench/out/latest.md.
# See bench/README.md for what every figure means and how it is measured.
#
# Environment (all optional):
#   BENCH_SECONDS=15        length of each timed pgbench run
#   BENCH_CLIENTS="20 100 500"
#   BENCH_IDLE_CLIENTS=10000
#   BENCH_STRACE_TXNS=10000 transactions in each strace-counted run
#   BENCH_PREPARED_CLIENTS="100"  clients for the -M prepared runs (empty: skip them)
#   BENCH_SKIP_PGMUX=1      measure PgBouncer alone
#   BENCH_REBUILD=1         run the cmake build even if build/pgmux exists
#                           (by default pgmux is built only when build/pgmux is missing)
#   PGMUX_BIN=path          pgmux binary (default: build/pgmux)
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"   # log, calc, apt_install_missing, workspace + cleanup, PostgreSQL, poolers
SECS=${BENCH_SECONDS:-15}
CLIENTS=${BENCH_CLIENTS:-"20 100 500"}
IDLE_N=${BENCH_IDLE_CLIENTS:-10000}
STRACE_TXNS=${BENCH_STRACE_TXNS:-10000}
PREP_CLIENTS=${BENCH_PREPARED_CLIENTS-100}
POOL_SIZE=20
SCALE=10
MAX_CLIENT_CONN=$((IDLE_N + 200))
LISTEN_BACKLOG=1024
PG_MAX_CONNECTIONS=300
PG_AUTH=scram-sha-256
T_START=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$OUT"
BUSY_NOTE=""
if awk -v l="${LOADAVG_START%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n * 0.5) }'; then
	BUSY_NOTE="the machine was busy before the run (load average $LOADAVG_START on $(nproc) CPUs): CPU per transaction and TPS are inflated/deflated; compare pgmux and PgBouncer within this run only"
	loud "$BUSY_NOTE"
fi

# ---------------------------------------------------------------- install ---
if command -v dpkg-query >/dev/null; then
	apt_install_missing postgresql-15 pgbouncer strace procps libpq-dev gcc iproute2 ||
		die "install the packages above first"
fi
for f in "$PGBIN/initdb" "$PGBIN/pg_ctl" "$PGBOUNCER_BIN"; do
	[[ -x $f ]] || die "$f not found"
done
for c in pgbench psql strace gcc ss; do command -v "$c" >/dev/null || die "$c not found"; done

# fd limits: 10k client sockets here, 10k more in the pooler (hard limit here: 20000).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited && $NOFILE -lt $((IDLE_N + 500)) ]]; then
	log "warning: open-file limit $NOFILE is below $((IDLE_N + 500)); idle-client phase may fail"
fi

# ----------------------------------------------------------- build pgmux ---
PGMUX_OK=1
PGMUX_NOTE=""
if [[ -n ${BENCH_SKIP_PGMUX:-} ]]; then
	PGMUX_OK=0
	PGMUX_NOTE="skipped (BENCH_SKIP_PGMUX set)"
elif [[ $PGMUX_BIN == "$REPO/build/pgmux" && -f $REPO/CMakeLists.txt &&
	(! -x $PGMUX_BIN || -n ${BENCH_REBUILD:-}) ]]; then
	log "building pgmux (log: bench/out/build.log)"
	apt_install_missing cmake pkg-config libuv1-dev libinih-dev libssl-dev uthash-dev libcmocka-dev ||
		log "warning: build dependencies missing"
	if ! (
		cd "$REPO"
		[[ -f build/CMakeCache.txt && (-f build/Makefile || -f build/build.ninja) ]] || cmake -S . -B build
		cmake --build build -j2 --target pgmux || cmake --build build -j2
	) >"$OUT/build.log" 2>&1; then
		log "pgmux build failed (tail of bench/out/build.log):"
		tail -n 15 "$OUT/build.log" >&2 || true
		if [[ -x $PGMUX_BIN ]]; then log "using the existing, possibly stale, $PGMUX_BIN"; fi
	fi
fi
if [[ $PGMUX_OK -eq 1 && ! -x $PGMUX_BIN ]]; then
	PGMUX_OK=0
	PGMUX_NOTE="SKIPPED: $PGMUX_BIN does not exist (build failed or not written yet)"
fi
if [[ $PGMUX_OK -eq 0 ]]; then
	loud "pgmux $PGMUX_NOTE" "measuring PgBouncer alone"
elif [[ -f $REPO/build/CMakeCache.txt && $PGMUX_BIN == "$REPO/build/pgmux" ]]; then
	if grep -q '^PGMUX_SANITIZE:BOOL=ON' "$REPO/build/CMakeCache.txt"; then
		loud "build/ is configured with PGMUX_SANITIZE=ON: pgmux figures are NOT representative"
		PGMUX_NOTE="built with sanitizers: figures not representative"
	fi
	if grep -q '^CMAKE_BUILD_TYPE:STRING=Debug' "$REPO/build/CMakeCache.txt"; then
		loud "build/ is a Debug build: pgmux figures are NOT representative"
		PGMUX_NOTE="Debug build: figures not representative"
	fi
fi

# ------------------------------------------------------------- workspace ---
lib_workspace   # $TMP, as_pg, RUN_AS_PG, cleanup traps

# ------------------------------------------------------------ PostgreSQL ---
pg_start        # $PGPORT, role and database bench, PGPASSWORD
log "pgbench -i -s $SCALE"
pgbench -i -s "$SCALE" -q -h 127.0.0.1 -p "$PGPORT" -U bench bench >"$TMP/logs/pgbench-init.log" 2>&1 ||
	{ tail -n 20 "$TMP/logs/pgbench-init.log" >&2; die "pgbench -i failed"; }
# Warm PostgreSQL's buffers directly (not through a pooler).
pgbench -S -n -M simple -c 4 -j 2 -T 3 -h 127.0.0.1 -p "$PGPORT" -U bench bench >/dev/null 2>&1 || true

# ------------------------------------------------------------- poolers ---
write_userlist  # $TMP/userlist.txt; pgmux copied where the postgres user can run it

POOLERS=()
if [[ $PGMUX_OK -eq 1 ]]; then
	if start_pooler pgmux main scram-sha-256; then
		POOLERS+=(pgmux)
	else
		PGMUX_OK=0
		PGMUX_NOTE="SKIPPED: pgmux did not start or did not answer (see bench/out/logs/pgmux-main.log)"
		loud "pgmux $PGMUX_NOTE"
	fi
fi
start_pooler pgbouncer main scram-sha-256 || die "PgBouncer did not start"
POOLERS+=(pgbouncer)

# ------------------------------------------------------------- pgbench ---
declare -A R   # results: R[key:clients:field]
# pgb PORT ARGS...: runs pgbench -S -M simple through a pooler; output to $PGB_OUT.
pgb() {
	local port=$1; shift
	timeout $((SECS + 180)) pgbench -S -n -M simple -j 2 -h 127.0.0.1 -p "$port" -U bench "$@" bench >"$PGB_OUT" 2>&1
}
pgb_field() { # pgb_field tps|txns|failed FILE
	case $1 in
	tps) awk '/^tps = / { print $3; exit }' "$2" ;;
	txns) awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$2" ;;
	failed) awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$2" ;;
	esac
}
# wait_traced PID: until every thread of PID has a tracer (strace attached), max 10 s.
wait_traced() {
	for _ in $(seq 200); do
		local all=1 t
		for t in /proc/"$1"/task/*/status; do
			[[ $(awk '/^TracerPid:/ { print $2 }' "$t" 2>/dev/null) == 0 ]] && all=0
		done
		[[ $all -eq 1 ]] && return 0
		sleep 0.05
	done
	return 1
}
# strace_run KEY N T: pgbench -c N -t T under strace -c; sets SR_SYS (syscalls) and SR_TXNS.
strace_run() {
	local key=$1 n=$2 t=$3 pid=${PID[$1]} sout spid
	SR_SYS=-1 SR_TXNS=-1
	sout="$TMP/logs/strace-$key-$n-t$t.txt"
	strace -c -f -o "$sout" -p "$pid" 2>"$sout.err" &
	spid=$!
	BG_PIDS+=("$spid")
	if ! wait_traced "$pid"; then
		log "strace did not attach to ${NAME[$key]} (pid $pid): $(head -c 300 "$sout.err")"
		kill -INT "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		return 0
	fi
	PGB_OUT="$TMP/logs/pgbench-$key-$n-strace-t$t.log"
	pgb "${PORT[$key]}" -c "$n" -t "$t" || log "${NAME[$key]} c=$n: strace'd pgbench -t $t exited non-zero (see bench/out/logs)"
	kill -INT "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	SR_TXNS=$(pgb_field txns "$PGB_OUT")
	SR_SYS=$(awk '$NF == "total" { print $4 }' "$sout")
	SR_TXNS=${SR_TXNS:--1} SR_SYS=${SR_SYS:--1}
}

measure_clients() {
	local key=$1 n=$2 pid=${PID[$1]} port=${PORT[$1]}
	local c0 c1 b0 b1 tps txns failed btxns t s_main s_base tx_main tx_base
	if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
		log "${NAME[$key]} is not running: no figures for c=$n"
		R[$key:$n:note]="pooler not running"
		return
	fi
	# 1. Timed run: TPS, and pooler CPU over the whole run.
	PGB_OUT="$TMP/logs/pgbench-$key-$n.log"
	c0=$(cpu_ticks "$pid")
	pgb "$port" -c "$n" -T "$SECS" || log "${NAME[$key]} c=$n: pgbench exited non-zero (see bench/out/logs/pgbench-$key-$n.log)"
	c1=$(cpu_ticks "$pid")
	tps=$(pgb_field tps "$PGB_OUT"); txns=$(pgb_field txns "$PGB_OUT"); failed=$(pgb_field failed "$PGB_OUT")
	# 2. Connection cost: the same N clients doing one transaction each.
	PGB_OUT="$TMP/logs/pgbench-$key-$n-t1.log"
	b0=$(cpu_ticks "$pid")
	pgb "$port" -c "$n" -t 1 || true
	b1=$(cpu_ticks "$pid")
	btxns=$(pgb_field txns "$PGB_OUT")
	[[ -n $tps ]] && tps=$(calc 'printf "%.0f", t' t="$tps")
	R[$key:$n:tps]=${tps:-}
	R[$key:$n:txns]=${txns:-}
	R[$key:$n:failed]=${failed:-}
	R[$key:$n:cpu_s]=$(calc 'printf "%.2f", (c1 - c0) / hz' c0="$c0" c1="$c1" hz="$CLK_TCK")
	R[$key:$n:base_cpu_s]=$(calc 'printf "%.2f", (b1 - b0) / hz' b0="$b0" b1="$b1" hz="$CLK_TCK")
	if [[ -n $txns && -n $btxns && $txns -gt $btxns && $c0 -ge 0 && $b0 -ge 0 ]]; then
		R[$key:$n:cpu]=$(calc 'printf "%.1f", ((c1 - c0) - (b1 - b0)) * 1e6 / hz / (tx - btx)' \
			c0="$c0" c1="$c1" b0="$b0" b1="$b1" hz="$CLK_TCK" tx="$txns" btx="$btxns")
		R[$key:$n:cpu_raw]=$(calc 'printf "%.1f", (c1 - c0) * 1e6 / hz / tx' c0="$c0" c1="$c1" hz="$CLK_TCK" tx="$txns")
	fi
	# 3. Syscalls: strace -c on a fixed number of transactions, minus the same clients doing one each.
	t=$(((STRACE_TXNS + n - 1) / n))
	[[ $t -lt 2 ]] && t=2
	strace_run "$key" "$n" 1
	s_base=$SR_SYS tx_base=$SR_TXNS
	strace_run "$key" "$n" "$t"
	s_main=$SR_SYS tx_main=$SR_TXNS
	R[$key:$n:sys_total]=$s_main
	R[$key:$n:sys_base]=$s_base
	R[$key:$n:sys_txns]=$tx_main
	if [[ $s_main -ge 0 && $s_base -ge 0 && $tx_main -gt $tx_base ]]; then
		R[$key:$n:sys]=$(calc 'printf "%.2f", (s - sb) / (tx - txb)' s="$s_main" sb="$s_base" tx="$tx_main" txb="$tx_base")
		R[$key:$n:sys_raw]=$(calc 'printf "%.2f", s / tx' s="$s_main" tx="$tx_main")
	fi
	log "$(printf '%-9s c=%-3s  %10s tps  %6s us CPU/txn (whole run %s)  %5s syscalls/txn (raw %s)  failed %s' \
		"${NAME[$key]}" "$n" "${tps:-?}" "${R[$key:$n:cpu]:-?}" "${R[$key:$n:cpu_raw]:-?}" \
		"${R[$key:$n:sys]:-?}" "${R[$key:$n:sys_raw]:-?}" "${failed:-?}")"
}

for key in "${POOLERS[@]}"; do
	log "warm-up through ${NAME[$key]} (2 s)"
	PGB_OUT="$TMP/logs/pgbench-$key-warmup.log"
	pgb "${PORT[$key]}" -c "$POOL_SIZE" -T 2 || true
done
for n in $CLIENTS; do
	for key in "${POOLERS[@]}"; do
		log "${NAME[$key]}: pgbench -S -M simple -c $n -j 2 -T $SECS, then -t 1, then strace'd -t 1 and -t $(((STRACE_TXNS + n - 1) / n))"
		measure_clients "$key" "$n"
	done
done
# ------------------------------------------------ prepared statements ---
# pgbench -M prepared uses named statements (Parse once per connection, then
# Bind/Execute), -M extended the unnamed one (Parse every time). In
# transaction mode a pooler must carry named statements across server
# connections: pgmux does (max_prepared_statements, default 200);
# PgBouncer 1.18 does not, so its clients abort on the first statement
# that lands on a server it was not prepared on.
declare -A P   # P[key:script:mode:field]
prep_run() { # prep_run KEY SCRIPT(select|tpcb) MODE N
	local key=$1 script=$2 mode=$3 n=$4 rc=0 out
	out="$TMP/logs/pgbench-$key-$script-$mode-$n.log"
	local args=(-n -M "$mode" -c "$n" -j 2 -T "$SECS" -h 127.0.0.1 -p "${PORT[$key]}" -U bench)
	[[ $script == select ]] && args+=(-S)
	timeout $((SECS + 180)) pgbench "${args[@]}" bench >"$out" 2>&1 || rc=$?
	P[$key:$script:$mode:tps]=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$out")
	P[$key:$script:$mode:txns]=$(pgb_field txns "$out")
	P[$key:$script:$mode:aborted]=$(grep -c 'aborted in command' "$out" || true)
	P[$key:$script:$mode:errors]=$(grep -Eci 'prepared statement .* (does not exist|already exists)' "$out" || true)
	P[$key:$script:$mode:rc]=$rc
	log "$(printf '%-9s %-6s -M %-8s c=%-4s %8s tps  %s aborted clients  %s prepared-statement errors  rc %s' \
		"${NAME[$key]}" "$script" "$mode" "$n" "${P[$key:$script:$mode:tps]:-?}" \
		"${P[$key:$script:$mode:aborted]}" "${P[$key:$script:$mode:errors]}" "$rc")"
}
if [[ -n $PREP_CLIENTS ]]; then
	for script in select tpcb; do
		for mode in prepared extended; do
			for key in "${POOLERS[@]}"; do
				log "${NAME[$key]}: pgbench -M $mode ($script) -c $PREP_CLIENTS -j 2 -T $SECS"
				prep_run "$key" "$script" "$mode" "$PREP_CLIENTS"
			done
		done
	done
fi
for key in "${POOLERS[@]}"; do stop_pooler "$key"; done

# -------------------------------------------------------- idle clients ---
IDLE_BIN="$OUT/idle_clients"
PQ_CFLAGS=$(pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
# shellcheck disable=SC2086 # PQ_CFLAGS is a list of flags
gcc -std=c17 -O2 -Wall -Wextra -Werror $PQ_CFLAGS -o "$IDLE_BIN" "$BENCH_DIR/idle_clients.c" -lpq ||
	die "cannot compile bench/idle_clients.c"

# measure_idle KEY AUTH TAG: fresh pooler, IDLE_N idle clients; fills R[key:TAG:*].
measure_idle() {
	local key=$1 auth=$2 tag=$3 pid port r0 r1 c0 c1 iout ipid line connected failed elapsed
	if ! start_pooler "$key" "idle-$tag" "$auth"; then
		R[$key:$tag:note]="did not start"
		return
	fi
	pid=${PID[$key]} port=${PORT[$key]}
	sleep 0.5
	r0=$(rss_bytes "$pid")
	c0=$(cpu_ticks "$pid")
	iout="$TMP/logs/idle-$key-$tag.out"
	"$IDLE_BIN" -n "$IDLE_N" --inflight 200 --hold 600 \
		"host=127.0.0.1 port=$port dbname=bench user=bench connect_timeout=120" \
		>"$iout" 2>"$TMP/logs/idle-$key-$tag.err" &
	ipid=$!
	BG_PIDS+=("$ipid")
	for _ in $(seq 6000); do # 300 s at most
		grep -q '^READY' "$iout" 2>/dev/null && break
		kill -0 "$ipid" 2>/dev/null || break
		sleep 0.05
	done
	c1=$(cpu_ticks "$pid")
	sleep 1 # let the pooler settle before reading its RSS
	r1=$(rss_bytes "$pid")
	kill -TERM "$ipid" 2>/dev/null || true
	wait "$ipid" 2>/dev/null || true
	line=$(grep '^RESULT' "$iout" || true)
	connected=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$line")
	failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
	elapsed=$(sed -n 's/.*elapsed_s=\([0-9.]*\).*/\1/p' <<<"$line")
	R[$key:$tag:client_cpu]=$(sed -n 's/.*client_cpu_s=\([0-9.]*\).*/\1/p' <<<"$line")
	R[$key:$tag:connected]=${connected:-0}
	R[$key:$tag:failed]=${failed:-?}
	R[$key:$tag:secs]=${elapsed:-}
	R[$key:$tag:rss0]=$r0
	R[$key:$tag:rss1]=$r1
	if [[ ${connected:-0} -gt 0 ]]; then
		R[$key:$tag:rss]=$(calc 'printf "%.0f", (r1 - r0) / n' r1="$r1" r0="$r0" n="$connected")
		R[$key:$tag:cpu]=$(calc 'printf "%.1f", (c1 - c0) * 1e6 / hz / n' c1="$c1" c0="$c0" hz="$CLK_TCK" n="$connected")
	fi
	if [[ ${failed:-1} != 0 ]]; then
		R[$key:$tag:note]="$(grep -m1 'first error' "$TMP/logs/idle-$key-$tag.err" 2>/dev/null | cut -c1-160 || true)"
	fi
	log "$(printf '%-9s %-5s %s/%s idle clients in %s s, %s us pooler CPU/login, RSS %s -> %s (%s bytes/client) %s' \
		"${NAME[$key]}" "$tag" "${connected:-0}" "$IDLE_N" "${elapsed:-?}" "${R[$key:$tag:cpu]:-?}" \
		"$r0" "$r1" "${R[$key:$tag:rss]:-?}" "${R[$key:$tag:note]:-}")"
	stop_pooler "$key"
}
for tag in scram trust; do
	auth=scram-sha-256
	[[ $tag == trust ]] && auth=trust
	for key in "${POOLERS[@]}"; do
		log "${NAME[$key]}: $IDLE_N idle clients, $tag logins, 200 in flight"
		measure_idle "$key" "$auth" "$tag"
	done
done

# -------------------------------------------------------------- report ---
ratio() { # ratio A B: A/B with 2 decimals, or n/a
	if [[ -n ${1:-} && -n ${2:-} ]]; then
		calc 'if (b > 0) printf "%.2f", a / b; else printf "n/a"' a="$1" b="$2"
	else printf 'n/a'; fi
}
v() { local x=${R[$1]:-}; printf '%s' "${x:-n/a}"; }
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
PG_VER=$("$PGBIN/postgres" --version)
PGB_VER=$("$PGBOUNCER_BIN" --version | head -n1)
PGMUX_VER="not measured"
if [[ $PGMUX_OK -eq 1 ]]; then
	PGMUX_VER="$("$PGMUX_BIN" --version 2>/dev/null | head -n1 || true)"
	PGMUX_VER="${PGMUX_VER:-pgmux} ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
fi
T_END=$(date +%s)
{
	echo "# pgmux vs PgBouncer benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bench/bench.sh, $((T_END - T_START)) s"
	echo
	echo "- machine: $(nproc) CPUs ($CPU_MODEL), kernel $(uname -r), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), CLK_TCK $CLK_TCK; load average before the run: $LOADAVG_START"
	echo "- versions: $PG_VER; $PGB_VER; pgmux: $PGMUX_VER; $(pgbench --version); $(strace -V | head -n1)"
	echo "- setup: pool_mode = transaction, default_pool_size = $POOL_SIZE, auth_type = scram-sha-256 (userlist with the plain password; both poolers log in to PostgreSQL with SCRAM), pgbench -i -s $SCALE, loopback TCP, sslmode=disable"
	echo "- runs: \`pgbench -S -M simple -c N -j 2 -T $SECS\`; syscalls from \`strace -c -f\` on ~$STRACE_TXNS transactions; connection cost (N logins + N transactions) measured separately and subtracted"
	[[ -n $PGMUX_NOTE ]] && echo "- **pgmux: $PGMUX_NOTE**"
	[[ -n $BUSY_NOTE ]] && echo "- **warning: $BUSY_NOTE**"
	echo
	echo "| pooler | clients | TPS | CPU µs/txn | syscalls/txn |"
	echo "|---|---:|---:|---:|---:|"
	for n in $CLIENTS; do
		for key in pgmux pgbouncer; do
			if [[ $key == pgmux && $PGMUX_OK -ne 1 && -z ${R[pgmux:$n:tps]:-} ]]; then
				echo "| pgmux | $n | skipped | skipped | skipped |"
				continue
			fi
			extra=""
			[[ -n ${R[$key:$n:failed]:-} && ${R[$key:$n:failed]} != 0 ]] && extra=" (${R[$key:$n:failed]} failed)"
			[[ -n ${R[$key:$n:note]:-} ]] && extra=" (${R[$key:$n:note]})"
			echo "| ${NAME[$key]} | $n | $(v "$key:$n:tps")$extra | $(v "$key:$n:cpu") | $(v "$key:$n:sys") |"
		done
		if [[ -n ${R[pgmux:$n:tps]:-} ]]; then
			echo "| **pgmux/PgBouncer** | $n | $(ratio "${R[pgmux:$n:tps]:-}" "${R[pgbouncer:$n:tps]:-}") | $(ratio "${R[pgmux:$n:cpu]:-}" "${R[pgbouncer:$n:cpu]:-}") | $(ratio "${R[pgmux:$n:sys]:-}" "${R[pgbouncer:$n:sys]:-}") |"
		fi
	done
	if [[ -n $PREP_CLIENTS ]]; then
		echo
		echo "Prepared statements: \`pgbench -M prepared\` (named, protocol level) against \`-M extended\` (unnamed), $PREP_CLIENTS clients, \`-j 2 -T $SECS\`, same pool (transaction mode). **PgBouncer 1.18 (the Debian package) has no prepared-statement support in transaction mode** (PgBouncer 1.21 added \`max_prepared_statements\`): its \`-M prepared\` clients abort with \"prepared statement ... does not exist\" once a transaction lands on a server the statement was not prepared on. pgmux carries named statements across servers (\`max_prepared_statements = 200\`)."
		echo
		echo "| pooler | script | mode | TPS | transactions | aborted clients | prepared-statement errors |"
		echo "|---|---|---|---:|---:|---:|---:|"
		for script in select tpcb; do
			for mode in prepared extended; do
				for key in pgmux pgbouncer; do
					[[ -z ${P[$key:$script:$mode:rc]:-} ]] && continue
					echo "| ${NAME[$key]} | $script | $mode | ${P[$key:$script:$mode:tps]:-n/a} | ${P[$key:$script:$mode:txns]:-n/a} | ${P[$key:$script:$mode:aborted]} | ${P[$key:$script:$mode:errors]} |"
				done
			done
		done
	fi
	echo
	echo "$IDLE_N idle clients (200 logins in flight; RSS and login figures from a fresh pooler instance):"
	echo
	echo "| pooler | RSS bytes/idle client | ${IDLE_N} SCRAM logins, s | pooler CPU µs/SCRAM login | ${IDLE_N} trust logins, s | pooler CPU µs/trust login | RSS bytes/idle client (trust) |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for key in pgmux pgbouncer; do
		if [[ $key == pgmux && $PGMUX_OK -ne 1 && -z ${R[pgmux:scram:rss]:-} ]]; then
			echo "| pgmux | skipped | skipped | skipped | skipped | skipped | skipped |"
			continue
		fi
		echo "| ${NAME[$key]} | $(v "$key:scram:rss") | $(v "$key:scram:secs") | $(v "$key:scram:cpu") | $(v "$key:trust:secs") | $(v "$key:trust:cpu") | $(v "$key:trust:rss") |"
	done
	if [[ -n ${R[pgmux:scram:rss]:-}${R[pgmux:trust:rss]:-} ]]; then
		echo "| **pgmux/PgBouncer** | $(ratio "${R[pgmux:scram:rss]:-}" "${R[pgbouncer:scram:rss]:-}") | $(ratio "${R[pgmux:scram:secs]:-}" "${R[pgbouncer:scram:secs]:-}") | $(ratio "${R[pgmux:scram:cpu]:-}" "${R[pgbouncer:scram:cpu]:-}") | $(ratio "${R[pgmux:trust:secs]:-}" "${R[pgbouncer:trust:secs]:-}") | $(ratio "${R[pgmux:trust:cpu]:-}" "${R[pgbouncer:trust:cpu]:-}") | $(ratio "${R[pgmux:trust:rss]:-}" "${R[pgbouncer:trust:rss]:-}") |"
	fi
	for key in pgmux pgbouncer; do
		for tag in scram trust; do
			if [[ -n ${R[$key:$tag:failed]:-} && ${R[$key:$tag:failed]} != 0 ]]; then
				echo
				echo "- ${NAME[$key]} $tag logins: ${R[$key:$tag:connected]} connected, ${R[$key:$tag:failed]} failed: ${R[$key:$tag:note]:-}"
			fi
		done
	done
	echo
	echo "<details><summary>raw measurements</summary>"
	echo
	echo "| pooler | clients | txns (timed run) | pooler CPU s (timed run) | CPU s for N logins + N txns | CPU µs/txn, uncorrected | strace'd txns | syscalls | syscalls for N logins + N txns | syscalls/txn, uncorrected |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in $CLIENTS; do
		for key in "${POOLERS[@]}"; do
			echo "| ${NAME[$key]} | $n | $(v "$key:$n:txns") | $(v "$key:$n:cpu_s") | $(v "$key:$n:base_cpu_s") | $(v "$key:$n:cpu_raw") | $(v "$key:$n:sys_txns") | $(v "$key:$n:sys_total") | $(v "$key:$n:sys_base") | $(v "$key:$n:sys_raw") |"
		done
	done
	echo
	echo "| pooler | auth | RSS before | RSS after | connected | failed | idle_clients' own CPU s |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	for key in "${POOLERS[@]}"; do
		for tag in scram trust; do
			echo "| ${NAME[$key]} | $tag | $(v "$key:$tag:rss0") | $(v "$key:$tag:rss1") | $(v "$key:$tag:connected") | $(v "$key:$tag:failed") | $(v "$key:$tag:client_cpu") |"
		done
	done
	echo
	echo "</details>"
} >"$OUT/latest.md"
cat "$OUT/latest.md"
log "done in $((T_END - T_START)) s; table in bench/out/latest.md, logs in bench/out/logs/"
