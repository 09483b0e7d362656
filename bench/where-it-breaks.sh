#!/usr/bin/env bash
# bench/where-it-breaks.sh: where a pooler (and PostgreSQL without one) breaks, on this
# machine, with the numbers printed by pgmux-load and pgmux's admin console.
#
# Starts a throwaway PostgreSQL 15 (loopback, free port, max_connections = 100) and, for each
# experiment, a fresh pgmux, then:
#   (a) fd limit: pgmux under a hard RLIMIT_NOFILE of 100 (prlimit), 105 idle clients: how many
#       got in, what the rest received (SQLSTATE 53300 and its text), SHOW FD_USAGE;
#   (b) accept-queue overflow: listen_backlog = 4 and a connect storm (pgmux-load, connect rate
#       unlimited), then the same storm with listen_backlog = 1024: accept_backlog and
#       backlog_overflows from SHOW FD_USAGE before/after, the kernel's TcpExt counters, the
#       listener's Recv-Q as sampled by ss, and what the clients saw;
#   (c) memory per idle client: pgmux's VmRSS (and smaps_rollup) before/after 10,000 idle clients;
#   (d) PostgreSQL's max_connections: 300 clients straight to PostgreSQL (max_connections = 100)
#       against the same 300 clients through pgmux on 10 server connections.
# Prints a markdown summary on stdout and writes it to bench/out/where-it-breaks.md; logs and the
# raw pgmux-load reports (text and JSON) are copied to bench/out/logs-where-it-breaks/.
# See bench/WHERE-IT-BREAKS.md for what each experiment shows.
#
# Environment (all optional):
#   WIB_AUTH=md5              auth on both sides (md5 or scram-sha-256); md5 keeps 10k logins cheap
#   WIB_FD_LIMIT=100          (a) pgmux's hard and soft open-file limit
#   WIB_FD_CLIENTS=105        (a) idle clients
#   WIB_BACKLOG=4             (b) listen_backlog of the storm run
#   WIB_BACKLOG_CONTROL=1024  (b) listen_backlog of the control run (0: skip the control run)
#   WIB_STORM_CLIENTS=3000    (b) clients in the storm
#   WIB_STORM_SECONDS=15      (b) length of each storm run
#   WIB_IDLE_CLIENTS=10000    (c) idle clients
#   WIB_DIRECT_CLIENTS=300    (d) clients
#   WIB_SECONDS=10            (d) length of each run
#   WIB_POOL_SIZE=10          pgmux default_pool_size
#   WIB_REBUILD=1             run the cmake build even if build/pgmux and build/tools/pgmux-load exist
#   PGMUX_BIN=path            pgmux binary (default: build/pgmux)
#   PGMUX_LOAD=path           pgmux-load binary (default: build/tools/pgmux-load)
set -Eeuo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB_TAG=where-it-breaks
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
LOGS_DEST="$OUT/logs-where-it-breaks"
AUTH=${WIB_AUTH:-md5}
FD_LIMIT=${WIB_FD_LIMIT:-100}
FD_CLIENTS=${WIB_FD_CLIENTS:-105}
BACKLOG=${WIB_BACKLOG:-4}
BACKLOG_CONTROL=${WIB_BACKLOG_CONTROL:-1024}
STORM_CLIENTS=${WIB_STORM_CLIENTS:-3000}
STORM_SECS=${WIB_STORM_SECONDS:-15}
IDLE_N=${WIB_IDLE_CLIENTS:-10000}
DIRECT_N=${WIB_DIRECT_CLIENTS:-300}
SECS=${WIB_SECONDS:-10}
PG_MAX_CONNECTIONS=100
PG_AUTH=$AUTH
POOL_SIZE=${WIB_POOL_SIZE:-10}
LOAD_BIN=${PGMUX_LOAD:-$REPO/build/tools/pgmux-load}
T_START=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
case $AUTH in md5 | scram-sha-256) ;; *) die "WIB_AUTH must be md5 or scram-sha-256" ;; esac
mkdir -p "$OUT"

# ---------------------------------------------------------------- install ---
if command -v dpkg-query >/dev/null; then
	apt_install_missing postgresql-15 postgresql-client-15 procps util-linux iproute2 jq libpq-dev ||
		die "install the packages above first"
