#!/usr/bin/env bash
# Builds the release module and packages it as an OCI image in the Wasm image "compat"
# variant, the layout Istio (WasmPlugin) and Envoy Gateway (EnvoyExtensionPolicy) pull:
# exactly one layer, application/vnd.oci.image.layer.v1.tar+gzip, holding /plugin.wasm,
# and the manifest annotation module.wasm.image/variant=compat. Built with umoci (no
# container engine, no hand-written tarball); skopeo pushes it.
#
#   scripts/package.sh                   build the module, write the image to target/oci/
#   scripts/package.sh --no-build        package target/wasm32-wasip1/release/claimgate.wasm as it is
#   scripts/package.sh --out DIR         write the image and digests to DIR instead of target/oci
#
# Output (DIR = target/oci):
#   DIR/image/                   the OCI image layout, tagged with the crate version
#   DIR/claimgate.wasm.sha256    sha256 of the module (Envoy's vm_config.code.remote.sha256)
#   DIR/claimgate.image.digest   sha256 of the image manifest (WasmPlugin / EnvoyExtensionPolicy sha256)
#   DIR/claimgate.image.ref      oci:DIR/image:VERSION (what skopeo copies)
# Push it (envoy/deploy/README.md):
#   skopeo copy oci:target/oci/image:0.2.0 docker://REGISTRY/claimgate:0.2.0
#
# The image is reproducible: file times, creation time and history come from the last
# commit (SOURCE_DATE_EPOCH), so the same module gives the same image digest.
set -euo pipefail
cd "$(dirname "$0")/.."

build=true
out=target/oci
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=false ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    *) echo "package: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "package: $*" >&2; exit 1; }
for tool in umoci skopeo sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/bootstrap.sh --release-tools"
done

version=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml"
module=target/wasm32-wasip1/release/claimgate.wasm
if $build; then
  cargo build --release --lib --target wasm32-wasip1
fi
[ -f "$module" ] || die "$module is missing: build it (cargo build --release --lib --target wasm32-wasip1) or drop --no-build"
# A Wasm binary starts with \0asm; Istio refuses anything else after pulling.
[ "$(head -c 4 "$module" | od -An -tx1 | tr -d ' \n')" = "0061736d" ] || die "$module is not a Wasm binary"

epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

mkdir -p "$out"
layout="$out/image"
rm -rf "$layout"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# umoci needs --rootless to unpack and repack as an ordinary user; as root it writes the
# same layer without it.
rootless=()
[ "$(id -u)" = 0 ] || rootless=(--rootless)

image="$layout:$version"
umoci init --layout "$layout"
umoci new --image "$image"
umoci config --image "$image" --no-history \
  --created "$created" --author "claimgate" \
  --config.label "org.opencontainers.image.title=claimgate" \
  --config.label "org.opencontainers.image.version=$version" \
  --manifest.annotation "module.wasm.image/variant=compat" \
  --manifest.annotation "org.opencontainers.image.title=claimgate" \
  --manifest.annotation "org.opencontainers.image.version=$version"
# One layer holding /plugin.wasm (umoci 0.4.7's `insert` writes a tar without its end
# blocks, which GNU tar refuses; unpack + repack writes a complete one).
umoci unpack "${rootless[@]}" --image "$image" "$work/bundle" >/dev/null
cp "$module" "$work/bundle/rootfs/plugin.wasm"
chmod 0644 "$work/bundle/rootfs/plugin.wasm"
chmod 0755 "$work/bundle/rootfs"
touch -d "@$epoch" "$work/bundle/rootfs/plugin.wasm" "$work/bundle/rootfs"
umoci repack "${rootless[@]}" --image "$image" \
  --history.created "$created" --history.author "claimgate" \
  --history.created_by "scripts/package.sh" --history.comment "claimgate $version proxy-wasm module" \
  "$work/bundle"
# The platform is Wasm, not the build host's (set after unpack, which only knows linux).
umoci config --image "$image" --no-history --os wasip1 --architecture wasm
umoci gc --layout "$layout"

# Check what was written with the tool a consumer uses (skopeo reads the layout) and the
# rules Istio's image fetcher applies: one tar+gzip layer whose plugin.wasm is the module.
skopeo inspect --raw "oci:$image" > "$work/manifest.json"
manifest_digest=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
python3 - "$work/manifest.json" "$layout" "$module" <<'PY' || die "the image is not in the compat layout"
import io, json, pathlib, sys, tarfile
manifest_path, layout, module = sys.argv[1:]
manifest = json.loads(pathlib.Path(manifest_path).read_text())
layers = manifest["layers"]
assert len(layers) == 1, f"{len(layers)} layers; the compat variant has exactly one"
layer = layers[0]
assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip", layer["mediaType"]
annotations = manifest.get("annotations", {})
assert annotations.get("module.wasm.image/variant") == "compat", annotations
blob = pathlib.Path(layout, "blobs", *layer["digest"].split(":")).read_bytes()
with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
    files = [m for m in tar.getmembers() if m.isfile()]
    assert [m.name.removeprefix("./") for m in files] == ["plugin.wasm"], [m.name for m in files]
    packed = tar.extractfile(files[0]).read()
assert packed == pathlib.Path(module).read_bytes(), "plugin.wasm differs from the module"
PY

module_sha=$(sha256sum "$module" | cut -d' ' -f1)
echo "$module_sha  claimgate.wasm" > "$out/claimgate.wasm.sha256"
echo "$manifest_digest" > "$out/claimgate.image.digest"
echo "oci:$image" > "$out/claimgate.image.ref"
size=$(du -sb "$layout" | cut -f1)
echo "package: claimgate $version"
echo "package:   module  $module ($(stat -c %s "$module") bytes) sha256 $module_sha"
echo "package:   image   oci:$image ($size bytes) manifest sha256:$manifest_digest"
echo "package:   push    skopeo copy oci:$image docker://REGISTRY/claimgate:$version"
