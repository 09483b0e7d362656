#!/usr/bin/env bash
# dev-up.sh: one command from a fresh checkout to a running pgmux: installs
# missing packages, builds, starts a throwaway PostgreSQL 15 under .run/ on a
# free port (SCRAM passwords, role app owning database appdb, role admin),
# writes .run/pgmux.ini and .run/userlist.txt, starts pgmux on
# 127.0.0.1:6432 in the background and prints how to connect. Safe to run
# again: PostgreSQL is reused, pgmux is restarted on the fresh build.
# Stop everything with scripts/dev-down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/dev-env.sh"

die() { echo "dev-up: $*" >&2; exit 1; }

# Passwords are generated once and kept in .run/ so repeated runs agree.
secret() {
	local f=$RUN/$1
	if [ ! -s "$f" ]; then
		tr -dc 'A-Za-z0-9' </dev/urandom | head -c 20 >"$f"
		chmod 600 "$f"
	fi
	cat "$f"
}

# ---- 1. packages and build ----------------------------------------------------
"$ROOT/scripts/deps.sh"
echo "dev-up: building"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >"$ROOT/build.log" 2>&1 &&
	cmake --build "$ROOT/build" -j2 >>"$ROOT/build.log" 2>&1 ||
	{ tail -40 "$ROOT/build.log" >&2; die "build failed (full log: build.log)"; }
rm -f "$ROOT/build.log"
[ -x "$PGMUX_BIN" ] || die "build produced no $PGMUX_BIN"

# ---- 2. PostgreSQL -------------------------------------------------------------
mkdir -p "$RUN"
APP_PASSWORD=$(secret app.password)
ADMIN_PASSWORD=$(secret admin.password)

if [ ! -e "$PGDATA" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		if runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
			mkdir -p "$PGDATA"
		else
			# postgres cannot traverse the checkout's parents.
			mkdir -p "$FALLBACK_BASE/pgdata"
			ln -s "$FALLBACK_BASE/pgdata" "$PGDATA"
			PGDATA=$FALLBACK_BASE/pgdata
			echo "dev-up: postgres cannot reach $RUN; cluster data in $FALLBACK_BASE"
		fi
		chown postgres: "$PGDATA/"
	else
		mkdir -p "$PGDATA"
	fi
	chmod 700 "$PGDATA/"
fi

if [ ! -f "$PGDATA/PG_VERSION" ]; then
	echo "dev-up: initdb in $PGDATA"
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=reject \
		-E UTF8 --no-locale >"$RUN/initdb.log" 2>&1 ||
		{ cat "$RUN/initdb.log" >&2; die "initdb failed"; }
	as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<-CONF
	# dev-up.sh
	listen_addresses = '127.0.0.1'
	unix_socket_directories = '/tmp'
	password_encryption = 'scram-sha-256'
	max_connections = 300
	CONF
	as_pg tee "$PGDATA/pg_hba.conf" >/dev/null <<-HBA
	# dev-up.sh: local socket by OS user, TCP by SCRAM password only.
	local all all peer
	host all all 127.0.0.1/32 scram-sha-256
	host all all ::1/128 scram-sha-256
	HBA
fi

if pg_running; then
	PG_PORT=$(cat "$PG_PORT_FILE")
	echo "dev-up: PostgreSQL already running on port $PG_PORT"
else
	PG_PORT=$(cat "$PG_PORT_FILE" 2>/dev/null || true)
	tries=0
	while :; do
		if [ -z "$PG_PORT" ] || port_in_use "$PG_PORT"; then
			PG_PORT=$((15432 + RANDOM % 4500))
			port_in_use "$PG_PORT" && continue
		fi
		if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/postgres.log" -o "-p $PG_PORT" \
			-w -t 60 start >/dev/null; then
			break
		fi
		tries=$((tries + 1))
		[ $tries -lt 5 ] || { tail -20 "$PGDATA/postgres.log" >&2; die "PostgreSQL did not start"; }
		PG_PORT=
	done
	echo "$PG_PORT" >"$PG_PORT_FILE"
	echo "dev-up: PostgreSQL 15 started on 127.0.0.1:$PG_PORT"
fi

# Roles and database, idempotently (passwords re-set to the files' values).
as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h /tmp -p "$PG_PORT" -U postgres -d postgres \
	-v app_pw="$APP_PASSWORD" -v admin_pw="$ADMIN_PASSWORD" >/dev/null <<-'SQL'
SET password_encryption = 'scram-sha-256';
SELECT 'CREATE ROLE app LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app')
\gexec
SELECT 'CREATE ROLE admin LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'admin')
\gexec
ALTER ROLE app PASSWORD :'app_pw';
ALTER ROLE admin PASSWORD :'admin_pw';
SELECT 'CREATE DATABASE appdb OWNER app' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'appdb')
\gexec
SQL

