#!/usr/bin/env bash
# Runs every load scenario at full size and writes the reports into loadtests/reports/.
# Starts PostgreSQL and Redis on loopback for the scenarios that need them.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/dev/services.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobers/target}"
cargo build --locked --release --workspace --bins
work=$(mktemp -d)
trap 'stop_services; rm -rf "$work"' EXIT
PG_DURABLE=1 start_postgres "$work/pg"
start_redis "$work/redis"
load=("$CARGO_TARGET_DIR/release/jobers-load")
# Every run starts from the same memory (see loadtests/README.md), which takes root,
# and the kernel's proactive reclaim (DAMON), where a host runs it, paused for each run.
if [ "$(id -u)" -eq 0 ]; then
  load+=(--drop-caches --pause-reclaim)
else
  echo "not root: runs start with whatever page cache earlier runs left, under any reclaim the kernel runs" >&2
fi
# The benchmark server is brought to the state of one in service (its WAL files reused).
load+=(--reuse-wal)
out=loadtests/reports
"${load[@]}" --pin --out "$out" idle --conns "${IDLE_CONNS:-18000}"
"${load[@]}" --pin --out "$out" connect --conns "${CONNECT_CONNS:-18000}"
"${load[@]}" --pin --out "$out" fanout
"${load[@]}" --pin --out "$out" direct
"${load[@]}" --pin --out "$out" --database "$JOBERS_TEST_DATABASE_URL" direct
"${load[@]}" --pin --out "$out" presence
"${load[@]}" --pin --out "$out" resume
"${load[@]}" --pin --out "$out" --cluster-database "$JOBERS_TEST_DATABASE_URL" --redis "$JOBERS_TEST_REDIS_URL" cluster
"${load[@]}" --pin --out "$out" inbound
"${load[@]}" --pin --out "$out" --database "$JOBERS_TEST_DATABASE_URL" inbound
