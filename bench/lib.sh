# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# bench/lib.sh: shell functions shared by bench/bench.sh, bench/where-it-breaks.sh and
# bench/compare.sh. Source it (bash only) after `set -Eeuo pipefail`:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It defines BENCH_DIR, REPO, OUT, PGBIN, PGBOUNCER_BIN, PGMUX_BIN, CLK_TCK, IS_ROOT and the
# functions below; it starts nothing by itself. The caller then uses, in this order:
#   lib_workspace          temporary directory $TMP (chowned to postgres when root), as_pg,
#                          RUN_AS_PG, and the EXIT/INT/TERM/ERR traps that clean everything up
#   pg_start               throwaway PostgreSQL 15 on a free loopback port ($PGPORT), with the
#                          role "bench" (password $PW, exported as PGPASSWORD) owning database bench
#   pg_settle_init, pg_settle  wait until PostgreSQL has drained a run that overran max_connections
#   net_settle              wait until the TIME-WAIT sockets of the last run are nearly gone
#   write_userlist         $TMP/userlist.txt for the poolers
#   start_pooler / stop_pooler
# Knobs read by those functions (set them before the call):
#   LIB_TAG                 log prefix ("bench")
#   LOGS_DEST               where cleanup copies the logs ("$OUT/logs")
#   PG_MAX_CONNECTIONS      PostgreSQL max_connections (300)
#   PG_AUTH                 scram-sha-256 or md5: pg_hba method and password_encryption
#                           (scram-sha-256)
#   POOL_SIZE, MAX_CLIENT_CONN  pooler default_pool_size and max_client_conn (20, 10200)
#   LISTEN_BACKLOG          pooler listen_backlog (1024)
#   POOLER_EXTRA_CONF       lines appended to the pooler's section (empty)
#   POOLER_WRAP             array: command prefix for the pooler, e.g. (prlimit --nofile=100:100 --)
# Variables they set: TMP, PGPORT, PW, PG_STARTED, PID[key], PORT[key]; BG_PIDS and POOLER_PIDS
# collect what cleanup stops.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
OUT="$BENCH_DIR/out"
PGBIN=/usr/lib/postgresql/15/bin
PGMUX_BIN=${PGMUX_BIN:-$REPO/build/pgmux}
PGBOUNCER_BIN=/usr/sbin/pgbouncer
CLK_TCK=$(getconf CLK_TCK)
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1
LIB_TAG=${LIB_TAG:-bench}
PG_MAX_CONNECTIONS=${PG_MAX_CONNECTIONS:-300}
PG_AUTH=${PG_AUTH:-scram-sha-256}
POOL_SIZE=${POOL_SIZE:-20}
MAX_CLIENT_CONN=${MAX_CLIENT_CONN:-10200}
LISTEN_BACKLOG=${LISTEN_BACKLOG:-1024}
POOLER_EXTRA_CONF=${POOLER_EXTRA_CONF:-}
POOLER_WRAP=()
BG_PIDS=()       # helpers to kill on exit (load generators, strace, idle_clients)
POOLER_PIDS=()   # poolers to stop on exit
PG_STARTED=0
USED_PORTS=" "
declare -A PID PORT NAME
NAME[pgmux]=pgmux
NAME[pgbouncer]=PgBouncer

# libpq defaults for every client we run: plain TCP, no TLS/GSS negotiation.
export PGSSLMODE=disable PGGSSENCMODE=disable PGCONNECT_TIMEOUT=60
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS 2>/dev/null || true

