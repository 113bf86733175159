#!/usr/bin/env bash
# Runs the Jobers demo: a demo company, its staff and the web client on the embedded
# database (SQLite under ./data/demo). Installs what it needs on Debian. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/dev/services.sh

command -v cargo >/dev/null || { echo "cargo is required (Rust stable, https://rustup.rs)" >&2; exit 1; }
apt_install build-essential pkg-config
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobers/target}"

export JOBERS_DATA_DIR="${JOBERS_DATA_DIR:-data/demo}"
export JOBERS_LISTEN="${JOBERS_LISTEN:-127.0.0.1:8080}"
log "building"
cargo build --locked --release --bin jobers
exec "$CARGO_TARGET_DIR/release/jobers" demo
