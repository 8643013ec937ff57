#!/usr/bin/env python3
"""What Envoy's `memory_allocator_manager` (tcmalloc's background release of free pages)
does to the RSS of Envoy with the do-nothing module and with claimgate (issue 22): each
setup with the shipped bootstrap (which releases free memory) and with that block cut out,
interleaved over the rounds; one worker, a full token cache (the pool of distinct RS256
tokens), RSS and tcmalloc's counters (admin `/memory`) right after the load and again after
`--idle` seconds. Run through `scripts/load.sh --memory` (writes benches/results/memory.md)."""

import argparse
import json
import pathlib
import re
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import run  # noqa: E402  (the harness: Envoy, wrk, the setups)

RELEASE_BLOCK = re.compile(r"\n *# memory-release-start.*?# memory-release-end\n", re.S)


def without_release(yaml_text):
    """The bootstrap with its `memory_allocator_manager` block cut out."""
    cut, count = RELEASE_BLOCK.subn("\n", yaml_text)
    assert count == 1, "envoy/claimgate.envoy.yaml.tmpl has no memory-release block: update benches/load/memory.py"
    return cut


def tcmalloc(envoy):
    """Envoy's allocator counters in MiB: in use, held as free pages, in thread caches."""
    memory = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/memory").read())
    mib = lambda name: int(memory.get(name, 0)) / 1048576  # noqa: E731
    return {"allocated": mib("allocated"), "free": mib("pageheap_free"), "thread caches": mib("total_thread_cache")}


def measure(args, envoy, token, pool_file):
    try:
        run.wrk(envoy.port, token, pool_file, args.warmup, args.connections, 1)
        run.wrk(envoy.port, token, pool_file, args.seconds, args.connections, 1)
        loaded = dict(rss=envoy.rss_mib(), **tcmalloc(envoy))
        time.sleep(args.idle)
        return loaded, dict(rss=envoy.rss_mib(), **tcmalloc(envoy))
    finally:
        envoy.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--idle", type=int, default=5, help="seconds without load before the second reading")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=10000)
    parser.add_argument("--out", default=str(run.ROOT / "benches" / "results" / "memory.md"))
    args = parser.parse_args()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="claimgate-memory-"))
    signer = run.Signer("RS256", workdir, run.CONFIG)
    pool = signer.mint(args.pool + 1)
    pool_file = workdir / "tokens.txt"
    pool_file.write_text("\n".join(pool[1:]) + "\n")
    setups = []
    for name, wasm in ((run.NOOP, run.NOOP_WASM), (run.CLAIMGATE, run.WASM)):
        shipped = run.claimgate_yaml(wasm, signer.config)
        setups += [(name, "releases free memory", shipped), (name, "no release (block cut)", without_release(shipped))]
    samples = {}
    for round_index in range(args.rounds):
        shift = round_index % len(setups)
        for name, variant, yaml_text in setups[shift:] + setups[:shift]:
            loaded, idle = measure(args, run.Envoy(yaml_text, workdir, 1), pool[0], pool_file)
            samples.setdefault((name, variant), []).append((loaded, idle))
            print(f"{name:<18} {variant:<24} RSS {loaded['rss']:6.1f} MiB after load, {idle['rss']:6.1f} idle"
                  f" | free {loaded['free']:5.1f} thread caches {loaded['thread caches']:5.1f}", flush=True)

    def med(values):
        values = sorted(values)
        return values[len(values) // 2]

    lines = ["# Envoy's background release of free memory (`memory_allocator_manager`)", "",
             f"{time.strftime('%Y-%m-%d')} · Envoy 1.40.0 (V8), one worker, `wrk -t1 -c{args.connections} "
             f"-d{args.seconds}s` with {args.pool} distinct RS256 tokens (claimgate's token cache full), "
             f"{args.rounds} interleaved rounds, medians; 'idle' is {args.idle} s after the load. MiB.", "",
             "| setup | bootstrap | RSS after load | RSS idle | tcmalloc in use | free pages | thread caches |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (name, variant), rows in samples.items():
        lines.append(f"| {name} | {variant} | {med(r[0]['rss'] for r in rows):.1f} | {med(r[1]['rss'] for r in rows):.1f}"
                     f" | {med(r[0]['allocated'] for r in rows):.1f} | {med(r[0]['free'] for r in rows):.1f}"
                     f" | {med(r[0]['thread caches'] for r in rows):.1f} |")
    for variant in ("releases free memory", "no release (block cut)"):
        ours, base = samples[(run.CLAIMGATE, variant)], samples[(run.NOOP, variant)]
        added = med(r[0]["rss"] for r in ours) - med(r[0]["rss"] for r in base)
        lines.append(f"\nclaimgate over the do-nothing module, {variant}: {added:+.1f} MiB after load.")
    run.publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
