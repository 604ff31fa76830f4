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
# `cargo clippy` does), so nothing is compiled twice: every library and
# every test target (a binary's unit tests compile all of its code). The
# host binary is built plain, as README command 1 builds it, so its build
# is reused. The native crates are the workspace's default members, whose
# features README command 1 resolves too (no -p): the dependencies it
# compiled are reused. The host's unit tests build unoptimized: they run
# as fast (2 s) and build with a third of the CPU (19 CPU-s against 67);
# the host binary keeps its release settings. The benchmark, which the
# end-to-end tests run once, builds at opt-level 1: its quick run takes as
# long and as much CPU, and it builds in 7 s instead of 11 (`bench/run`
# builds it fully optimized again).
cargo_linted=(env RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)" CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
  cargo --config 'profile.release.package.spinpresso-host.opt-level=0'
  --config 'profile.release.package.spinpresso-bench.opt-level=1')

step "build and lint: host, libraries, end-to-end tests, benchmark (release)"
"${cargo_linted[@]}" build --release --lib --tests --bin spinpresso-bench
cargo build --release --bin spinpresso-host

step "build and lint: components (wasm32-wasip2)"
# In one cargo run, as spin.toml's build command does (the test probes add
# no features), so a build by `up --build` is reused as it is; clippy with
# the same profile reuses its compiled macros.
cargo build --target wasm32-wasip2 --profile component "${packages[@]}"
cargo clippy --target wasm32-wasip2 --profile component "${packages[@]}" -- -D warnings

step "unit tests"
# Alone: some measure the store under load. They reuse the linted builds
# above (release, the same wrapper and settings).
"${cargo_linted[@]}" test --release --lib --bins
"${cargo_linted[@]}" test --release --doc

step "end-to-end, API contract (schemathesis) and browser (headless Chromium) tests"
# The app's components compiled once into .spin/wasmtime-cache (seconds,
# or nothing when README command 1 ran): the many hosts these tests start
# at once then load them, instead of each compiling them side by side.
target/release/spinpresso-host measure --rounds 1 >/dev/null
# Side by side: the end-to-end tests mostly wait on hosts of their own
# (timeouts, stream lifetimes) while the contract and browser tests keep
# the cores busy. The end-to-end tests run with more threads than cores,
# the browser test files four at a time.
logs=$(mktemp -d)
"${cargo_linted[@]}" test --release --test e2e -- --test-threads=6 >"$logs/end-to-end" 2>&1 &
end_to_end=$!
tests/contract/run >"$logs/contract" 2>&1 &
contract=$!
node --test --test-concurrency=4 tests/browser/ >"$logs/browser" 2>&1 &
browser=$!
failed=()
wait "$end_to_end" || failed+=("end-to-end tests")
wait "$contract" || failed+=("API contract")
wait "$browser" || failed+=("browser tests")
for suite in end-to-end contract browser; do
  printf '\n==> output of the %s tests\n' "$suite"
  cat "$logs/$suite"
done
rm -rf "$logs"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all checks passed (in $SECONDS s)"
