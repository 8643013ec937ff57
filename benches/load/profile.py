#!/usr/bin/env python3
"""Where Envoy's CPU goes under load, by code region (issue 22): `perf record -e cpu-clock -g`
on the Envoy process (hardware counters are not available in these virtual machines; the
software clock is) while wrk sends a repeated RS256 token, for Envoy without auth, with the
do-nothing module, with the do-nothing module making claimgate's host calls, and with
claimgate. Envoy's binary is stripped, so the split is by region: Envoy's own code (its
host functions, V8's runtime and the call path into the module included), the module's
code compiled by V8 (anonymous executable memory, which perf cannot name), tcmalloc
(linked into Envoy: not separable here), libc and the kernel. Run through
`scripts/load.sh --profile` (writes benches/results/profile.md)."""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: Envoy, wrk, the setups)


def regions(perf_data):
    """Share of samples per region, from `perf report --sort dso`."""
    out = subprocess.run(["perf", "report", "-i", perf_data, "--sort", "dso", "--stdio", "--no-children"],
                         capture_output=True, text=True, check=True).stdout
    shares = {}
    for line in out.splitlines():
        found = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if not found:
            continue
        share, dso = float(found.group(1)), found.group(2).strip()
        if dso == "envoy":
            region = "Envoy (host functions, V8 runtime, HTTP)"
        elif dso.startswith(("[JIT]", "[unknown]", "//anon", "[anon")):
            region = "module code (V8 JIT)"
        elif dso.startswith("[kernel"):
            region = "kernel"
        elif dso.startswith("libc") or dso.startswith("libm") or dso.startswith("ld-linux"):
            region = "libc"
        else:
            region = "other"
        shares[region] = shares.get(region, 0.0) + share
    return shares


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wasm", default=str(run.ROOT / "target" / "wasm32-wasip1" / "release" / "claimgate.wasm"))
    parser.add_argument("--noop-wasm", default=str(run.NOOP_WASM))
    parser.add_argument("--config", default=str(run.ROOT / "filter-config" / "aethermarket.json"))
    parser.add_argument("--out", default=str(run.ROOT / "benches" / "results" / "profile.md"))
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="claimgate-profile-"))
    signer = run.Signer("RS256", workdir, args.config)
    token = signer.mint(1)[0]
    setups = [(run.NO_AUTH, (run.HERE / "no-auth.envoy.yaml.tmpl").read_text()),
              (run.NOOP, run.claimgate_yaml(args.noop_wasm, signer.config)),
              (run.NOOP_CALLS, run.claimgate_yaml(args.noop_wasm, signer.config,
                                                  f"noop_calls: {run.CLAIMGATE_CACHED_CALLS}")),
              (run.CLAIMGATE, run.claimgate_yaml(args.wasm, signer.config))]
    rows = []
    for name, yaml_text in setups:
        envoy = run.Envoy(yaml_text, workdir, 1)
        try:
            run.wrk(envoy.port, token, None, 2, args.connections, 1)
            perf_data = str(workdir / f"perf-{envoy.port}.data")
            cpu_before = envoy.cpu_ns()
            result = {}
            load = threading.Thread(target=lambda: result.update(
                run.wrk(envoy.port, token, None, args.seconds, args.connections, 1)))
            load.start()
            subprocess.run(["perf", "record", "-e", "cpu-clock", "-g", "-p", str(envoy.proc.pid), "-o", perf_data,
                            "--", "sleep", str(max(1, args.seconds - 1))],
                           check=True, capture_output=True)
            load.join()
            cpu_us = (envoy.cpu_ns() - cpu_before) / 1000 / max(result["requests"], 1)
        finally:
            envoy.stop()
        shares = regions(perf_data)
        rows.append((name, result["rps"], cpu_us, shares))
        print(f"{name:<40} {result['rps']:8.0f} req/s  CPU {cpu_us:5.1f} µs/req  "
              + ", ".join(f"{region} {share:.1f}%" for region, share in sorted(shares.items())), flush=True)

    names = ["Envoy (host functions, V8 runtime, HTTP)", "module code (V8 JIT)", "libc", "kernel", "other"]
    lines = ["# Envoy's CPU by code region, under load (perf, software clock)", "",
             "One Envoy worker, `wrk -t1 -c{}` for {} s with a repeated RS256 token on /deals/exclusive, "
             "`perf record -e cpu-clock -g -p PID` over the run (`scripts/load.sh --profile`). µs per request = "
             "the region's share of samples × Envoy's CPU time per request (scheduler). Envoy's binary is stripped: "
             "its region holds the proxy-wasm host functions, V8's runtime and call path, tcmalloc and the HTTP "
             "work of every setup. With perf attached every setup runs slower than in the load table; the shares are "
             "what this measures.".format(args.connections, args.seconds), "",
             "| setup | req/s | Envoy CPU µs/req | " + " | ".join(names) + " |",
             "|---|---:|---:|" + "---:|" * len(names)]
    for name, rps, cpu_us, shares in rows:
        lines.append(f"| {name} | {rps:.0f} | {cpu_us:.1f} | " + " | ".join(
            f"{shares.get(region, 0.0):.0f}% ({shares.get(region, 0.0) * cpu_us / 100:.1f})" for region in names) + " |")
    run.publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
