#!/usr/bin/env python3
"""Renders envoy/claimgate.envoy.yaml.tmpl (or another claimgate template, such as
envoy/claimgate-remote-module.envoy.yaml.tmpl) for one claimgate configuration."""
import argparse
import json
import pathlib
import sys
import urllib.parse

TEMPLATE = pathlib.Path(__file__).with_name("claimgate.envoy.yaml.tmpl")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="claimgate JSON configuration")
    parser.add_argument("--listen-port", type=int, default=10000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--upstream-port", type=int, default=10001)
    parser.add_argument("--template", default=str(TEMPLATE), help="template to render (default: %(default)s)")
    parser.add_argument("--wasm", help="path of claimgate.wasm (templates that load a local file)")
    parser.add_argument("--module-url", help="http(s) URL the module is downloaded from (remote-module template)")
    parser.add_argument("--module-sha256", help="the module's sha256, hex (remote-module template)")
    parser.add_argument("--runtime", default="v8", choices=["v8", "wasmtime", "wamr"])
    parser.add_argument("--clusters", help="YAML file with extra clusters (a list, for remote key sources)")
    args = parser.parse_args()
    plugin_config = pathlib.Path(args.config).read_text()
    json.loads(plugin_config)  # fail here, not in Envoy, on a file that is not JSON
    clusters = ""
    if args.clusters:
        # Each line indented under static_resources.clusters.
        clusters = "\n  ".join(pathlib.Path(args.clusters).read_text().rstrip().splitlines())
    template = pathlib.Path(args.template).read_text()
    replacements = {}
    if "{{WASM_PATH}}" in template:
        if not args.wasm:
            parser.error(f"{args.template} loads a local module: --wasm is required")
        replacements["{{WASM_PATH}}"] = str(pathlib.Path(args.wasm).resolve())
    if "{{MODULE_URL}}" in template:
        if not args.module_url or not args.module_sha256:
            parser.error(f"{args.template} downloads the module: --module-url and --module-sha256 are required")
        url = urllib.parse.urlsplit(args.module_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            parser.error(f"--module-url must be an http(s) URL: {args.module_url}")
        sha256 = args.module_sha256.strip().split()[0].lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            parser.error("--module-sha256 must be 64 hex digits (target/oci/claimgate.wasm.sha256)")
        replacements.update({
            "{{MODULE_URL}}": args.module_url,
            "{{MODULE_HOST}}": url.hostname,
            "{{MODULE_PORT}}": str(url.port or (443 if url.scheme == "https" else 80)),
            "{{MODULE_SHA256}}": sha256,
        })
    for placeholder, value in replacements.items():
        template = template.replace(placeholder, value)
    rendered = (
        template
        .replace("{{LISTEN_PORT}}", str(args.listen_port))
        .replace("{{ADMIN_PORT}}", str(args.admin_port))
        .replace("{{UPSTREAM_PORT}}", str(args.upstream_port))
        .replace("{{RUNTIME}}", args.runtime)
        .replace("{{PLUGIN_CONFIG}}", json.dumps(plugin_config))
        .replace("# {{EXTRA_CLUSTERS}}", clusters)
    )
    sys.stdout.write(rendered)


if __name__ == "__main__":
    main()
