#!/usr/bin/env bash
# The Envoy load harness (about 25 minutes on 2 cores): no auth, a do-nothing Wasm module, native
# jwt_authn + rbac and claimgate; repeated and new tokens; RS256, ES256, EdDSA; one and two
# Envoy workers; then the targets, met or not. Extra arguments go to benches/load/run.py (--help).
#   scripts/load.sh --profile     Envoy's CPU by code region under load instead (perf, about 2 minutes)
#   scripts/load.sh --memory      RSS with and without Envoy's release of free memory instead
#                                 (the do-nothing module and claimgate; about 5 minutes)
#   scripts/load.sh --phases      adds the module's time per phase of a request (a measurement build)
#   scripts/load.sh --slope all   prices each kind of host call instead (the do-nothing module
#                                 making 0, 1, 2, 4, 8 calls per request; about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --load
# --phases: first the measurement build that logs the module's time per phase of a request,
# kept aside (the real module is then built in its usual place).
for arg in "$@"; do
  if [ "$arg" = "--phases" ]; then
    cargo build --quiet --release --lib --target wasm32-wasip1 --features phase-timing
    mkdir -p target/phase-timing
    cp target/wasm32-wasip1/release/claimgate.wasm target/phase-timing/claimgate.wasm
  fi
done
cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --bin claimgate
# The do-nothing module (the Wasm ceiling row), with the same release settings.
cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path benches/load/noop-module/Cargo.toml --target-dir target/noop
if [ "${1:-}" = "--profile" ]; then
  shift
  exec .venv/bin/python benches/load/profile.py "$@"
fi
if [ "${1:-}" = "--memory" ]; then
  shift
  exec .venv/bin/python benches/load/memory.py "$@"
fi
exec .venv/bin/python benches/load/run.py "$@"
