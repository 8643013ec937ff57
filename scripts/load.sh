#!/usr/bin/env bash
# The Envoy load harness (about 4 minutes): no auth vs native jwt_authn + rbac vs claimgate,
# repeated and distinct tokens. Extra arguments go to benches/load/run.py (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --load
cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --bin claimgate
exec .venv/bin/python benches/load/run.py "$@"
