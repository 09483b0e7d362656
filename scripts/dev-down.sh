#!/usr/bin/env bash
# dev-down.sh: stops what scripts/dev-up.sh started: pgmux, then the
# throwaway PostgreSQL. Keeps .run/ (cluster data, passwords, config, logs)
# so the next dev-up.sh starts quickly; --purge deletes .run/ too.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/dev-env.sh"

purge=false
case ${1:-} in
'') ;;
--purge) purge=true ;;
*) echo "usage: scripts/dev-down.sh [--purge]" >&2; exit 2 ;;
esac

if [ -n "$(pgmux_pid)" ]; then
	stop_pgmux
	echo "dev-down: pgmux stopped"
else
	rm -f "$PGMUX_PIDFILE"
	echo "dev-down: pgmux was not running"
fi

if pg_running; then
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
	echo "dev-down: PostgreSQL stopped"
else
	echo "dev-down: PostgreSQL was not running"
fi

if $purge; then
	case $PGDATA in /var/tmp/pgmux-dev-*) rm -rf "$(dirname "$PGDATA")" ;; esac
	rm -rf "$RUN"
	echo "dev-down: removed .run/"
else
	echo "dev-down: kept .run/ (data, passwords, logs); use --purge to delete it"
fi
