#!/usr/bin/env bash
# Fills the deployment manifests in envoy/deploy/ for your registry and Auth0 tenant, with the
# digest of the image scripts/package.sh built, and validates what it wrote:
#
#   scripts/render_deploy.sh [--registry REGISTRY] [--tenant TENANT] [--out DIR]
#
#   --registry  where the image is pushed, without scheme or tag (default registry.example.com/aethermarket)
#   --tenant    the Auth0 tenant, as in TENANT.auth0.com (default aethermarket; EU: name.eu)
#   --out       default target/deploy
#
# Writes DIR/istio/ (kubectl apply -f), DIR/istio-mesh/ (an overlay for the Istio
# installation: istioctl install -f, or the same meshConfig in istiod's Helm values), and
# DIR/envoy-gateway/ (kubectl apply -f). Checks: scripts/validate_manifests.mjs (Istio
# and Gateway API schemas, Envoy Gateway structure, cross-references, the edge settings of
# envoy/deploy/EDGE.md), `claimgate check` on every embedded claimgate configuration,
# `envoy --mode validate` on every Envoy cluster the manifests patch in and on the HCM
# fields the Istio EnvoyFilter merges. Needs scripts/package.sh and scripts/bootstrap.sh
# --release-tools first.
set -euo pipefail
cd "$(dirname "$0")/.."

registry=registry.example.com/aethermarket
tenant=aethermarket
out=target/deploy
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry=${2:?}; shift ;;
    --tenant) tenant=${2:?}; shift ;;
    --out) out=${2:?}; shift ;;
    *) echo "render_deploy: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "render_deploy: $*" >&2; exit 1; }
[[ "$registry" =~ ^[A-Za-z0-9.:/_-]+$ && "$registry" != *://* ]] || die "--registry: a host[:port]/path without scheme, e.g. ghcr.io/acme"
[[ "$tenant" =~ ^[a-z0-9][a-z0-9.-]*$ ]] || die "--tenant: the part before .auth0.com, e.g. aethermarket"

version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
[ -f target/oci/claimgate.image.digest ] || die "target/oci/claimgate.image.digest is missing: run scripts/package.sh"
digest=$(cat target/oci/claimgate.image.digest)
[ -x target/release/claimgate ] || die "target/release/claimgate is missing: cargo build --release --bin claimgate"
[ -x .venv/bin/envoy ] || die ".venv/bin/envoy is missing: run scripts/bootstrap.sh"
command -v node >/dev/null || die "node not found"

rm -rf "$out"
mkdir -p "$out/istio" "$out/istio-mesh" "$out/envoy-gateway" "$out/checks"
render() {
  sed -e "s|REGISTRY|$registry|g" -e "s|IMAGE_DIGEST|$digest|g" -e "s|TENANT|$tenant|g" "$1" > "$2"
}
for file in envoy/deploy/istio/*.yaml; do render "$file" "$out/istio/$(basename "$file")"; done
for file in envoy/deploy/istio/mesh/*.yaml; do render "$file" "$out/istio-mesh/$(basename "$file")"; done
for file in envoy/deploy/envoy-gateway/*.yaml; do render "$file" "$out/envoy-gateway/$(basename "$file")"; done
if grep -rn -E 'REGISTRY|IMAGE_DIGEST|TENANT' "$out/istio" "$out/istio-mesh" "$out/envoy-gateway"; then
  die "placeholders left in the rendered manifests"
fi

node scripts/validate_manifests.mjs --version "$version" --digest "$digest" --tenant "$tenant" \
  --checks "$out/checks" "$out"/istio/*.yaml "$out"/istio-mesh/*.yaml "$out"/envoy-gateway/*.yaml

configs=("$out"/checks/*.claimgate.json)
[ -e "${configs[0]}" ] || die "no claimgate configuration extracted"
for config in "${configs[@]}"; do
  target/release/claimgate check "$config" >/dev/null
  echo "render_deploy: claimgate check $(basename "$config"): OK"
done
for bootstrap in "$out"/checks/*.envoy.json; do
  [ -e "$bootstrap" ] || continue
  .venv/bin/envoy --mode validate -c "$bootstrap" -l error >/dev/null
  echo "render_deploy: envoy --mode validate $(basename "$bootstrap"): OK"
done
echo "render_deploy: manifests for oci://$registry/claimgate:$version (sha256 $digest), tenant $tenant.auth0.com in $out/"
