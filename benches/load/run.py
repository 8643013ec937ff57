#!/usr/bin/env python3
"""Side-by-side Envoy load harness: no auth, native jwt_authn + rbac, and claimgate, each
with a repeated token and with a pool of distinct tokens larger than claimgate's cache.
One Envoy worker each, wrk on loopback, interleaved in one run. Prints a table of req/s,
p50, p99, Envoy RSS and ratios, and writes it to benches/results/latest.md.

Run through scripts/load.sh (which installs wrk and builds the module)."""
import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = ROOT / "benches" / "load"
CLI = ROOT / "target" / "release" / "claimgate"
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "claimgate.wasm"
CONFIG = ROOT / "filter-config" / "aethermarket.json"
KEY = ROOT / "filter-config" / "demo" / "private-demo-only.jwk.json"
ENVOY = ROOT / ".venv" / "bin" / "envoy"
GOLD = "https://aethermarket.com/loyalty_tier=Gold"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mint(count):
    out = subprocess.run(
        [CLI, "mint", "--key", KEY, "--config", CONFIG, "--claim", GOLD, "--ttl", "7200", "--count", str(count)],
        check=True, capture_output=True, text=True).stdout
    return out.split()


def claimgate_yaml(runtime, wasm, config):
    # The demo/test template with its upstream route swapped for the same direct_response
    # the other configurations use, so only the auth filter differs.
    template = (ROOT / "envoy" / "claimgate.envoy.yaml.tmpl").read_text()
    route = "route: { cluster: echo_upstream }"
    assert route in template, "envoy/claimgate.envoy.yaml.tmpl changed: update the load harness"
    # No access log: the no-auth and native setups have none either.
    template, cut = re.subn(r"\n *access_log:.*?# access-log-end\n", "\n", template, flags=re.S)
    assert cut == 1, "envoy/claimgate.envoy.yaml.tmpl changed: update the load harness"
    # Nor the edge extras around claimgate (header mutation, per-tier rate limits).
    template, cut = re.subn(r"\n *# edge-only-start.*?# edge-only-end\n", "\n", template, flags=re.S)
    assert cut == 3, "envoy/claimgate.envoy.yaml.tmpl changed: update the load harness"
    return (template.replace(route, 'direct_response: { status: 200, body: { inline_string: "ok" } }')
            .replace("{{WASM_PATH}}", str(wasm))
            .replace("{{RUNTIME}}", runtime)
            .replace("{{PLUGIN_CONFIG}}", json.dumps(pathlib.Path(config).read_text()))
            .replace("{{UPSTREAM_PORT}}", "1"))


def native_yaml(cache):
    jwks = subprocess.run([CLI, "public-jwks", "--key", KEY], check=True, capture_output=True, text=True).stdout
    return ((HERE / "native.envoy.yaml.tmpl").read_text()
            .replace("{{JWKS}}", json.dumps(json.dumps(json.loads(jwks))))
            .replace("{{JWT_CACHE}}", "jwt_cache_config: { jwt_cache_size: 1000 }" if cache else ""))


