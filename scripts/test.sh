#!/usr/bin/env bash
# Runs every check and test of Spinpresso: formatting, lints, unit tests,
# end-to-end tests against the real host and the real .wasm components, the
# API contract and the browser tests. Needs only rustup's stable toolchain;
# adds the wasm32-wasip2 target and the test tools itself (scripts/test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Wasm components (cdylibs for wasm32-wasip2; kvtest and benchprobe are test/benchmark-only probes).
components=(config identity qr orders barista events sweeper metrics web kvtest benchprobe)
packages=()
for c in "${components[@]}"; do packages+=(-p "$c"); done

step() { printf '\n==> %s (at %d s)\n' "$*" "$SECONDS"; }

step "toolchain and test tools"
rustup target add wasm32-wasip2
scripts/test-deps

step "formatting"
cargo fmt --all -- --check

# Clippy lints the workspace's own crates while they are compiled for the
# tests (clippy-driver as the workspace's compiler wrapper, which is what
# `cargo clippy` does), so nothing is compiled twice. The native crates are
# the workspace's default members, whose features README command 1 builds
# the host with too (no -p): the dependencies it compiled are reused.
export RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver)

step "build and lint: host, libraries, end-to-end tests, benchmark (release)"
cargo build --release --all-targets

step "build and lint: components (wasm32-wasip2)"
# In one cargo run, as spin.toml's build command does (the test probes add
# no features), so a build by `up --build` is reused as it is; clippy with
# the same profile reuses its compiled macros.
env -u RUSTC_WORKSPACE_WRAPPER cargo build --target wasm32-wasip2 --profile component "${packages[@]}"
env -u RUSTC_WORKSPACE_WRAPPER cargo clippy --target wasm32-wasip2 --profile component "${packages[@]}" -- -D warnings

step "unit and end-to-end tests"
# Release, so the tests reuse the builds above. The end-to-end tests mostly
# wait on their hosts: more threads than cores.
cargo test --release -- --test-threads=6

step "API contract (schemathesis) and browser tests (headless Chromium)"
# Side by side: both mostly wait on their own host, so they fit in the time of one.
contract_log=$(mktemp)
tests/contract/run >"$contract_log" 2>&1 &
contract=$!
browser=0
node --test --test-concurrency=4 tests/browser/ || browser=$?
contract_status=0
wait "$contract" || contract_status=$?
printf '\n==> API contract output\n'
cat "$contract_log"
rm -f "$contract_log"
[ "$browser" = 0 ] || { echo "browser tests failed" >&2; exit 1; }
[ "$contract_status" = 0 ] || { echo "API contract failed" >&2; exit 1; }
echo "all checks passed"
