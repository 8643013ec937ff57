#!/usr/bin/env bash
# The whole test suite, from a fresh clone: formatting, lints (host and wasm32-wasip1),
# unit and Envoy integration tests, wasm-bindgen tests in Node, and config checks.
#   scripts/test.sh --quick   the edit-test loop only: formatting, lints and the unit tests
#                             (no Envoy, no installs); CI always runs the whole suite.
# A plain `cargo test` runs every test that needs neither Envoy nor the built module and
# lists the others as ignored, with the reason; here they all run (`--include-ignored`),
# and a missing Envoy or module fails them: this script never skips a test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { echo; echo "==> test: $*"; }
trap 'echo "test: FAILED at step: ${current:-setup}" >&2' ERR

if [ "${1:-}" = "--quick" ]; then
  current="cargo fmt --check"; step "$current"
  cargo fmt --all -- --check
  current="clippy (host, wasm32-wasip1)"; step "$current"
  cargo clippy --all-targets -- -D warnings
  cargo clippy --lib --target wasm32-wasip1 -- -D warnings
  current="unit tests"; step "$current"
  cargo test --lib
  step "quick checks passed (Envoy, wasm-bindgen, CLI and load tests not run: scripts/test.sh)"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: scripts/test.sh [--quick]" >&2
  exit 2
fi

current="bootstrap"; step "$current"
scripts/bootstrap.sh --wasm-tests --release-tools --load

current="cargo fmt --check"; step "$current"
cargo fmt --all -- --check

current="clippy (host)"; step "$current"
cargo clippy --all-targets -- -D warnings

current="clippy (wasm32-wasip1)"; step "$current"
cargo clippy --lib --target wasm32-wasip1 -- -D warnings
cargo clippy --lib --target wasm32-wasip1 --features fault-injection -- -D warnings

current="build the Envoy module and the CLI"; step "$current"
# First the test-only module that traps on a marker header (tests/envoy/failure.rs), kept
# aside; then the real module in its usual place.
cargo build --release --lib --target wasm32-wasip1 --features fault-injection
mkdir -p target/fault-injection
cp target/wasm32-wasip1/release/claimgate.wasm target/fault-injection/claimgate.wasm
# The measurement build of the load harness (scripts/load.sh --phases), smoke-run below.
cargo build --release --lib --target wasm32-wasip1 --features phase-timing
mkdir -p target/phase-timing
cp target/wasm32-wasip1/release/claimgate.wasm target/phase-timing/claimgate.wasm
cargo build --release --lib --target wasm32-wasip1
cargo build --release --bin claimgate
ls -l target/wasm32-wasip1/release/claimgate.wasm

current="example configurations"; step "$current"
for config in filter-config/*.json; do
  case "$config" in *.schema.json) continue ;; esac
  target/release/claimgate check "$config" >/dev/null
  echo "claimgate check $config: OK"
done
if [ -f filter-config/claimgate.schema.json ] && [ -f scripts/check_schema.py ]; then
  .venv/bin/python scripts/check_schema.py filter-config/claimgate.schema.json $(ls filter-config/*.json | grep -v schema.json)
fi

current="shipped Envoy configurations (envoy --mode validate)"; step "$current"
# Every shipped bootstrap, templates rendered the way the demo and the docs render them.
validate_envoy() {
  .venv/bin/envoy --mode validate -c "$1" -l error >/dev/null
  echo "envoy --mode validate $2: OK"
}
mkdir -p target/envoy-validate
for config in envoy/*.yaml; do
  case "$config" in */docker-compose.yaml) continue ;; esac
  validate_envoy "$config" "$config"
done
python3 envoy/render.py filter-config/aethermarket.json --wasm target/wasm32-wasip1/release/claimgate.wasm \
  > target/envoy-validate/claimgate.envoy.yaml
validate_envoy target/envoy-validate/claimgate.envoy.yaml "envoy/claimgate.envoy.yaml.tmpl (rendered)"
python3 envoy/render.py filter-config/aethermarket.json --template envoy/claimgate-remote-module.envoy.yaml.tmpl \
  --module-url https://artifacts.example.com/claimgate/claimgate.wasm \
  --module-sha256 "$(sha256sum target/wasm32-wasip1/release/claimgate.wasm | cut -d' ' -f1)" \
  > target/envoy-validate/claimgate-remote-module.envoy.yaml
validate_envoy target/envoy-validate/claimgate-remote-module.envoy.yaml "envoy/claimgate-remote-module.envoy.yaml.tmpl (rendered)"

