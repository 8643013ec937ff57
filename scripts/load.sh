#!/usr/bin/env bash
# The Envoy load harness (about 25 minutes on 2 cores): no auth, a do-nothing Wasm module, native
# jwt_authn + rbac and claimgate; repeated and new tokens; RS256, ES256, EdDSA; one and two
# Envoy workers; then the targets, met or not. Extra arguments go to benches/load/run.py (--help).
#   scripts/load.sh --slope all   prices each kind of host call instead (the do-nothing module
#                                 making 0, 1, 2, 4, 8 calls per request; about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --load
cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --bin claimgate
# The do-nothing module (the Wasm ceiling row), with the same release settings.
cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path benches/load/noop-module/Cargo.toml --target-dir target/noop
exec .venv/bin/python benches/load/run.py "$@"
