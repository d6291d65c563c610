"""Soak test: every served endpoint at half its capacity for a long time; errors and memory growth.

    python -m benchmarks soak                       # make bench TOOL=soak: 10 minutes, needs `make serve`
    python -m benchmarks soak --seconds 30 --rate 10

Each served endpoint of core/registry.py gets its own open-loop load (benchmarks/openloop.py,
Poisson arrivals, latency from each request's scheduled time) at `--fraction` (default 0.5) of its
capacity, read from artifacts/bench/load-capacity.json
({"endpoints": {"torchserve-rest": {"capacity_rps": ...}, ...}}, written by the load test) where
present, else at `--rate` requests per second. Every answer is checked against the in-process
model. Every `--sample` seconds the resident memory (RSS) of each server's whole process tree
(TorchServe: Java front and Python workers; TF Serving: its process) is summed (benchmarks/memory.py).
Prints a table and writes artifacts/bench/soak.json (benchmarks/results.py); exits 1 when any
request was not answered (refused, failed, never sent or still in flight at the end).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import machine, results
from benchmarks.memory import tree_rss_mb
from benchmarks.openloop import OpenLoop
from core import paths, registry
from serving import endpoints as endpoints_mod
from training import data

SERVER_OF = {name: registry.TARGETS[name].server for name in registry.served()}  # target -> its local server


def server_pids(root: Path) -> dict[str, int]:
    """The running servers' recorded pids (the runner's pid files)."""
    from deploy.local import runner, servers

    found = {}
    for name in servers.MODEL_SERVERS:
        recorded = runner.read_pid(runner.run_dir(name, root))
        if recorded is None:
            raise SystemExit(f"error: {name} is not running under {root}: start it with `make serve`")
        found[name] = recorded.pid
    return found


def rates(names, capacity_file: Path, fraction: float, default_rate: float) -> dict[str, tuple[float, str]]:
    """Requests per second for each endpoint, and where that number came from."""
    capacity = {}
    if capacity_file.exists():
        capacity = json.loads(capacity_file.read_text()).get("endpoints", {})
    out = {}
    for name in names:
        rps = capacity.get(name, {}).get("capacity_rps")
        out[name] = (fraction * rps, f"{fraction:g} x capacity {rps:.1f}/s") if rps else (default_rate, "--rate")
    return out


def soak(root: Path, seconds: float, rate_of: dict, sample: float = 5.0, endpoints=None, threads: int = 2) -> dict:
    """Run the loads side by side; the report (counts, latencies, memory samples) as a dict."""
    from core import registry

    endpoints = endpoints or endpoints_mod.resolve()
    images = data.load_split(paths.split_path(root))["test"].x[:1]
    pids = server_pids(root)
    references = {framework: registry.load(name, root=root).predict(images)
                  for framework, name in registry.IN_PROCESS.items()}
    loads = {}
    for name in registry.served():
        reference = references[registry.TARGETS[name].framework]
        loads[name] = OpenLoop(lambda name=name: registry.load(name, root=root, endpoints=endpoints), [images],
                               expected=[reference], rate=rate_of[name][0], threads=threads, servers=pids)
    memory = {server: [(0.0, tree_rss_mb(pid))] for server, pid in pids.items()}
    start = time.monotonic()
    for load in loads.values():
        load.start()
    next_sample, next_progress = start + sample, start + max(seconds / 10, 5)
    while (now := time.monotonic()) < start + seconds:
        if now >= next_sample:
            for server, pid in pids.items():
                memory[server].append((round(now - start, 1), tree_rss_mb(pid)))
            next_sample += sample
        if now >= next_progress:
            done = {name: load.snapshot() for name, load in loads.items()}
            print(f"soak: {now - start:5.0f}/{seconds:.0f} s  "
                  + "  ".join(f"{name} {c['answered']} answered {c['failed'] - c['in_flight']} not" for name, c in
                              done.items()), flush=True)
            next_progress += max(seconds / 10, 5)
        time.sleep(min(0.2, max(start + seconds - now, 0)))
    elapsed = time.monotonic() - start
    outcomes = {name: load.stop() for name, load in loads.items()}
    for load in loads.values():
        load.close()
    for server, pid in pids.items():
        memory[server].append((round(time.monotonic() - start, 1), tree_rss_mb(pid)))

    endpoints_report = {name: {"target_rps": rate_of[name][0], "rate_from": rate_of[name][1], **outcome}
                        for name, outcome in outcomes.items()}
    rss = {server: {"start_mb": samples[0][1], "end_mb": samples[-1][1], "max_mb": max(s[1] for s in samples),
                    "growth_mb": samples[-1][1] - samples[0][1],
                    "growth_ratio": samples[-1][1] / samples[0][1] if samples[0][1] else None,
                    "samples": samples} for server, samples in memory.items()}
    return {"seconds": round(elapsed, 1), "endpoints": endpoints_report, "memory": rss}


def print_table(report: dict) -> None:
    print(f"\n{'endpoint':<18}{'rate/s':>8}{'got/s':>8}{'answered':>9}{'refused':>8}{'errors':>7}{'unsent':>7}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'client CPU':>11}")
    for name, r in report["endpoints"].items():
        errors = r["reset"] + r["timed_out"] + r["errors"] + r["in_flight"]
        p50, p99 = (f"{r[key]:>9.2f}" if r[key] is not None else f"{'-':>9}" for key in ("p50_ms", "p99_ms"))
        print(f"{name:<18}{r['target_rps']:>8.1f}{r['achieved_rps']:>8.1f}{r['answered']:>9}{r['refused']:>8}"
              f"{errors:>7}{r['not_sent']:>7}{p50}{p99}{r['generator']['cpu_cores']:>11.2f}")
    print(f"\n{'server':<18}{'RSS start MB':>14}{'end MB':>10}{'max MB':>10}{'growth MB':>11}{'end/start':>11}")
    for server, m in report["memory"].items():
        ratio = f"{m['growth_ratio']:.3f}" if m["growth_ratio"] else "-"
        print(f"{server:<18}{m['start_mb']:>14.1f}{m['end_mb']:>10.1f}{m['max_mb']:>10.1f}{m['growth_mb']:>11.1f}{ratio:>11}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long, seconds (default: 600)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="requests/s per endpoint without a capacity file (default: 20)")
    parser.add_argument("--fraction", type=float, default=0.5, help="share of measured capacity (default: 0.5)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples (default: 5)")
    parser.add_argument("--out", type=Path, help="report file (default: <artifacts>/bench/soak.json)")
    args = parser.parse_args(argv)
    from core import registry

    root = paths.artifacts_dir()
    capacity_file = root / "bench" / "load-capacity.json"
    rate_of = rates(registry.served(), capacity_file, args.fraction, args.rate)
    for name, (rps, source) in rate_of.items():
        print(f"soak: {name} at {rps:.1f} requests/s ({source})")
    report = {"command": results.command(__name__, argv), "machine": machine.describe(),
              **soak(root, args.seconds, rate_of, args.sample),
              "capacity_file": str(capacity_file) if capacity_file.exists() else None}
    out = results.save(report, args.out) if args.out else results.write(report, root, "soak")
    print_table(report)
    failed = sum(r["failed"] for r in report["endpoints"].values())
    print(f"\n{report['seconds']:.0f} s; {failed} failed or lost requests; written to {out}")
    if failed:
        raise SystemExit(1)