fi
for f in "$PGBIN/initdb" "$PGBIN/pg_ctl"; do [[ -x $f ]] || die "$f not found"; done
for c in psql jq ss prlimit setpriv runuser; do command -v "$c" >/dev/null || die "$c not found"; done

if [[ -n ${WIB_REBUILD:-} || ! -x $PGMUX_BIN || ! -x $LOAD_BIN ]] &&
	[[ $PGMUX_BIN == "$REPO/build/pgmux" || $LOAD_BIN == "$REPO/build/tools/pgmux-load" ]]; then
	log "building pgmux and pgmux-load (log: bench/out/build-where-it-breaks.log)"
	build_targets "$OUT/build-where-it-breaks.log" pgmux pgmux-load ||
		{ tail -n 15 "$OUT/build-where-it-breaks.log" >&2; die "build failed"; }
fi
[[ -x $PGMUX_BIN ]] || die "$PGMUX_BIN not found"
[[ -x $LOAD_BIN ]] || die "$LOAD_BIN not found"
BUILD_NOTE=""
if [[ -f $REPO/build/CMakeCache.txt ]]; then
	grep -q '^PGMUX_SANITIZE:BOOL=ON' "$REPO/build/CMakeCache.txt" && BUILD_NOTE="build/ has sanitizers on: memory and CPU figures are not representative"
	grep -q '^CMAKE_BUILD_TYPE:STRING=Debug' "$REPO/build/CMakeCache.txt" && BUILD_NOTE="build/ is a Debug build: figures are not representative"
fi
sn=$(stale_notes)
[[ -n $sn ]] && BUILD_NOTE="${BUILD_NOTE:+$BUILD_NOTE; }$sn (set WIB_REBUILD=1 to rebuild)"
[[ -n $BUILD_NOTE ]] && loud "$BUILD_NOTE"

# 10k client sockets in pgmux-load (2 processes) and 10k in pgmux: hard limit here 20000.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $((IDLE_N + 100)) ]]; then
	log "warning: open-file limit $(ulimit -n) is below $((IDLE_N + 100)); pgmux cannot hold $IDLE_N clients"
fi

# ------------------------------------------------------------- setup ---
lib_workspace
pg_start
write_userlist
pg_settle_init
POOLER_EXTRA_CONF="admin_users = bench"
L="$TMP/logs"

