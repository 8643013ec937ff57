#!/usr/bin/env bash
# The demo: a real Envoy on 127.0.0.1:10000 with claimgate on the AetherMarket example,
# in front of an echo service that shows the headers it receives. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN_PORT=10000 ADMIN_PORT=9901 UPSTREAM_PORT=10001
CONFIG=${CLAIMGATE_CONFIG:-filter-config/aethermarket.json}

scripts/bootstrap.sh
echo "==> demo: building the Wasm module and the CLI"
cargo build --quiet --release --lib --target wasm32-wasip1
cargo build --quiet --release --bin claimgate
target/release/claimgate check "$CONFIG" >/dev/null

for port in $LISTEN_PORT $ADMIN_PORT $UPSTREAM_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use; stop whatever listens there first" >&2
    exit 1
  fi
done

mkdir -p .run
python3 envoy/render.py "$CONFIG" --listen-port $LISTEN_PORT --admin-port $ADMIN_PORT \
  --upstream-port $UPSTREAM_PORT --wasm target/wasm32-wasip1/release/claimgate.wasm > .run/demo.envoy.yaml

python3 envoy/echo_upstream.py --port $UPSTREAM_PORT &
upstream=$!
envoy_pid=
cleanup() {
  [ -n "$envoy_pid" ] && kill "$envoy_pid" 2>/dev/null || true
  kill "$upstream" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat <<MSG
==> demo: Envoy on http://127.0.0.1:$LISTEN_PORT (admin $ADMIN_PORT), echo upstream on $UPSTREAM_PORT
    Try, in another terminal:
      TOKEN=\$(target/release/claimgate mint --key filter-config/demo/private-demo-only.jwk.json \\
               --config $CONFIG --claim https://aethermarket.com/loyalty_tier=Gold)
      curl -i http://127.0.0.1:$LISTEN_PORT/deals/exclusive -H "Authorization: Bearer \$TOKEN"   # 200
      curl -i http://127.0.0.1:$LISTEN_PORT/products/42                                          # 401
    Ctrl-C stops the demo.
MSG
.venv/bin/envoy -c .run/demo.envoy.yaml --concurrency 2 -l warning --component-log-level wasm:info &
envoy_pid=$!
wait "$envoy_pid"
