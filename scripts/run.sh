#!/usr/bin/env bash
# `make run`: start one orbitd node on ./data (or $ORBIT_DATA) in the
# foreground and print how to connect. Ctrl-C drains and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ORBIT_DATA:-$PWD/data}"
port="${ORBIT_PORT:-5433}"
mkdir -p "$data"
echo "orbitd: data directory $data"
if [ ! -f "$data/orbit.db" ] && [ -z "${ORBIT_PASSWORD:-}" ]; then
  echo "orbitd: first start: a password for the superuser 'orbit' is generated and printed below (once)."
  echo "        (set ORBIT_PASSWORD before the first start to choose it)"
fi
echo "orbitd: connect with:"
echo "    psql \"host=127.0.0.1 port=$port user=orbit dbname=orbit\""
echo "orbitd: press Ctrl-C to stop"
echo "orbitd: health and metrics on http://127.0.0.1:${ORBIT_HTTP_PORT:-8433}/health and /metrics"
exec build/orbitd --data-dir "$data" --listen "127.0.0.1:$port" --http "127.0.0.1:${ORBIT_HTTP_PORT:-8433}" "$@"
