#!/usr/bin/env bash
# deps.sh: installs the Debian packages pgmux needs to build, run and test
# (compilers, libraries, PostgreSQL 15, PgBouncer as the reference pooler,
# clang and its compiler-rt runtimes (ASan, UBSan, libFuzzer; only a
# Recommends of clang) for the sanitizer and fuzz build, promtool and
# prometheus-pgbouncer-exporter for the metrics tests). Idempotent and silent
# when everything is present; runs `apt-get update` only when something is
# missing.
set -euo pipefail

PKGS=(
	build-essential cmake pkg-config clang libclang-rt-dev valgrind
	libuv1-dev libpq-dev libcmocka-dev libssl-dev libinih-dev uthash-dev
	postgresql-15 postgresql-client-15 pgbouncer
	prometheus prometheus-pgbouncer-exporter
	procps iproute2 util-linux
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

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
echo "deps.sh: done"
