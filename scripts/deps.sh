#!/usr/bin/env bash
# deps.sh: installs the Debian packages pgmux needs to build, run and test
# (compilers, libraries, PostgreSQL 15, PgBouncer as the reference pooler,
# clang and its compiler-rt runtimes (ASan, UBSan, libFuzzer; only a
# Recommends of clang) for the sanitizer and fuzz build, promtool and
# prometheus-pgbouncer-exporter for the metrics tests). Idempotent and silent
# when everything is present; runs `apt-get update` only when something is
# missing.
# Also the client drivers for the driver tests (psycopg2, psycopg 3,
# asyncpg from Debian; Node.js, whose npm then installs test/drivers/node's
# pinned packages) and pg_regress (postgresql-server-dev-15) for the
# regression-suite test.
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config clang libclang-rt-dev valgrind
	libuv1-dev libpq-dev libcmocka-dev libssl-dev libinih-dev uthash-dev
	postgresql-15 postgresql-client-15 pgbouncer
	prometheus prometheus-pgbouncer-exporter
	procps iproute2 util-linux
	postgresql-server-dev-15 python3-psycopg2 python3-psycopg python3-asyncpg
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
# Node.js and npm: only the commands are required. A machine may have them
# from NodeSource, whose nodejs bundles npm and conflicts with Debian's npm;
# Debian's packages are the fallback.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi

# test/drivers/node's packages, exactly as its package-lock.json pins them;
# npm ci runs again only when the lock file differs from the last install.
# A failure here only warns: the two Node driver tests then fail and say why.
node_packages() {
	local dir
	dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/test/drivers/node
	cmp -s "$dir/package-lock.json" "$dir/node_modules/.pgmux-installed-lock" && return 0
	echo "deps.sh: npm ci in test/drivers/node"
	if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
		cp "$dir/package-lock.json" "$dir/node_modules/.pgmux-installed-lock"
	else
		echo "deps.sh: WARNING: npm ci in test/drivers/node failed" >&2
	fi
}

[ ${#missing[@]} -eq 0 ] && { node_packages; exit 0; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	SUDO=sudo
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# prometheus (for promtool) and the exporter enable daemons on :9090 and
# :9127; the metrics tests start their own, so keep the services off.
if [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now prometheus.service \
		prometheus-pgbouncer-exporter.service >/dev/null 2>&1 || true
fi
node_packages
echo "deps.sh: done"
