# dev-env.sh: shared settings for dev-up.sh and dev-down.sh (sourced, not run).
# Everything lives under .run/ at the top of the checkout (git-ignored). When
# the postgres OS user cannot reach .run/ (e.g. the checkout is under /root),
# the cluster's data goes to /var/tmp/pgmux-dev-<hash>/ with a symlink in .run/.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=$ROOT/.run
PGBIN=/usr/lib/postgresql/15/bin
PGMUX_PORT=${PGMUX_PORT:-6432}
PGMUX_BIN=$ROOT/build/pgmux
PGDATA=$RUN/pgdata
# postgres must be handed the real path when .run/pgdata is the fallback link.
[ -L "$PGDATA" ] && PGDATA=$(readlink "$PGDATA")
PG_PORT_FILE=$RUN/pg.port
PGMUX_PIDFILE=$RUN/pgmux.pid
FALLBACK_BASE=/var/tmp/pgmux-dev-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)

# PostgreSQL refuses to run as root: use the postgres OS user then.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		# From /: the checkout itself may be closed to postgres.
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

port_in_use() {
	ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

pg_running() {
	[ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# pid of our pgmux if it is running, else nothing.
pgmux_pid() {
	local pid
	[ -f "$PGMUX_PIDFILE" ] || return 0
	pid=$(cat "$PGMUX_PIDFILE" 2>/dev/null || true)
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	# Match on the config path in its command line: /proc/PID/exe reads
	# "... (deleted)" once a rebuild has replaced the binary.
	if kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$RUN/pgmux.ini"; then
		echo "$pid"
	fi
}

stop_pgmux() {
	local pid i
	pid=$(pgmux_pid)
	[ -n "$pid" ] || { rm -f "$PGMUX_PIDFILE"; return 0; }
	kill -TERM "$pid"
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "pgmux (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
		kill -KILL "$pid" || true
	fi
	rm -f "$PGMUX_PIDFILE"
}