python3 envoy/render.py filter-config/aethermarket.json --template envoy/claimgate-global-ratelimit.envoy.yaml.tmpl \
  --wasm target/wasm32-wasip1/release/claimgate.wasm > target/envoy-validate/claimgate-global-ratelimit.envoy.yaml
validate_envoy target/envoy-validate/claimgate-global-ratelimit.envoy.yaml "envoy/claimgate-global-ratelimit.envoy.yaml.tmpl (rendered)"

python3 envoy/render.py filter-config/aethermarket.json --template envoy/claimgate-live-policy.envoy.yaml.tmpl \
  --wasm target/wasm32-wasip1/release/claimgate.wasm --policy-dir "$PWD/target/envoy-validate/policy" \
  > target/envoy-validate/claimgate-live-policy.envoy.yaml
# (validate mode does not read the ECDS policy file; tests/envoy/live_policy.rs loads it in a real Envoy)
validate_envoy target/envoy-validate/claimgate-live-policy.envoy.yaml "envoy/claimgate-live-policy.envoy.yaml.tmpl (rendered)"

current="OCI image and deployment manifests"; step "$current"
# The release image from the module built above, then the Istio and Envoy Gateway
# manifests filled with its digest: schemas, cross-references, the edge settings
# (envoy/deploy/EDGE.md), claimgate check of the embedded configurations, envoy --mode
# validate of the patched-in IdP cluster and of the EnvoyFilter's HCM fields.
scripts/package.sh --no-build
scripts/render_deploy.sh
node --test scripts/validate_manifests.test.mjs   # the validator refuses each broken edge setting
for config in envoy/deploy/recipes/*.json; do
  target/release/claimgate check "$config" >/dev/null
  echo "claimgate check $config: OK"
done
for cases in envoy/deploy/recipes/*.cases.yaml; do
  target/release/claimgate test "${cases%.cases.yaml}.json" "$cases"
done
node --test envoy/deploy/recipes/

current="policy cases (claimgate test)"; step "$current"
for cases in filter-config/*.cases.yaml; do
  target/release/claimgate test "${cases%.cases.yaml}.json" "$cases"
done

current="unit and integration tests (host)"; step "$current"
# Everything that needs neither Envoy nor the modules built above (those are ignored here
# and run in the next step).
cargo test --all-targets

current="Envoy integration tests and the release artifact (the modules built above)"; step "$current"
# The tests a plain `cargo test` ignores because they need these builds: every Envoy test
# (one test binary, tests/envoy/) and the module's OCI round trip. tests/fuzz_corpus.rs's
# ignored test (it writes the fuzz corpus, by hand) is not among them and does not run.
cargo test --test envoy -- --include-ignored
cargo test --test release_artifact -- --include-ignored

current="wasm-bindgen tests (wasm32-unknown-unknown, Node)"; step "$current"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$PWD/.tools/bin/wasm-bindgen-test-runner" \
  cargo test --target wasm32-unknown-unknown --no-default-features --test wasm_core

# The load harness end to end on a tiny budget, so a change to the Envoy template or the
# CLI cannot silently break `scripts/load.sh`; its figures here mean nothing.
current="load harness (smoke)"; step "$current"
cargo build --quiet --release --target wasm32-wasip1 \
  --manifest-path benches/load/noop-module/Cargo.toml --target-dir target/noop
.venv/bin/python benches/load/run.py --seconds 1 --warmup 1 --rounds 1 --pool 200 \
  --algs RS256,EdDSA --two-workers RS256 --phases --out target/load-smoke.md >/dev/null
grep -q "^## Targets" target/load-smoke.md
grep -q "| claimgate phase-timing build | [0-9,]* | " target/load-smoke.md
.venv/bin/python benches/load/profile.py --seconds 2 --out target/load-profile-smoke.md >/dev/null
grep -q "| claimgate | " target/load-profile-smoke.md
.venv/bin/python benches/load/run.py --slope now --seconds 1 --warmup 1 --rounds 1 \
  --out target/load-slope-smoke.md >/dev/null
grep -q "| \`now\` |" target/load-slope-smoke.md
.venv/bin/python benches/load/memory.py --seconds 1 --warmup 1 --idle 0 --rounds 1 --pool 200 \
  --out target/load-memory-smoke.md >/dev/null
grep -q "| claimgate | releases free memory | " target/load-memory-smoke.md

# Every cargo-fuzz target for 5 s (nightly and cargo-fuzz are installed when missing; the
# first build of the fuzz crate takes about 2-3 minutes). The long run is
# `scripts/fuzz.sh 1800` (README, "Fuzzing").
current="fuzz (short)"; step "$current"
scripts/fuzz.sh "${FUZZ_SECONDS:-5}"

step "all tests passed"
