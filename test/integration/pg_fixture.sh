#!/usr/bin/env bash
# pg_fixture.sh: throwaway PostgreSQL 15 cluster shared by the integration
# tests of one ctest run (registered as a ctest FIXTURES_SETUP/CLEANUP pair in
# tests.cmake). "start <dir>" creates the cluster in a fresh directory under
# /tmp owned by the postgres OS user, on a free TCP port, with SCRAM passwords,
# and writes <dir>/env (KEY=VALUE lines read by harness.c); "stop <dir>" stops
# it and removes the cluster. Run as root (initdb runs via runuser) or as the
# postgres user itself.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# Fixed credentials: the cluster only listens on 127.0.0.1 and lives for one
# test run, so secrecy buys nothing and fixed values keep failures readable.
SUPER_USER=fixture_super
SUPER_PASSWORD=fixture-super-pw
APP_USER=app
APP_PASSWORD=app-pw
MD5_USER=app_md5
MD5_PASSWORD=app-md5-pw
ADMIN_USER=admin
ADMIN_PASSWORD=admin-pw
DB=appdb
# auth_query (test_auth_query.c): AUTH_USER runs pgmux_auth.user_lookup($1), a
# SECURITY DEFINER function reading pg_authid as PgBouncer's docs recommend,
# which counts its calls in pgmux_auth.calls; the AQ_* users are in no
# auth_file: a SCRAM one, an md5 one, one without a password and one whose
# password expired.
AUTH_USER=pgmux_auth
AUTH_PASSWORD=pgmux-auth-pw
AQ_SCRAM_USER=aq_scram
AQ_SCRAM_PASSWORD=aq-scram-pw
AQ_MD5_USER=aq_md5
AQ_MD5_PASSWORD=aq-md5-pw
AQ_NOPW_USER=aq_nopw
AQ_EXPIRED_USER=aq_expired
AQ_EXPIRED_PASSWORD=aq-expired-pw

