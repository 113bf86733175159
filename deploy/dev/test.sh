#!/usr/bin/env bash
# Runs every test of Jobers: formatting, lints, unit and integration tests on SQLite and on
# a real PostgreSQL server started here on loopback. Installs what it needs on Debian.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/dev/services.sh
source deploy/dev/mail.sh

# Keep the build cache outside the checkout, so fresh clones reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobers/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

command -v cargo >/dev/null || { echo "cargo is required (Rust stable, https://rustup.rs)" >&2; exit 1; }
apt_install build-essential pkg-config python3 kannel
# Twilio's own library computes the webhook signatures the SMS tests send.
if ! python3 -c "import twilio" 2>/dev/null; then
  log "installing the twilio Python library (for signature tests)"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install --quiet twilio==9.13.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages twilio==9.13.0
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

work=$(mktemp -d)
trap 'stop_mail; stop_services; rm -rf "$work"' EXIT

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

log "building tests"
cargo nextest run --locked --workspace --no-run

start_postgres "$work/pg"
start_redis "$work/redis"
# SMTP (relaying to Dovecot LMTP) and Dovecot IMAP on loopback, for the email tests.
start_mail "$work/mail"
# Multi-node tests always use PostgreSQL and Redis; the rest run once per database.
export JOBERS_TEST_POSTGRES_URL="$JOBERS_TEST_DATABASE_URL"

# The load scenarios run at test size (correctness only) as `jobers-load`'s test;
# full-size runs: loadtests/README.md.
log "tests on SQLite (embedded default), multi-node tests, load scenarios at test size"
JOBERS_TEST_DATABASE_URL= cargo nextest run --locked --workspace --no-fail-fast

log "tests on PostgreSQL"
cargo nextest run --locked --workspace --no-fail-fast -E 'not (binary(cluster) | binary(smoke))'

# The web client: unit tests, type check and build, and the browser tests against the
# jobers binary built above (docs/web-client.md).
log "web client"
cargo build --locked --bin jobers
bash deploy/dev/web-test.sh
