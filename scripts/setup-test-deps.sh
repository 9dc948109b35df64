#!/usr/bin/env bash
# Installs what the test suite needs on a new Debian machine, idempotently:
# the PyTorch reference (Debian's python3-torch with a threaded OpenBLAS),
# the JavaScript reference clients from npm, and a running PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in python3-torch libopenblas0-pthread python3-numpy; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "setup: installing ${need[*]}"
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -f tools/js/node_modules/.package-lock.json ] || [ tools/js/package-lock.json -nt tools/js/node_modules/.package-lock.json ]; then
	echo "setup: npm ci in tools/js"
	(cd tools/js && npm ci --no-audit --no-fund >/dev/null)
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
	echo "setup: starting PostgreSQL"
	pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
	for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
