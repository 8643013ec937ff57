#!/usr/bin/env python3
"""Renders envoy/claimgate.envoy.yaml.tmpl (or another claimgate template, such as
envoy/claimgate-remote-module.envoy.yaml.tmpl) for one claimgate configuration.

With envoy/claimgate-live-policy.envoy.yaml.tmpl, --policy-dir DIR also writes the
filter's configuration to DIR/claimgate.ecds.yaml (from
envoy/claimgate-live-policy.ecds.yaml.tmpl), atomically: a temporary file in DIR renamed
over it, which is what Envoy's watched directory reacts to. --ecds-only writes only that
file: how a running Envoy gets a new policy."""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

TEMPLATE = pathlib.Path(__file__).with_name("claimgate.envoy.yaml.tmpl")
ECDS_TEMPLATE = pathlib.Path(__file__).with_name("claimgate-live-policy.ecds.yaml.tmpl")
ECDS_FILE = "claimgate.ecds.yaml"


def write_atomically(path, text):
    """Writes text to path so that a reader sees the old file or the new one, never a
    part: a temporary file in the same directory, flushed, then renamed over path."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".claimgate-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def plugin_configuration(path):
    """The configuration's JSON text. A YAML one (.yaml, .yml) is turned into JSON by the
    claimgate CLI (`claimgate json`, which checks it too): $CLAIMGATE, else
    target/release/claimgate or target/debug/claimgate, else claimgate on PATH."""
    if not path.endswith((".yaml", ".yml")):
        text = pathlib.Path(path).read_text()
        json.loads(text)  # fail here, not in Envoy, on a file that is not JSON
        return text
    repo = pathlib.Path(__file__).resolve().parent.parent
    built = [repo / "target" / kind / "claimgate" for kind in ("release", "debug")]
    cli = os.environ.get("CLAIMGATE") or next(
        (str(path) for path in built if path.exists()), None) or shutil.which("claimgate")
    if not cli:
        sys.exit("render.py: a YAML configuration needs the claimgate CLI to turn it into JSON: "
                 "cargo build --release --bin claimgate, or set CLAIMGATE")
    result = subprocess.run([cli, "json", path], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr.strip() or f"render.py: {cli} json {path} failed")
    return result.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="claimgate configuration: JSON, or YAML (.yaml/.yml, via `claimgate json`)")
    parser.add_argument("--listen-port", type=int, default=10000)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--upstream-port", type=int, default=10001)
    parser.add_argument("--template", default=str(TEMPLATE), help="template to render (default: %(default)s)")
    parser.add_argument("--wasm", help="path of claimgate.wasm (templates that load a local file)")
    parser.add_argument("--module-url", help="http(s) URL the module is downloaded from (remote-module template)")
    parser.add_argument("--module-sha256", help="the module's sha256, hex (remote-module template)")
    parser.add_argument("--runtime", default="v8", choices=["v8", "wasmtime", "wamr"])
    parser.add_argument("--clusters", help="YAML file with extra clusters (a list, for remote key sources)")
    parser.add_argument("--policy-dir", help="live-policy template: the directory Envoy watches; "
                        f"{ECDS_FILE} is written there")
    parser.add_argument("--ecds-only", action="store_true",
                        help=f"write only --policy-dir/{ECDS_FILE} (a new policy for a running Envoy)")
    args = parser.parse_args()
    plugin_config = plugin_configuration(args.config)
    clusters = ""
    if args.clusters:
        # Each line indented under static_resources.clusters.
        clusters = "\n  ".join(pathlib.Path(args.clusters).read_text().rstrip().splitlines())
    if args.ecds_only and not args.policy_dir:
        parser.error("--ecds-only needs --policy-dir")
    template = "" if args.ecds_only else pathlib.Path(args.template).read_text()
    if args.policy_dir or "{{POLICY_DIR}}" in template:
        if not args.policy_dir:
            parser.error(f"{args.template} reads the policy from a watched directory: --policy-dir is required")
        if not args.wasm:
            parser.error("--policy-dir: --wasm is required (the module the policy file names)")
        policy_dir = pathlib.Path(args.policy_dir).resolve()
        policy_dir.mkdir(parents=True, exist_ok=True)
        resource = (
            ECDS_TEMPLATE.read_text()
            .replace("{{WASM_PATH}}", str(pathlib.Path(args.wasm).resolve()))
            .replace("{{RUNTIME}}", args.runtime)
            .replace("{{PLUGIN_CONFIG}}", json.dumps(plugin_config))
        )
        write_atomically(policy_dir / ECDS_FILE, resource)
        if args.ecds_only:
            return
        template = template.replace("{{POLICY_DIR}}", str(policy_dir))
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
