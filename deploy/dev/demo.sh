#!/usr/bin/env bash
# Runs the Jobers demo: a demo company, its staff and the web client on the embedded
# database (SQLite under ./data/demo). Installs what it needs on Debian. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/dev/services.sh

command -v cargo >/dev/null || { echo "cargo is required (Rust stable, https://rustup.rs)" >&2; exit 1; }
apt_install build-essential pkg-config
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobers/target}"

# The web client (served by the hub at /): needs Node.js 20.19+ with npm.
command -v npm >/dev/null || apt_install nodejs npm
log "building the web client"
(cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build)

export JOBERS_DATA_DIR="${JOBERS_DATA_DIR:-data/demo}"
export JOBERS_LISTEN="${JOBERS_LISTEN:-127.0.0.1:8080}"
export JOBERS_HTTP__WEB_ROOT="${JOBERS_HTTP__WEB_ROOT:-web-client/dist}"
log "building"
cargo build --locked --release --bin jobers
exec "$CARGO_TARGET_DIR/release/jobers" demo