class Envoy:
    def __init__(self, yaml_text, workdir):
        self.port, self.admin = free_port(), free_port()
        path = workdir / f"envoy-{self.port}.yaml"
        path.write_text(yaml_text.replace("{{LISTEN_PORT}}", str(self.port)).replace("{{ADMIN_PORT}}", str(self.admin)))
        self.log = open(workdir / f"envoy-{self.port}.log", "w")
        self.proc = subprocess.Popen([ENVOY, "-c", path, "--concurrency", "1", "--base-id", str(self.port), "-l", "warning"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"Envoy exited; see {self.log.name}")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1).read().strip() == b"LIVE":
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"Envoy not ready; see {self.log.name}")

    def rss_mib(self):
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def to_ms(text):
    found = re.match(r"([\d.]+)(ns|us|ms|s|m)$", text)
    if not found:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = found.groups()
    return float(value) * {"ns": 0.000001, "us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port, token, pool_file, seconds, connections):
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(HERE / "requests.lua")]
    env = dict(os.environ, TOKEN=token)
    env.pop("TOKENS", None)
    if pool_file:
        env["TOKENS"] = str(pool_file)
    out = subprocess.run(command + [f"http://127.0.0.1:{port}/deals/exclusive"], check=True,
                         capture_output=True, text=True, env=env).stdout
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        # Anchored to the start of a line: "94.50%" in the stdev column is not the p50.
        p50 = to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))
        p99 = to_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    except (AttributeError, ValueError) as err:
        raise SystemExit(f"cannot read wrk's output ({err}):\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(non2xx.group(1)) if non2xx else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-connection latency run (quick experiments)")
    parser.add_argument("--pool", type=int, default=6000, help="distinct tokens (more than the cache's 4096)")
    parser.add_argument("--runtime", default="v8", choices=["v8", "wasmtime", "wamr"])
    parser.add_argument("--out", default=str(ROOT / "benches" / "results" / "latest.md"))
    parser.add_argument("--only-repeated", action="store_true",
                        help="skip the distinct-token case (quick experiments; the table is incomplete)")
    parser.add_argument("--skip-native", action="store_true", help="skip native jwt_authn (quick experiments)")
    parser.add_argument("--wasm", default=str(WASM), help="the claimgate module to load (to compare builds)")
    parser.add_argument("--config", default=str(CONFIG), help="its configuration (the same issuer and key as the demo)")
    parser.add_argument("--also-wasm", action="append", default=[], metavar="LABEL=PATH",
                        help="another claimgate module in the same run, as its own row (e.g. the build before a change)")
    args = parser.parse_args()
    for tool in ("wrk",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: run scripts/bootstrap.sh --load")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="claimgate-load-"))
    repeated = mint(1)[0]
    pool_file = workdir / "tokens.txt"
    pool_file.write_text("\n".join(mint(args.pool)) + "\n")
    setups = [
        ("no auth", (HERE / "no-auth.envoy.yaml.tmpl").read_text(), (HERE / "no-auth.envoy.yaml.tmpl").read_text()),
        ("native jwt_authn+rbac", native_yaml(cache=True), native_yaml(cache=False)),
        (f"claimgate ({args.runtime})", claimgate_yaml(args.runtime, args.wasm, args.config),
         claimgate_yaml(args.runtime, args.wasm, args.config)),
    ]
    for extra in args.also_wasm:
        label, _, path = extra.partition("=")
        if not path:
            raise SystemExit(f"--also-wasm takes LABEL=PATH, not {extra!r}")
        yaml_text = claimgate_yaml(args.runtime, path, args.config)
        setups.append((f"claimgate {label}", yaml_text, yaml_text))
    results = {}
    single = {}
    cases = [("repeated token", False)] + ([] if args.only_repeated else [(f"{args.pool} distinct tokens", True)])
    if args.skip_native:
        setups = [setup for setup in setups if not setup[0].startswith("native")]
    for case, use_pool in cases:
        for name, repeated_yaml, pool_yaml in setups:
            envoy = Envoy(pool_yaml if use_pool else repeated_yaml, workdir)
            try:
                base_rss = envoy.rss_mib()
                wrk(envoy.port, repeated, pool_file if use_pool else None, args.warmup, args.connections)
                rps, p50, p99, errors = wrk(envoy.port, repeated, pool_file if use_pool else None, args.seconds, args.connections)
                results[(case, name)] = dict(rps=rps, p50=p50, p99=p99, errors=errors, rss=envoy.rss_mib(), base_rss=base_rss)
                print(f"{case:>22} | {name:<24} {rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  non-2xx {errors}", flush=True)
                if not args.no_single:
                    rps, p50, p99, errors = wrk(envoy.port, repeated, pool_file if use_pool else None, args.seconds, 1)
                    single[(case, name)] = dict(rps=rps, p50=p50, p99=p99, errors=errors)
                    print(f"{case:>22} | {name:<24} {rps:9.0f} req/s  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  non-2xx {errors}"
                          f"  (one connection)", flush=True)
            finally:
                envoy.stop()
    lines = [
        f"# Envoy load: claimgate vs native jwt_authn + rbac",
        "",
        f"{datetime.date.today()} · {platform.machine()}, {os.cpu_count()} cores · Envoy 1.40.0, --concurrency 1, "
        f"`wrk -t1 -c{args.connections} -d{args.seconds}s` after a {args.warmup}s warm-up, GET /deals/exclusive "
        f"(RS256, loyalty tier Gold), direct_response upstream. Native uses jwt_cache_config only in the "
        f"repeated-token case. Ratios are to the same run's no-auth and native rows.",
        "",
        "| case | setup | req/s | p50 ms | p99 ms | RSS MiB | non-2xx | vs no-auth | vs native | p99 added vs no-auth |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (case, name), row in results.items():
        base = results[(case, "no auth")]
        native = results.get((case, "native jwt_authn+rbac"))
        versus_native = f"{row['rps'] / native['rps']:.0%}" if native else "-"
        lines.append(
            f"| {case} | {name} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {row['rss']:.1f} | {row['errors']} "
            f"| {row['rps'] / base['rps']:.0%} | {versus_native} | {row['p99'] - base['p99']:+.2f} |")
    if single:
        lines += [
            "",
            f"Latency without queueing: the same Envoys with one connection (`wrk -t1 -c1 -d{args.seconds}s`), "
            "one request at a time, so the percentiles show the time each setup takes per request rather than "
            f"queueing behind {args.connections} connections at full load.",
            "",
            "| case | setup | req/s | p50 ms | p99 ms | p50 added vs no-auth | p99 added vs no-auth |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for (case, name), row in single.items():
            base = single[(case, "no auth")]
            lines.append(
                f"| {case} | {name} | {row['rps']:.0f} | {row['p50']:.3f} | {row['p99']:.3f} "
                f"| {row['p50'] - base['p50']:+.3f} | {row['p99'] - base['p99']:+.3f} |")
    table = "\n".join(lines) + "\n"
    print()
    print(table)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")
    bad = [key for key, row in list(results.items()) + list(single.items()) if row["errors"]]
    if bad:
        raise SystemExit(f"non-2xx responses in {bad}: the setups are not answering 200; see {workdir}")


if __name__ == "__main__":
    main()
