#!/usr/bin/env bash
# Make sure the servers the test suite needs are installed and running:
#   - Redis on 127.0.0.1:6379 and the redis-server binary (fault tests start private ones)
#   - PostgreSQL on 127.0.0.1:5432 (trust auth, database "test") and initdb/pg_ctl binaries
# Installs missing packages with apt-get when run as root; otherwise fails saying what is missing.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
die() { echo "services.sh: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_install() {
  [ "$(id -u)" = 0 ] && have apt-get || die "missing $* and cannot apt-get install it (need root); install: $*"
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Redis ------------------------------------------------------------------------------------
have redis-server || apt_install redis-server
if ! port_open 6379; then
  redis_dir="$(mktemp -d -t agentkit-redis.XXXXXX)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$redis_dir" --logfile "$redis_dir/redis.log"
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi
port_open 6379 || die "Redis is not reachable on 127.0.0.1:6379 and could not be started"

# --- PostgreSQL -------------------------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
[ -n "$(pg_bin)" ] || apt_install postgresql
PGBIN="$(pg_bin)"
[ -x "$PGBIN/initdb" ] || die "PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql"
if ! port_open 5432; then
  if have pg_ctlcluster; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
fi
port_open 5432 || die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started"
if have psql; then
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" \
    | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null \
    || die "cannot reach or create database 'test' as user postgres (trust auth expected)"
fi
echo "services.sh: redis 127.0.0.1:6379 ok, postgresql 127.0.0.1:5432 ok ($PGBIN)"
