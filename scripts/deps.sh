#!/usr/bin/env bash
# Installs the Debian packages Orbit needs to build, test and benchmark,
# only when something is missing (fast no-op otherwise).
set -euo pipefail
pkgs=(build-essential pkg-config libsqlite3-dev libuv1-dev libraft-dev libssl-dev libjansson-dev
      libzstd-dev libcurl4-openssl-dev libcmocka-dev python3-pytest python3-psycopg2
      postgresql-15 postgresql-client-15 pgbouncer valgrind openssl iproute2 nftables
      default-jdk-headless libpostgresql-jdbc-java)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
