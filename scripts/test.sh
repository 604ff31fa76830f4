#!/usr/bin/env bash
# Runs every check and test of Spinpresso: formatting, lints, unit tests and
# end-to-end tests against the real host and the real .wasm components.
# Needs only rustup's stable toolchain; adds the wasm32-wasip2 target itself.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Wasm components (cdylibs for wasm32-wasip2; kvtest and benchprobe are test/benchmark-only probes).
components=(config identity qr orders barista events sweeper metrics web kvtest benchprobe)
packages=() excludes=()
for c in "${components[@]}"; do packages+=(-p "$c"); excludes+=(--exclude "$c"); done

step() { printf '\n==> %s\n' "$*"; }

step "toolchain and system packages"
rustup target add wasm32-wasip2
# Debian's Chromium (browser tests; test tools cannot download browsers here)
# Redis (the scale-out and Redis tests) and openssl (their TLS test), when missing.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "The tests need: ${missing[*]} (apt-get install ${missing[*]})." >&2
    exit 1
  fi
fi

step "formatting"
cargo fmt --all -- --check

step "build: host and tests (release) and components (wasm32-wasip2)"
# The same package set as the test run below, so features unify the same way
# and the tests reuse these artifacts instead of compiling wasmtime again.
cargo build --release --workspace --all-targets "${excludes[@]}"
cargo build --target wasm32-wasip2 --profile component "${packages[@]}"

step "lints"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --target wasm32-wasip2 "${packages[@]}" -- -D warnings

step "unit and end-to-end tests"
# Release, so the tests reuse the host's optimized dependencies.
cargo test --release --workspace "${excludes[@]}"

step "API contract: docs/openapi.yaml against the host (schemathesis)"
tests/contract/run

step "browser tests (headless Chromium)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
node --test tests/browser/
