#!/usr/bin/env bash
# Dev/test services on loopback, each in a throwaway directory: source this file, then call
# `start_postgres DIR` (exports JOBERS_TEST_DATABASE_URL) or `start_redis DIR`
# (exports JOBERS_TEST_REDIS_URL). `stop_services` stops what was started.
# Installs the Debian packages it needs when they are missing.

STARTED_PG_DIRS=()
STARTED_REDIS_PIDS=()

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_install PKG... — installs the packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq >&2
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_postgres DIR — a PostgreSQL server on 127.0.0.1 with its data in DIR.
start_postgres() {
  local dir="$1"
  apt_install postgresql
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || { echo "PostgreSQL binaries not found" >&2; return 1; }
  mkdir -p "$dir"
  local run_as=()
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root; the postgres user must reach DIR.
    chmod o+x "$(dirname "$dir")"
    chown -R postgres:postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  local port
  port=$(free_port)
  # A throwaway test cluster runs without fsync; PG_DURABLE=1 keeps PostgreSQL's durable
  # defaults (for benchmarks). max_connections: parallel test processes.
  local opts="-h 127.0.0.1 -p $port -k $dir -c max_connections=400"
  [ "${PG_DURABLE:-0}" = 1 ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$opts" \
    start >&2 || { cat "$dir/server.log" >&2; return 1; }
  STARTED_PG_DIRS+=("$dir")
  export JOBERS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL on 127.0.0.1:$port"
}

# start_redis DIR — a Redis server on 127.0.0.1 with no persistence.
start_redis() {
  local dir="$1"
  apt_install redis-server
  mkdir -p "$dir"
  local port
  port=$(free_port)
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
  for _ in $(seq 50); do
    [ -s "$dir/redis.pid" ] && redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  STARTED_REDIS_PIDS+=("$(cat "$dir/redis.pid")")
  export JOBERS_TEST_REDIS_URL="redis://127.0.0.1:$port"
  log "Redis on 127.0.0.1:$port"
}

stop_services() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  for dir in "${STARTED_PG_DIRS[@]}"; do
    local run_as=()
    [ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
    "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  done
  for pid in "${STARTED_REDIS_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
