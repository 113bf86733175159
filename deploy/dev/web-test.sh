#!/usr/bin/env bash
# Tests of the web client (web-client/): unit tests (Vitest), type check and production
# build, and the browser test, which starts a real hub (`jobers demo` on 127.0.0.1 with a
# fresh data directory) and drives Debian's Chromium through playwright-core.
# Installs what it needs on Debian. The hub binary comes from JOBERS_BIN (default: the debug
# build in CARGO_TARGET_DIR); this script does not build it.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/dev/services.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobers/target}"
export JOBERS_BIN="${JOBERS_BIN:-$CARGO_TARGET_DIR/debug/jobers}"

node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null \
    && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)'
}
node_ok || apt_install nodejs npm
node_ok || { echo "Node.js 20.19 or newer with npm is required (found: $(node --version 2>/dev/null || echo none))" >&2; exit 1; }
apt_install chromium chromium-driver
[ -x "$JOBERS_BIN" ] || { echo "no jobers binary at $JOBERS_BIN: build it (cargo build --bin jobers) or set JOBERS_BIN" >&2; exit 1; }

cd web-client
log "web client: npm ci"
npm ci --no-audit --no-fund --loglevel=error
log "web client: unit tests (vitest)"
npx vitest run
log "web client: type check and build"
npm run build
log "web client: browser test (chromium, jobers at $JOBERS_BIN)"
node --test --test-concurrency=1 e2e/