die() { echo "pg_fixture: $*" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_in_use() {
	ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

start() {
	local dir=$1 base data port tries=0 sock
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -f "$dir/env" ]; then
		# A previous run died without cleanup: stop its cluster first.
		stop "$dir" || true
	fi
	base=$(mktemp -d /tmp/pgmux-pgfix.XXXXXX)
	chmod 0755 "$base"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$base"
	data=$base/data
	sock=$base/sock
	as_pg mkdir -p "$sock"

	printf '%s\n' "$SUPER_PASSWORD" >"$base/pwfile"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$base/pwfile"
	as_pg "$PGBIN/initdb" -D "$data" -U "$SUPER_USER" --pwfile="$base/pwfile" \
		-A scram-sha-256 --auth-local=trust -E UTF8 --no-locale \
		--no-sync >"$base/initdb.log" 2>&1 ||
		{ cat "$base/initdb.log" >&2; die "initdb failed"; }

	cat >>"$data/postgresql.conf" <<-CONF
	listen_addresses = '127.0.0.1'
	unix_socket_directories = '$sock'
	max_connections = 300
	password_encryption = 'scram-sha-256'
	fsync = off
	synchronous_commit = off
	full_page_writes = off
	shared_buffers = 64MB
	log_min_messages = warning
	log_connections = off
	CONF
	# app_md5's password is stored as md5, which a scram-sha-256 hba line
	# would refuse; an md5 line accepts md5 and SCRAM-stored passwords.
	cat >"$data/pg_hba.conf" <<-HBA
	local all all trust
	host all $MD5_USER 127.0.0.1/32 md5
	host all $AQ_MD5_USER 127.0.0.1/32 md5
	host all all 127.0.0.1/32 scram-sha-256
	HBA

	while :; do
		tries=$((tries + 1))
		[ $tries -le 20 ] || die "no free port found for PostgreSQL"
		port=$((15000 + RANDOM % 5000))
		port_in_use "$port" && continue
		if as_pg "$PGBIN/pg_ctl" -D "$data" -l "$base/postgres.log" \
			-o "-p $port" -w -t 60 start >/dev/null 2>&1; then
			break
		fi
		# Lost a race for the port, or a real failure: show the log on the last try.
		[ $tries -lt 20 ] || { cat "$base/postgres.log" >&2; die "pg_ctl start failed"; }
	done
	echo "$port" >"$base/port"

	as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" \
		-U "$SUPER_USER" -d postgres >/dev/null <<-SQL
	SET password_encryption = 'scram-sha-256';
	CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD';
	CREATE ROLE $ADMIN_USER LOGIN PASSWORD '$ADMIN_PASSWORD';
	CREATE ROLE $AUTH_USER LOGIN PASSWORD '$AUTH_PASSWORD';
	CREATE ROLE $AQ_SCRAM_USER LOGIN PASSWORD '$AQ_SCRAM_PASSWORD';
	CREATE ROLE $AQ_NOPW_USER LOGIN;
	CREATE ROLE $AQ_EXPIRED_USER LOGIN PASSWORD '$AQ_EXPIRED_PASSWORD'
		VALID UNTIL '2000-01-01';
	SET password_encryption = 'md5';
	CREATE ROLE $MD5_USER LOGIN PASSWORD '$MD5_PASSWORD';
	CREATE ROLE $AQ_MD5_USER LOGIN PASSWORD '$AQ_MD5_PASSWORD';
	RESET password_encryption;
	CREATE DATABASE $DB OWNER $APP_USER;
	\\c $DB
	GRANT ALL ON SCHEMA public TO $MD5_USER, $ADMIN_USER, $AQ_SCRAM_USER, $AQ_MD5_USER;
	SQL
	for db in "$DB" postgres; do
		as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" \
			-U "$SUPER_USER" -d "$db" >/dev/null <<-SQL
		CREATE SCHEMA pgmux_auth;
		CREATE TABLE pgmux_auth.calls (n bigint NOT NULL);
		INSERT INTO pgmux_auth.calls VALUES (0);
		CREATE FUNCTION pgmux_auth.user_lookup(i_username text)
			RETURNS TABLE (uname text, phash text)
			LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS \$f\$
		BEGIN
			UPDATE pgmux_auth.calls SET n = n + 1;
			RETURN QUERY SELECT rolname::text,
				CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
				FROM pg_authid WHERE rolname = i_username AND rolcanlogin;
		END \$f\$;
		REVOKE ALL ON FUNCTION pgmux_auth.user_lookup(text) FROM PUBLIC;
		GRANT USAGE ON SCHEMA pgmux_auth TO $AUTH_USER;
		GRANT EXECUTE ON FUNCTION pgmux_auth.user_lookup(text) TO $AUTH_USER;
		SQL
	done

	cat >"$dir/env.tmp" <<-ENV
	PGFIX_HOST=127.0.0.1
	PGFIX_PORT=$port
	PGFIX_SOCKDIR=$sock
	PGFIX_BASE=$base
	PGFIX_DATADIR=$data
	PGFIX_BINDIR=$PGBIN
	PGFIX_LOG=$base/postgres.log
	PGFIX_DB=$DB
	PGFIX_SUPER_USER=$SUPER_USER
	PGFIX_SUPER_PASSWORD=$SUPER_PASSWORD
	PGFIX_APP_USER=$APP_USER
	PGFIX_APP_PASSWORD=$APP_PASSWORD
	PGFIX_MD5_USER=$MD5_USER
	PGFIX_MD5_PASSWORD=$MD5_PASSWORD
	PGFIX_ADMIN_USER=$ADMIN_USER
	PGFIX_ADMIN_PASSWORD=$ADMIN_PASSWORD
	PGFIX_AUTH_USER=$AUTH_USER
	PGFIX_AUTH_PASSWORD=$AUTH_PASSWORD
	PGFIX_AQ_SCRAM_USER=$AQ_SCRAM_USER
	PGFIX_AQ_SCRAM_PASSWORD=$AQ_SCRAM_PASSWORD
	PGFIX_AQ_MD5_USER=$AQ_MD5_USER
	PGFIX_AQ_MD5_PASSWORD=$AQ_MD5_PASSWORD
	PGFIX_AQ_NOPW_USER=$AQ_NOPW_USER
	PGFIX_AQ_EXPIRED_USER=$AQ_EXPIRED_USER
	PGFIX_AQ_EXPIRED_PASSWORD=$AQ_EXPIRED_PASSWORD
	ENV
	mv "$dir/env.tmp" "$dir/env"
	echo "pg_fixture: PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, data in $data"
}

stop() {
	local dir=$1 base data
	[ -f "$dir/env" ] || { echo "pg_fixture: nothing to stop in $dir"; return 0; }
	base=$(sed -n 's/^PGFIX_BASE=//p' "$dir/env")
	data=$(sed -n 's/^PGFIX_DATADIR=//p' "$dir/env")
	if [ -n "$data" ] && [ -f "$data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	case $base in
	/tmp/pgmux-pgfix.*) rm -rf "$base" ;;
	esac
	rm -f "$dir/env"
	echo "pg_fixture: stopped"
}

[ $# -eq 2 ] || die "usage: pg_fixture.sh start|stop <dir>"
case $1 in
start) start "$2" ;;
stop) stop "$2" ;;
*) die "usage: pg_fixture.sh start|stop <dir>" ;;
esac
