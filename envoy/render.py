#!/usr/bin/env python3
"""Renders envoy/claimgate.envoy.yaml.tmpl for one claimgate configuration."""
import argparse
import json
import pathlib
import sys

TEMPLATE = pathlib.Path(__file__).with_name("claimgate.envoy.yaml.tmpl")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="claimgate JSON configuration")
    parser.add_argument("--listen-port", type=int, default=10000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--upstream-port", type=int, default=10001)
    parser.add_argument("--wasm", required=True, help="path of claimgate.wasm")
    parser.add_argument("--runtime", default="v8", choices=["v8", "wasmtime", "wamr"])
    parser.add_argument("--clusters", help="YAML file with extra clusters (a list, for remote key sources)")
    args = parser.parse_args()
    plugin_config = pathlib.Path(args.config).read_text()
    json.loads(plugin_config)  # fail here, not in Envoy, on a file that is not JSON
    clusters = ""
    if args.clusters:
        # Each line indented under static_resources.clusters.
        clusters = "\n  ".join(pathlib.Path(args.clusters).read_text().rstrip().splitlines())
    rendered = (
        TEMPLATE.read_text()
        .replace("{{LISTEN_PORT}}", str(args.listen_port))
        .replace("{{ADMIN_PORT}}", str(args.admin_port))
        .replace("{{UPSTREAM_PORT}}", str(args.upstream_port))
        .replace("{{WASM_PATH}}", str(pathlib.Path(args.wasm).resolve()))
        .replace("{{RUNTIME}}", args.runtime)
        .replace("{{PLUGIN_CONFIG}}", json.dumps(plugin_config))
        .replace("# {{EXTRA_CLUSTERS}}", clusters)
    )
    sys.stdout.write(rendered)


if __name__ == "__main__":
    main()
