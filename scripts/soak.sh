#!/usr/bin/env bash
# The long soak (issue 12): a mixed load of valid, expired, forged, policy-denied,
# path-trick and anonymous requests against Envoy with two workers on loopback, for
# SECONDS (default 120) after a warm-up pass; fails on any wrong answer, any 5xx, or
# Envoy memory growing between the first and last quarter. The test command runs the
# same test for 20 s.
#   scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --quiet --release --lib --target wasm32-wasip1
CLAIMGATE_SOAK_SECONDS="${1:-120}" cargo test --release --test envoy -- --include-ignored --nocapture soak::
