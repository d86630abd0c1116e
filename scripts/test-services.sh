#!/usr/bin/env bash
# Sourced by ./test.sh: make sure what the tests need is there, providing it when it is not.
#
# * As root, missing Debian packages are installed (chromium for the end-to-end tests, the PostgreSQL and Redis
#   servers and clients, the DejaVu fonts the PDF reports use, Prometheus for promtool and the scrape test); a stopped
#   system PostgreSQL cluster is started.
# * PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are used when they answer (AUTOINDEX_PG_PORT and
#   AUTOINDEX_REDIS_PORT name other ports).
# * Otherwise a throwaway PostgreSQL (initdb, trust auth) and/or Redis (no persistence) start in a temporary
#   directory on free ports; the tests are pointed at them (AUTOINDEX_TEST_PG_ADMIN, AUTOINDEX_TEST_REDIS_BASE) and
#   they are stopped and removed when ./test.sh exits.
set -euo pipefail

_autoindex_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

#: The ports of the services used when they answer (tests of this script point them elsewhere).
_AUTOINDEX_PG_PORT="${AUTOINDEX_PG_PORT:-5432}"
_AUTOINDEX_REDIS_DEFAULT_PORT="${AUTOINDEX_REDIS_PORT:-6379}"

_autoindex_pg_up() { pg_isready -h 127.0.0.1 -p "$1" -q 2>/dev/null; }
_autoindex_redis_up() { redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1; }

if [ "$(id -u)" = 0 ]; then
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
  command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)  # promtool and prometheus (tests/integration/test_promtool.py)
  if [ ${#need[@]} -gt 0 ]; then
    echo "test.sh: installing ${need[*]} (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ "$_AUTOINDEX_PG_PORT" = 5432 ] && ! _autoindex_pg_up 5432 && command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do _autoindex_pg_up 5432 && break; sleep 1; done
  fi
fi

_AUTOINDEX_THROWAWAY="$(mktemp -d /tmp/autoindex-test-services.XXXXXX)"
chmod 755 "$_AUTOINDEX_THROWAWAY"
_autoindex_cleanup() {
  if [ -n "${_AUTOINDEX_PG_DIR:-}" ]; then
    ${_AUTOINDEX_PG_AS:-} "$_AUTOINDEX_PG_BIN/pg_ctl" -D "$_AUTOINDEX_PG_DIR" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${_AUTOINDEX_REDIS_PORT:-}" ]; then
    redis-cli -h 127.0.0.1 -p "$_AUTOINDEX_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  rm -rf "$_AUTOINDEX_THROWAWAY"
}
trap _autoindex_cleanup EXIT

if [ -z "${AUTOINDEX_TEST_PG_ADMIN:-}" ] && ! _autoindex_pg_up "$_AUTOINDEX_PG_PORT"; then
  _AUTOINDEX_PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$_AUTOINDEX_PG_BIN" ]; then
    echo "test.sh: PostgreSQL is not running on 127.0.0.1:5432 and its server is not installed (run as root to install it)" >&2
    exit 1
  fi
  port="$(_autoindex_free_port)"
  _AUTOINDEX_PG_DIR="$_AUTOINDEX_THROWAWAY/pg"
  _AUTOINDEX_PG_AS=""
  pg_user="$(id -un)"
  if [ "$(id -u)" = 0 ]; then  # initdb refuses root: run the throwaway cluster as the postgres user
    _AUTOINDEX_PG_AS="runuser -u postgres --"
    pg_user=postgres
  fi
  mkdir -p "$_AUTOINDEX_PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres "$_AUTOINDEX_PG_DIR"; fi
  $_AUTOINDEX_PG_AS "$_AUTOINDEX_PG_BIN/initdb" -D "$_AUTOINDEX_PG_DIR" -U "$pg_user" --auth=trust --encoding=UTF8 --locale=C >/dev/null
  $_AUTOINDEX_PG_AS "$_AUTOINDEX_PG_BIN/pg_ctl" -D "$_AUTOINDEX_PG_DIR" -w -l "$_AUTOINDEX_PG_DIR/log" \
    -o "-h 127.0.0.1 -p $port -k $_AUTOINDEX_PG_DIR -c fsync=off -c max_connections=200" start >/dev/null
  export AUTOINDEX_TEST_PG_ADMIN="postgresql+psycopg://$pg_user@127.0.0.1:$port/postgres"
  echo "test.sh: started a throwaway PostgreSQL on 127.0.0.1:$port" >&2
fi

if [ -z "${AUTOINDEX_TEST_REDIS_BASE:-}" ] && ! _autoindex_redis_up "$_AUTOINDEX_REDIS_DEFAULT_PORT"; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "test.sh: Redis is not running on 127.0.0.1:6379 and redis-server is not installed (run as root to install it)" >&2
    exit 1
  fi
  _AUTOINDEX_REDIS_PORT="$(_autoindex_free_port)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$_AUTOINDEX_REDIS_PORT" --save "" --appendonly no \
    --dir "$_AUTOINDEX_THROWAWAY" --logfile "$_AUTOINDEX_THROWAWAY/redis.log" >/dev/null
  for _ in $(seq 1 30); do _autoindex_redis_up "$_AUTOINDEX_REDIS_PORT" && break; sleep 0.2; done
  export AUTOINDEX_TEST_REDIS_BASE="redis://127.0.0.1:$_AUTOINDEX_REDIS_PORT"
  echo "test.sh: started a throwaway Redis on 127.0.0.1:$_AUTOINDEX_REDIS_PORT" >&2
fi