log() { printf '[%s %s] %s\n' "$LIB_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
loud() {
	printf '\n[%s] ************************************************************\n' "$LIB_TAG" >&2
	printf "[$LIB_TAG] *** %s\n" "$@" >&2
	printf '[%s] ************************************************************\n\n' "$LIB_TAG" >&2
}
die() { log "FATAL: $*"; exit 1; }
# Floating-point helper: calc "<awk expression>" var=value...
calc() {
	local expr=$1; shift
	local args=()
	for a in "$@"; do args+=(-v "$a"); done
	awk "${args[@]}" "BEGIN { $expr }"
}

# ---------------------------------------------------------------- install ---
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
apt_install_missing() {
	local missing=()
	for p in "$@"; do pkg_missing "$p" && missing+=("$p"); done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	if [[ $IS_ROOT -ne 1 ]]; then
		log "missing packages (not root, cannot install): ${missing[*]}"
		return 1
	fi
	log "installing: ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# build_targets LOGFILE TARGET...: cmake configure (if needed) and build the given targets.
build_targets() {
	local logf=$1; shift
	apt_install_missing cmake pkg-config libuv1-dev libinih-dev libssl-dev uthash-dev libcmocka-dev libpq-dev ||
		log "warning: build dependencies missing"
	(
		cd "$REPO" || exit 1
		[[ -f build/CMakeCache.txt && (-f build/Makefile || -f build/build.ninja) ]] || cmake -S . -B build
		local t
		for t in "$@"; do cmake --build build -j2 --target "$t"; done
	) >"$logf" 2>&1
}

# stale_note BIN PATH...: a warning if a source file under PATH... (*.c, *.h) is newer than BIN.
stale_note() {
	local bin=$1 newer
	shift
	[[ -x $bin ]] || return 0
	newer=$(find "$@" -newer "$bin" -name '*.[ch]' -print -quit 2>/dev/null || true)
	[[ -n $newer ]] && printf '%s is older than %s (built %s): the figures are for that older binary' \
		"${bin#"$REPO"/}" "${newer#"$REPO"/}" "$(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC')"
	return 0
}
# stale_notes: stale_note for build/pgmux and build/tools/pgmux-load, "; "-separated.
stale_notes() {
	local a b
	a=$(stale_note "$PGMUX_BIN" "$REPO/pooler" "$REPO/admin" "$REPO/protocol")
	b=$(stale_note "$LOAD_BIN" "$REPO/tools" "$REPO/pooler/hist.c" "$REPO/pooler/hist.h")
	printf '%s%s%s' "$a" "${a:+${b:+; }}" "$b"
}

# ------------------------------------------------------------- workspace ---
# as_pg CMD...: run CMD as the postgres OS user (when root).
as_pg() { if [[ $IS_ROOT -eq 1 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
	local rc=$?
	set +e
	trap - ERR
	for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${POOLER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 50); do
		local alive=0
		for p in "${POOLER_PIDS[@]}" "${BG_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[[ $alive -eq 0 ]] && break
		sleep 0.1
	done
	for p in "${POOLER_PIDS[@]}" "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	if [[ $PG_STARTED -eq 1 ]]; then
		as_pg "$PGBIN/pg_ctl" -D "$TMP/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			as_pg "$PGBIN/pg_ctl" -D "$TMP/pgdata" -m immediate stop >/dev/null 2>&1
	fi
	local dest=${LOGS_DEST:-$OUT/logs}
	if [[ -n ${TMP:-} && -d $TMP/logs ]]; then
		rm -rf "$dest"
		cp -r "$TMP/logs" "$dest" 2>/dev/null
	fi
	[[ ${TMP:-} == /tmp/pgmux-bench.* ]] && rm -rf "$TMP"
	exit "$rc"
}

# lib_workspace: $TMP with sock/ and logs/, RUN_AS_PG, and the cleanup traps.
lib_workspace() {
	TMP=$(mktemp -d /tmp/pgmux-bench.XXXXXX)
	chmod 755 "$TMP"
	RUN_AS_PG=()   # prefix to run a long-lived server as the postgres user, same PID
	if [[ $IS_ROOT -eq 1 ]]; then
		id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (the postgresql package creates it)"
		RUN_AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
		chown postgres: "$TMP"
	fi
	mkdir -p "$TMP/sock" "$TMP/logs"
	[[ $IS_ROOT -eq 1 ]] && chown postgres: "$TMP/sock" "$TMP/logs"
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
}

# free_port VAR: a port nobody listens on, below the ephemeral range.
free_port() {
	local p
	for _ in $(seq 500); do
		p=$((15000 + RANDOM % 15000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]]; then
			USED_PORTS+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free port"
}

# cpu_ticks PID: utime+stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
	stat=${stat##*) }   # comm may contain spaces: drop through the last ')'
	# fields after comm: state(3) ... utime is field 14, stime 15 => 12th, 13th here
	awk '{ print $12 + $13 }' <<<"$stat"
}
# rss_bytes PID: resident set size.
rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo -1; }
# hwm_bytes PID: peak resident set size (VmHWM).
hwm_bytes() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo -1; }

# ------------------------------------------------------------ PostgreSQL ---
# pg_start: initdb, start, role bench with a random password, database bench.
pg_start() {
	PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	PGDATA="$TMP/pgdata"
	free_port PGPORT
	log "initdb (PostgreSQL 15, port $PGPORT, data in $TMP)"
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-sync \
		--auth-local=trust --auth-host="$PG_AUTH" >"$TMP/logs/initdb.log" 2>&1 ||
		{ cat "$TMP/logs/initdb.log" >&2; die "initdb failed"; }
	cat >>"$PGDATA/postgresql.conf" <<EOF
# bench/$(basename "$0")
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$TMP/sock'
max_connections = $PG_MAX_CONNECTIONS
password_encryption = '$PG_AUTH'
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
log_min_messages = warning
log_checkpoints = off
EOF
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/logs/postgres.log" -w -t 60 start >/dev/null ||
		{ tail -n 20 "$TMP/logs/postgres.log" >&2; die "PostgreSQL did not start"; }
	PG_STARTED=1
	psql_admin "CREATE ROLE bench LOGIN PASSWORD '$PW'" >/dev/null
	psql_admin "CREATE DATABASE bench OWNER bench" >/dev/null
	export PGPASSWORD=$PW
}
psql_admin() { as_pg psql -X -q -h "$TMP/sock" -p "$PGPORT" -U postgres -d "${2:-postgres}" -v ON_ERROR_STOP=1 -c "$1"; }

# pg_settle: wait (at most 60 s) until PostgreSQL has drained what the last run left behind:
# nothing in its listener's accept queue and no more client backends than after the warm-up
# (a run that overran max_connections leaves queued connections and exiting backends behind;
# the next target must not pay for them). Sets SETTLE_S. Call pg_settle_init once first.
# pg_children: postmaster children that are not its own background processes (client backends,
# including those forked only to refuse a client or for a connection already gone).
# shellcheck disable=SC2009 # pgrep cannot exclude by title
pg_children() {
	ps --ppid "$PG_PM_PID" -o args= 2>/dev/null |
		grep -cvE 'checkpointer|background writer|walwriter|autovacuum|logical replication|archiver|stats' || true
}
pg_settle_init() {
	PG_PM_PID=$(head -n1 "$PGDATA/postmaster.pid")
	sleep 0.5
	PG_BASE_CHILDREN=$(pg_children)
}
pg_settle() {
	local t0 q c ok=0
	t0=$(date +%s.%N)
	sleep 0.5
	for _ in $(seq 600); do
		q=$(ss -Hltn "sport = :$PGPORT" 2>/dev/null | awk '{ print $2; exit }')
		c=$(pg_children)
		if [[ ${q:-0} -eq 0 && ${c:-0} -le $PG_BASE_CHILDREN ]]; then
			ok=$((ok + 1))
			[[ $ok -ge 2 ]] && break
		else
			ok=0
		fi
		sleep 0.1
	done
	SETTLE_S=$(calc 'printf "%.1f", b - a' a="$t0" b="$(date +%s.%N)")
}
# net_settle: wait (at most 70 s) until the loopback TCP sockets a run left in TIME-WAIT are
# nearly gone (under 500). After a 10,000-client run (two per connection: the client's and, for
# PostgreSQL directly, the server's), the next target connected with the kernel still holding
# ~10,000 of them, and whichever target came next ran at a fraction of its TPS with multi-second
# stalls: PgBouncer second after pgmux as much as pgmux second after PgBouncer. Sets NET_SETTLE_S.
net_settle() {
	local t0 tw
	t0=$(date +%s.%N)
	for _ in $(seq 700); do
		tw=$(ss -Htan state time-wait 2>/dev/null | wc -l)
		[[ ${tw:-0} -lt 500 ]] && break
		sleep 0.1
	done
	NET_SETTLE_S=$(calc 'printf "%.1f", b - a' a="$t0" b="$(date +%s.%N)")
}
# ------------------------------------------------------------- poolers ---
write_userlist() {
	printf '"bench" "%s"\n' "$PW" >"$TMP/userlist.txt"
	[[ $IS_ROOT -eq 1 ]] && chown postgres: "$TMP/userlist.txt"
	chmod 600 "$TMP/userlist.txt"
	# pgmux must be executable by the postgres user; copy it if its path is not.
	if [[ $IS_ROOT -eq 1 && -x $PGMUX_BIN ]] && ! "${RUN_AS_PG[@]}" test -x "$PGMUX_BIN"; then
		cp "$PGMUX_BIN" "$TMP/pgmux" && chmod 755 "$TMP/pgmux"
		PGMUX_BIN="$TMP/pgmux"
	fi
	return 0
}

# write_config FILE SECTION PORT AUTH_TYPE
write_config() {
	cat >"$1" <<EOF
;; written by bench/$(basename "$0")
[databases]
bench = host=127.0.0.1 port=$PGPORT dbname=bench

[$2]
listen_addr = 127.0.0.1
listen_port = $3
unix_socket_dir = $TMP/sock
auth_type = $4
auth_file = $TMP/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = $MAX_CLIENT_CONN
listen_backlog = $LISTEN_BACKLOG
log_connections = 0
log_disconnections = 0
EOF
	[[ -n $POOLER_EXTRA_CONF ]] && printf '%s\n' "$POOLER_EXTRA_CONF" >>"$1"
	[[ $IS_ROOT -eq 1 ]] && chown postgres: "$1"
	return 0
}

# start_pooler KEY TAG AUTH_TYPE: starts a fresh instance on a new port; sets PID[KEY], PORT[KEY].
start_pooler() {
	local key=$1 tag=$2 auth=$3 port cfg bin section pid
	free_port port
	cfg="$TMP/$key-$tag.ini"
	if [[ $key == pgmux ]]; then bin=$PGMUX_BIN section=pgmux; else bin=$PGBOUNCER_BIN section=pgbouncer; fi
	write_config "$cfg" "$section" "$port" "$auth"
	(exec "${POOLER_WRAP[@]}" "${RUN_AS_PG[@]}" "$bin" "$cfg") >"$TMP/logs/$key-$tag.log" 2>&1 &
	pid=$!
	POOLER_PIDS+=("$pid")
	local ok=0
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		if [[ $(PGCONNECT_TIMEOUT=2 psql -X -Atq -h 127.0.0.1 -p "$port" -U bench -d bench -c 'select 1' 2>/dev/null) == 1 ]]; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [[ $ok -ne 1 ]]; then
		log "${NAME[$key]} ($tag) did not come up; tail of its log:"
		tail -n 15 "$TMP/logs/$key-$tag.log" >&2 || true
		kill -TERM "$pid" 2>/dev/null || true
		return 1
	fi
	PID[$key]=$pid
	PORT[$key]=$port
	log "${NAME[$key]} ($tag, auth $auth) pid $pid on 127.0.0.1:$port"
}
stop_pooler() {
	local pid=${PID[$1]:-}
	[[ -z $pid ]] && return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	PID[$1]=""
}

# machine_line: one line describing this machine, for reports.
machine_line() {
	printf '%s CPUs (%s), kernel %s, %s RAM' "$(nproc)" \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -r)" \
		"$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
}
