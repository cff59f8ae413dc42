#!/usr/bin/env bash
# Runs the pytest integration and chaos suites (real orbitd, psql, pgbench,
# psycopg2, the PostgreSQL JDBC driver; chaos: network namespaces and nftables, as root)
# under Debian's /usr/bin/python3, where python3-psycopg2 lives.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration tests/chaos "$@"