# ---- 3. pgmux ------------------------------------------------------------------
cat >"$RUN/userlist.txt" <<-USERS
"app" "$APP_PASSWORD"
"admin" "$ADMIN_PASSWORD"
USERS
chmod 600 "$RUN/userlist.txt"
cat >"$RUN/pgmux.ini" <<-INI
; Written by scripts/dev-up.sh; rewritten on every run.
[databases]
appdb = host=127.0.0.1 port=$PG_PORT dbname=appdb

[pgmux]
listen_addr = 127.0.0.1
listen_port = $PGMUX_PORT
unix_socket_dir = /tmp
auth_type = scram-sha-256
auth_file = $RUN/userlist.txt
admin_users = admin
stats_users = admin
pool_mode = transaction
default_pool_size = 10
max_client_conn = 1000
logfile = $RUN/pgmux.log
pidfile = $PGMUX_PIDFILE
INI

# Restart on the binary just built (a running one may be older).
if [ -n "$(pgmux_pid)" ]; then
	echo "dev-up: restarting pgmux"
	stop_pgmux
fi
if port_in_use "$PGMUX_PORT"; then
	ss -Htlnp "sport = :$PGMUX_PORT" >&2 || true
	die "port $PGMUX_PORT is taken by another process (a system pgbouncer? try: systemctl stop pgbouncer), or set PGMUX_PORT"
fi
setsid "$PGMUX_BIN" "$RUN/pgmux.ini" </dev/null >>"$RUN/pgmux.stderr" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
	kill -0 "$PID" 2>/dev/null || { tail -20 "$RUN/pgmux.stderr" >&2; die "pgmux exited during startup"; }
	port_in_use "$PGMUX_PORT" && break
	sleep 0.1
done
port_in_use "$PGMUX_PORT" || { tail -20 "$RUN/pgmux.stderr" >&2; die "pgmux did not listen on $PGMUX_PORT within 15 s"; }
[ -s "$PGMUX_PIDFILE" ] || echo "$PID" >"$PGMUX_PIDFILE"

if ! out=$(PGPASSWORD=$APP_PASSWORD PGCONNECT_TIMEOUT=10 psql -X -At -h 127.0.0.1 -p "$PGMUX_PORT" \
	-U app -d appdb -c 'SELECT 1' 2>&1) || [ "$out" != 1 ]; then
	echo "$out" >&2
	tail -20 "$RUN/pgmux.stderr" >&2
	die "pgmux is up (pid $PID) but a query through it failed"
fi

cat <<-DONE

	pgmux $("$PGMUX_BIN" --version 2>/dev/null | head -1 | sed 's/^pgmux //') is running (pid $PID) on 127.0.0.1:$PGMUX_PORT, in front of PostgreSQL 15 on 127.0.0.1:$PG_PORT.

	  connect:        PGPASSWORD=$APP_PASSWORD psql -h 127.0.0.1 -p $PGMUX_PORT -U app appdb
	  admin console:  PGPASSWORD=$ADMIN_PASSWORD psql -h 127.0.0.1 -p $PGMUX_PORT -U admin pgmux
	                  (then SHOW POOLS; SHOW VERSION;)
	  config, logs:   .run/pgmux.ini  .run/userlist.txt  .run/pgmux.log
	  stop:           scripts/dev-down.sh          (keeps .run/, so the next dev-up is quick)
	                  scripts/dev-down.sh --purge  (also deletes .run/ and the database)
DONE