# load NAME PORT ARGS...: pgmux-load against 127.0.0.1:PORT, report in $L/NAME.txt and .json.
load() {
	local name=$1 port=$2; shift 2
	"$LOAD_BIN" "host=127.0.0.1 port=$port dbname=bench user=bench" --admin-user bench \
		--json "$L/$name.json" "$@" >"$L/$name.txt" 2>"$L/$name.err" ||
		log "pgmux-load ($name) exited non-zero: $(head -c 300 "$L/$name.err")"
}
# load_start NAME PORT ARGS...: the same in the background; its PID in LOAD_PID.
load_start() {
	local name=$1 port=$2; shift 2
	"$LOAD_BIN" "host=127.0.0.1 port=$port dbname=bench user=bench" --admin-user bench \
		--json "$L/$name.json" "$@" >"$L/$name.txt" 2>"$L/$name.err" &
	LOAD_PID=$!
	BG_PIDS+=("$LOAD_PID")
}
# load_wait: wait for LOAD_PID.
load_wait() { wait "$LOAD_PID" || log "pgmux-load exited non-zero (see logs)"; }
# j NAME FILTER: a value from a pgmux-load JSON report ("?" if missing).
j() { jq -r "($2) // \"?\"" "$L/$1.json" 2>/dev/null || echo '?'; }
# causes NAME [connections|transactions]: "cause N, cause N" for the non-zero failure causes.
causes() {
	jq -r --arg k "${2:-connections}" '.[$k].failed_by_cause as $c | ($c | to_entries
		| map(select(.value != 0 and (.value | type) == "number")) | map("\(.key) \(.value)") | join(", "))
		+ ($c.other_messages | map(" (other: \(.message | gsub("\n"; " ")) ×\(.count))") | join(""))' \
		"$L/$1.json" 2>/dev/null | sed 's/^$/none/' || echo '?'
}
# console PORT SQL: one admin console command, unaligned with a header.
console() { psql -X -A -P footer=off -h 127.0.0.1 -p "$1" -U bench -d pgmux -c "$2" 2>&1; }
# md_table: psql -A output (header|row...) on stdin -> markdown table.
md_table() {
	awk -F'|' 'NR == 1 { s = "|"; d = "|"; for (i = 1; i <= NF; i++) { s = s " " $i " |"; d = d "---:|" }
		print s; print d; next }
		NF > 1 { s = "|"; for (i = 1; i <= NF; i++) s = s " " $i " |"; print s }'
}
# fd_field "psql -A output" FIELD
fd_field() { awk -F'|' -v f="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == f) c = i; next } c { print $c; exit }' <<<"$1"; }
# tcpext NAME: a TcpExt counter from /proc/net/netstat (this network namespace, all sockets).
tcpext() {
	awk -v k="$1" '$1 == "TcpExt:" { if (!n) { for (i = 2; i <= NF; i++) h[$i] = i; n = 1 } else { print (k in h) ? $h[k] : "?"; exit } }' /proc/net/netstat
}
# snapshot NAME: the console snapshot pgmux-load took at peak (FD_USAGE then SATURATION), as text.
snapshot_md() {
	jq -r '.pooler // empty | "at t = \(.t_ms / 1000) s, \(.connected) connected:\n",
		(.fd_usage[0] | to_entries | "| " + (map(.key) | join(" | ")) + " |\n|" + (map("---:") | join("|")) + "|\n| " + (map(.value | tostring) | join(" | ")) + " |"),
		(if (.saturation | length) > 0 then "\n" + (.saturation[0] | to_entries | "| " + (map(.key) | join(" | ")) + " |\n|" + (map("---:") | join("|")) + "|\n| " + (map(.value | tostring) | join(" | ")) + " |") else empty end)' \
		"$L/$1.json" 2>/dev/null || true
}
# details NAME: the pgmux-load text report in a collapsed block.
details() {
	echo
	echo "<details><summary>pgmux-load report: $1</summary>"
	echo
	echo '```'
	cat "$L/$1.txt" 2>/dev/null || echo "(no report)"
	echo '```'
	echo
	echo "</details>"
}
# connected_by_second CSV: "1s 120, 2s 450, ..." (connected count at each tick).
connected_by_second() {
	awk -F, 'NR > 1 { printf "%s%.0fs %d", (NR > 2 ? ", " : ""), $1, $2 } END { print "" }' "$1" 2>/dev/null || true
}
declare -A R
# d KEY0 KEY1: R[KEY1] - R[KEY0].
d() { calc 'printf "%d", b - a' a="${R[$1]:-0}" b="${R[$2]:-0}"; }

# ======================================================= (a) fd limit ======
log "(a) fd limit: pgmux under prlimit --nofile=$FD_LIMIT:$FD_LIMIT, $FD_CLIENTS idle clients"
MAX_CLIENT_CONN=1000 LISTEN_BACKLOG=1024
POOLER_WRAP=(prlimit --nofile="$FD_LIMIT:$FD_LIMIT" --)
if start_pooler pgmux fdlimit "$AUTH"; then
	POOLER_WRAP=()
	p=${PORT[pgmux]}
	R[a_limits]=$(grep -E '^Max open files' "/proc/${PID[pgmux]}/limits" | awk '{ print $4 " soft, " $5 " hard" }')
	R[a_fd0]=$(console "$p" "SHOW FD_USAGE")
	load_start a-fdlimit "$p" --clients "$FD_CLIENTS" --connect-rate unlimited --duration 6s --workload idle
	sleep 3
	# One more client while the others are held: the error text it gets.
	R[a_psql]=$(PGCONNECT_TIMEOUT=5 psql -X -Atq -h 127.0.0.1 -p "$p" -U bench -d bench -c 'select 1' 2>&1 | head -n 2 || true)
	R[a_fd1]=$(console "$p" "SHOW FD_USAGE")
	load_wait
	R[a_fd2]=$(console "$p" "SHOW FD_USAGE")
	R[a_log]=$(grep -m1 'too many connections' "$L/pgmux-fdlimit.log" || true)
	R[a_lognum]=$(grep -c 'too many connections' "$L/pgmux-fdlimit.log" || true)
	R[a_startlog]=$(grep -m2 -E 'open-files limit|exceeds the limit' "$L/pgmux-fdlimit.log" || true)
	stop_pooler pgmux
	log "(a) connected $(j a-fdlimit .connections.connected) of $(j a-fdlimit .connections.attempted), failed: $(causes a-fdlimit)"
else
	POOLER_WRAP=()
	R[a_note]="pgmux did not start under prlimit (see logs)"
fi

# ==================================================== (b) accept queue ======
# storm TAG BACKLOG: fresh pgmux with that listen_backlog, STORM_CLIENTS clients at once.
storm() {
	local tag=$1 bl=$2 p sp maxq
	MAX_CLIENT_CONN=$((STORM_CLIENTS + 200)) LISTEN_BACKLOG=$bl
	start_pooler pgmux "$tag" "$AUTH" || { R[b_${tag}_note]="pgmux did not start"; return 0; }
	p=${PORT[pgmux]}
	R[b_${tag}_fd0]=$(console "$p" "SHOW FD_USAGE")
	R[b_${tag}_ss]=$(ss -Hltn "sport = :$p" | awk '{ print "Recv-Q " $2 ", Send-Q (backlog) " $3 }')
	local k
	for k in ListenOverflows ListenDrops TCPSynRetrans SyncookiesSent TCPReqQFullDoCookies TCPReqQFullDrop; do
		R[b_${tag}_${k}0]=$(tcpext "$k")
	done
	# Sample the listener's accept queue (Recv-Q) every 10 ms during the storm.
	(
		trap - ERR
		set +e
		m=0
		while :; do
			q=$(ss -Hltn "sport = :$p" 2>/dev/null | awk '{ print $2 }')
			[[ -n $q && $q -gt $m ]] && { m=$q; echo "$m" >"$L/storm-$tag.maxq"; }
			sleep 0.01
		done
	) &
	sp=$!
	BG_PIDS+=("$sp")
	load "storm-$tag" "$p" --clients "$STORM_CLIENTS" --connect-rate unlimited --procs 2 \
		--duration "${STORM_SECS}s" --workload idle --csv "$L/storm-$tag.csv"
	kill "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
	for k in ListenOverflows ListenDrops TCPSynRetrans SyncookiesSent TCPReqQFullDoCookies TCPReqQFullDrop; do
		R[b_${tag}_${k}1]=$(tcpext "$k")
	done
	R[b_${tag}_fd1]=$(console "$p" "SHOW FD_USAGE")
	maxq=$(cat "$L/storm-$tag.maxq" 2>/dev/null || echo 0)
	R[b_${tag}_maxq]=$maxq
	R[b_${tag}_timeline]=$(connected_by_second "$L/storm-$tag.csv")
	stop_pooler pgmux
	log "(b) listen_backlog=$bl: connected $(j "storm-$tag" .connections.connected) of $STORM_CLIENTS, failed: $(causes "storm-$tag"); ListenOverflows +$(d "b_${tag}_ListenOverflows0" "b_${tag}_ListenOverflows1"), max Recv-Q seen $maxq"
}
log "(b) accept queue: listen_backlog=$BACKLOG, $STORM_CLIENTS clients at once"
storm tiny "$BACKLOG"
if [[ $BACKLOG_CONTROL != 0 ]]; then
	log "(b) control: listen_backlog=$BACKLOG_CONTROL, the same storm"
	storm control "$BACKLOG_CONTROL"
fi

# ================================================ (c) memory per client ======
log "(c) memory: pgmux RSS before/after $IDLE_N idle clients"
MAX_CLIENT_CONN=$((IDLE_N + 200)) LISTEN_BACKLOG=1024
if start_pooler pgmux idle "$AUTH"; then
	p=${PORT[pgmux]} pid=${PID[pgmux]}
	sleep 0.5
	R[c_rss0]=$(rss_bytes "$pid")
	R[c_smaps0]=$(awk '/^(Rss|Pss|Private_Dirty|Anonymous):/ { printf "%s %s kB; ", $1, $2 }' "/proc/$pid/smaps_rollup")
	R[c_sock0]=$(grep '^TCP:' /proc/net/sockstat)
	t0=$(date +%s.%N)
	load_start idle "$p" --clients "$IDLE_N" --connect-rate 5000/s --procs 2 --duration 120s --workload idle
	n=0
	for _ in $(seq 450); do # 90 s at most
		fdu=$(console "$p" "SHOW FD_USAGE")
		n=$(fd_field "$fdu" clients)
		[[ ${n:-0} -ge $IDLE_N ]] && break
		kill -0 "$LOAD_PID" 2>/dev/null || break
		sleep 0.2
	done
	t1=$(date +%s.%N)
	sleep 1 # let pgmux settle
	R[c_fd]=$(console "$p" "SHOW FD_USAGE")
	R[c_clients]=$(fd_field "${R[c_fd]}" clients)
	R[c_rss1]=$(rss_bytes "$pid")
	R[c_smaps1]=$(awk '/^(Rss|Pss|Private_Dirty|Anonymous):/ { printf "%s %s kB; ", $1, $2 }' "/proc/$pid/smaps_rollup")
	R[c_sock1]=$(grep '^TCP:' /proc/net/sockstat)
	R[c_secs]=$(calc 'printf "%.1f", b - a' a="$t0" b="$t1")
	kill -INT "$LOAD_PID" 2>/dev/null || true
	load_wait
	if [[ ${R[c_clients]:-0} -gt 0 ]]; then
		R[c_per]=$(calc 'printf "%.0f", (r1 - r0) / n' r1="${R[c_rss1]}" r0="${R[c_rss0]}" n="${R[c_clients]}")
	fi
	stop_pooler pgmux
	log "(c) ${R[c_clients]:-?} idle clients: RSS ${R[c_rss0]} -> ${R[c_rss1]} bytes, ${R[c_per]:-?} bytes/client"
else
	R[c_note]="pgmux did not start"
fi

# ============================================== (d) max_connections ======
# pg_backends: client backends in pg_stat_activity, this query's own connection excluded.
pg_backends() {
	as_pg psql -X -Atq -h "$TMP/sock" -p "$PGPORT" -U postgres -d postgres -c \
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null || echo '?'
}
# backends_sampler FILE: in the background, the most client backends seen (every 0.5 s) into FILE.
backends_sampler() {
	(
		trap - ERR
		set +e
		m=0
		sleep 3 # after the ramp-up: a superuser takes a free ordinary slot when there is one
		while :; do
			b=$(pg_backends)
			[[ $b =~ ^[0-9]+$ && $b -gt $m ]] && { m=$b; echo "$m" >"$1"; }
			sleep 0.5
		done
	) &
	SAMPLER_PID=$!
	BG_PIDS+=("$SAMPLER_PID")
}

R[d_pg_before]=$(pg_backends)
R[d_pg_backlog]=$(ss -Hltn "sport = :$PGPORT" | awk '{ print $3; exit }')
log "(d) what PostgreSQL answers once max_connections is reached: $((PG_MAX_CONNECTIONS + 5)) idle clients, then one psql"
# max_connections + 5 idle clients fill every non-superuser slot; no superuser query meanwhile
# (a superuser takes a free ordinary slot when there is one).
load_start pg-full "$PGPORT" --clients $((PG_MAX_CONNECTIONS + 5)) --connect-rate 200/s --duration 30s --workload idle
sleep 4
R[d_psql]=$(PGCONNECT_TIMEOUT=10 psql -X -Atq -h 127.0.0.1 -p "$PGPORT" -U bench -d bench -c 'select 1' 2>&1 | head -n 2 || true)
R[d_full_backends]=$(pg_backends)
kill -INT "$LOAD_PID" 2>/dev/null || true
load_wait
pg_settle

log "(d) $DIRECT_N clients straight to PostgreSQL (max_connections = $PG_MAX_CONNECTIONS)"
PGLOG_LINES=$(wc -l <"$L/postgres.log")
backends_sampler "$L/direct.backends"
load direct "$PGPORT" --clients "$DIRECT_N" --connect-rate 1000/s --duration "${SECS}s" --workload select
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
R[d_pg_during]=$(cat "$L/direct.backends" 2>/dev/null || echo '?')
# What PostgreSQL told the refused clients, from its log (both messages are SQLSTATE 53300).
R[d_pgmsgs]=$(tail -n +"$((PGLOG_LINES + 1))" "$L/postgres.log" | grep -o 'FATAL: .*' | grep -v 'does not exist' |
	sed 's/^FATAL: *//' | sort | uniq -c | sort -rn | awk '{ n = $1; $1 = ""; printf "%s%d × \"%s\"", (NR > 1 ? ", " : ""), n, substr($0, 2) }')
pg_settle
R[d_settle]=$SETTLE_S
log "(d) direct: connected $(j direct .connections.connected) of $DIRECT_N, failed: $(causes direct), TPS $(j direct .transactions.tps); PostgreSQL needed $SETTLE_S s to drain"

log "(d) the same $DIRECT_N clients through pgmux, default_pool_size = $POOL_SIZE"
MAX_CLIENT_CONN=$((DIRECT_N + 200)) LISTEN_BACKLOG=1024
if start_pooler pgmux pooled "$AUTH"; then
	p=${PORT[pgmux]}
	backends_sampler "$L/pooled.backends"
	load pooled "$p" --clients "$DIRECT_N" --connect-rate 1000/s --duration "${SECS}s" --workload select
	kill "$SAMPLER_PID" 2>/dev/null || true
	wait "$SAMPLER_PID" 2>/dev/null || true
	R[d_pg_pooled]=$(cat "$L/pooled.backends" 2>/dev/null || echo '?')
	stop_pooler pgmux
	log "(d) pgmux: connected $(j pooled .connections.connected) of $DIRECT_N, failed: $(causes pooled), TPS $(j pooled .transactions.tps)"
else
	R[d_note]="pgmux did not start"
fi

# ============================================================ report ======
T_END=$(date +%s)
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
v() { local x=${R[$1]:-}; printf '%s' "${x:-n/a}"; }
ms() { jq -r "($2) as \$u | if \$u == null then \"?\" elif \$u >= 1000000 then \"\(\$u / 1000000 * 100 | round / 100) s\" else \"\(\$u / 1000 * 10 | round / 10) ms\" end" "$L/$1.json" 2>/dev/null || echo '?'; }
PGMUX_VER="$("$PGMUX_BIN" --version 2>/dev/null | head -n1 || true) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
{
	echo "# Where it breaks: pgmux and PostgreSQL at their limits"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), bench/where-it-breaks.sh, $((T_END - T_START)) s"
	echo
	echo "- machine: $(machine_line); load average before $LOADAVG_START, after $LOADAVG_END (the machine is shared)"
	echo "- versions: $("$PGBIN/postgres" --version); $PGMUX_VER; libpq $(pkg-config --modversion libpq 2>/dev/null || echo '?')"
	echo "- setup: PostgreSQL max_connections = $PG_MAX_CONNECTIONS (superuser_reserved_connections = 3), auth $AUTH on both sides, pgmux pool_mode = transaction, default_pool_size = $POOL_SIZE, loopback TCP, sslmode=disable; every pgmux is a fresh process"
	[[ -n $BUILD_NOTE ]] && echo "- **$BUILD_NOTE**"
	echo
	echo "## (a) The descriptor limit: \`prlimit --nofile=$FD_LIMIT:$FD_LIMIT\`, $FD_CLIENTS clients"
	echo
	if [[ -n ${R[a_note]:-} ]]; then
		echo "**${R[a_note]}**"
	else
		echo "pgmux's limit: $(v a_limits). At startup it logged:"
		echo
		echo '```'
		printf '%s\n' "${R[a_startlog]:-}" | sed 's/^[0-9-]* [0-9:.]* [A-Z]* //'
		echo '```'
		echo
		echo "| attempted | connected | failed | failed by cause | connect p99 |"
		echo "|---:|---:|---:|---|---:|"
		echo "| $(j a-fdlimit .connections.attempted) | **$(j a-fdlimit .connections.connected)** | $(j a-fdlimit .connections.failed) | $(causes a-fdlimit) | $(ms a-fdlimit '.connections.connect_time_us.p99') |"
		echo
		echo "What a refused client gets (one more \`psql\` while the $FD_CLIENTS were held):"
		echo
		echo '```'
		printf '%s\n' "${R[a_psql]:-}"
		echo '```'
		echo
		echo "pgmux logged ${R[a_lognum]:-0} such refusals, e.g.:"
		echo
		echo '```'
		printf '%s\n' "${R[a_log]:-}" | sed 's/^[0-9-]* [0-9:.]* [A-Z]* //'
		echo '```'
		echo
		echo "SHOW FD_USAGE before, while the clients were held (the console login gets in: 8 descriptors are kept for it), and after they left:"
		echo
		{ head -n1 <<<"${R[a_fd0]:-}"; tail -n +2 <<<"${R[a_fd0]:-}"; tail -n +2 <<<"${R[a_fd1]:-}"; tail -n +2 <<<"${R[a_fd2]:-}"; } | md_table |
			awk 'NR == 1 { print "| |" substr($0, 2); next } NR == 2 { print "|---|" substr($0, 2); next } { print "| " (NR == 3 ? "before" : NR == 4 ? "held" : "after") " |" substr($0, 2) }'
		echo
		echo "pgmux-load's own snapshot at the peak:"
		echo
		snapshot_md a-fdlimit
		details a-fdlimit
	fi
	echo
	echo "## (b) Accept-queue overflow: \`listen_backlog = $BACKLOG\`, $STORM_CLIENTS clients at once"
	echo
	echo "pgmux-load --clients $STORM_CLIENTS --connect-rate unlimited --procs 2 --workload idle --duration ${STORM_SECS}s (libpq attempts time out after 10 s: \`--connect-timeout\` default)."
	echo "Kernel counters are this network namespace's \`/proc/net/netstat\` TcpExt values (every socket on the machine, other users' included)."
	echo
	echo "| listen_backlog | connected | failed by cause | connect p50 | p90 | p99 | max | max Recv-Q seen | ListenOverflows Δ | ListenDrops Δ | TCPSynRetrans Δ | SyncookiesSent Δ | backlog_overflows before → after | accept_backlog after |"
	echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
	for tag in tiny control; do
		[[ $tag == control && $BACKLOG_CONTROL == 0 ]] && continue
		bl=$BACKLOG
		[[ $tag == control ]] && bl=$BACKLOG_CONTROL
		if [[ -n ${R[b_${tag}_note]:-} ]]; then echo "| $bl | ${R[b_${tag}_note]} |"; continue; fi
		echo "| $bl | **$(j "storm-$tag" .connections.connected)** of $STORM_CLIENTS | $(causes "storm-$tag") | $(ms "storm-$tag" .connections.connect_time_us.p50) | $(ms "storm-$tag" .connections.connect_time_us.p90) | $(ms "storm-$tag" .connections.connect_time_us.p99) | $(ms "storm-$tag" .connections.connect_time_us.max) | $(v "b_${tag}_maxq") | $(d "b_${tag}_ListenOverflows0" "b_${tag}_ListenOverflows1") | $(d "b_${tag}_ListenDrops0" "b_${tag}_ListenDrops1") | $(d "b_${tag}_TCPSynRetrans0" "b_${tag}_TCPSynRetrans1") | $(d "b_${tag}_SyncookiesSent0" "b_${tag}_SyncookiesSent1") | $(fd_field "${R[b_${tag}_fd0]:-}" backlog_overflows) → $(fd_field "${R[b_${tag}_fd1]:-}" backlog_overflows) | $(fd_field "${R[b_${tag}_fd1]:-}" accept_backlog) |"
	done
	echo
	for tag in tiny control; do
		[[ $tag == control && $BACKLOG_CONTROL == 0 ]] && continue
		[[ -n ${R[b_${tag}_note]:-} ]] && continue
		bl=$BACKLOG
		[[ $tag == control ]] && bl=$BACKLOG_CONTROL
		echo "- listen_backlog = $bl, listener before the storm: $(v "b_${tag}_ss"); clients connected at each second: $(v "b_${tag}_timeline")"
	done
	details storm-tiny
	[[ $BACKLOG_CONTROL != 0 ]] && details storm-control
	echo
	echo "## (c) Memory per idle client: $IDLE_N idle clients"
	echo
	if [[ -n ${R[c_note]:-} ]]; then
		echo "**${R[c_note]}**"
	else
		echo "| pgmux VmRSS before | VmRSS with the clients | clients in pgmux (SHOW FD_USAGE) | **bytes per idle client** | logins took |"
		echo "|---:|---:|---:|---:|---:|"
		echo "| $(v c_rss0) | $(v c_rss1) | $(v c_clients) | **$(v c_per)** | $(v c_secs) s |"
		echo
		echo "- smaps_rollup before: $(v c_smaps0)"
		echo "- smaps_rollup after: $(v c_smaps1)"
		echo "- kernel sockets (/proc/net/sockstat, whole machine; \`mem\` is in pages, socket buffers only) before: \`$(v c_sock0)\`, after: \`$(v c_sock1)\`. Kernel memory is not in RSS."
		echo "- pgmux-load: connected $(j idle .connections.connected) of $(j idle .connections.attempted), failed: $(causes idle); connect p99 $(ms idle .connections.connect_time_us.p99)"
		details idle
	fi
	echo
	echo "## (d) PostgreSQL's max_connections against pgmux: $DIRECT_N clients, workload select, ${SECS} s"
	echo
	echo "| target | PostgreSQL backends for the clients | connected | failed by cause | TPS | p50 | p99 | p99.9 |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|"
	echo "| PostgreSQL directly (max_connections = $PG_MAX_CONNECTIONS) | $(v d_pg_during) | $(j direct .connections.connected) | $(causes direct) | $(j direct '.transactions.tps | round') | $(ms direct .transactions.latency_us.p50) | $(ms direct .transactions.latency_us.p99) | $(ms direct '.transactions.latency_us["p99.9"]') |"
	if [[ -n ${R[d_note]:-} ]]; then
		echo "| pgmux | ${R[d_note]} |"
	else
		echo "| pgmux, default_pool_size = $POOL_SIZE | $(v d_pg_pooled) | $(j pooled .connections.connected) | $(causes pooled) | $(j pooled '.transactions.tps | round') | $(ms pooled .transactions.latency_us.p50) | $(ms pooled .transactions.latency_us.p99) | $(ms pooled '.transactions.latency_us["p99.9"]') |"
	fi
	echo
	echo "PostgreSQL's log for the direct run: $(v d_pgmsgs)."
	echo
	echo "(\"backends\": the most client backends pg_stat_activity showed during the run, sampled every 0.5 s from 3 s in; before the run: $(v d_pg_before).)"
	echo
	echo "After the direct run PostgreSQL needed $(v d_settle) s to drain the connections still queued on its listener and the backends still exiting (refusing a client costs a backend process); the pgmux run started after that."
	echo
	echo "PostgreSQL's TCP listener has a backlog of $(v d_pg_backlog) (ss Send-Q: 2 × MaxBackends, i.e. max_connections plus background and autovacuum workers)."
	echo
	echo "What a refused client gets from PostgreSQL: pgmux-load \`--clients $((PG_MAX_CONNECTIONS + 5)) --workload idle\` held $(j pg-full .connections.connected) connections (failed: $(causes pg-full); $(v d_full_backends) backends in pg_stat_activity), then one more \`psql\`:"
	echo
	echo '```'
	printf '%s\n' "${R[d_psql]:-}"
	echo '```'
	echo
	echo "pgmux's pool at the peak (pgmux-load's snapshot):"
	echo
	snapshot_md pooled
	details direct
	details pooled
} >"$OUT/where-it-breaks.md"
cat "$OUT/where-it-breaks.md"
log "done in $((T_END - T_START)) s; summary in bench/out/where-it-breaks.md, logs in bench/out/logs-where-it-breaks/"
