"""Ray Serve's capacity at 1, 2 and 4 replicas, batching on and off, beside KServe and TorchServe, in one run.

    make bench TOOL=scale                                          # = python -m benchmarks scale
    python -m benchmarks scale --replicas 1 2 --step-seconds 1 --others   # quicker, Ray Serve only

Each configuration is started alone on free ports over the trained model (deploy/local/runner.py, in a
variant root: benchmarks/variants.py), measured the way the settings search measures a point
(benchmarks/search.py `measure_point`: a warm-up, one client's p50/p99, then the capacity search of
the open-loop engine, p99 <= 50 ms with every request answered, bracketed and bisected) with the RSS of the
server's process tree idle and at its peak under load, and stopped. Ray Serve runs `--replicas`
fixed replicas (no autoscaling) with `@serve.batch` on (batch size 8, 2 ms wait) or off (batch 1);
KServe's PyTorch ModelServer and TorchServe with their checked-in settings run the same ladder
for comparison. Capacity per core divides by the cores this machine has, which the load generator
shares with the servers. Writes <artifacts>/bench/scale.json (benchmarks/results.py).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks import machine as machine_mod
from benchmarks import results, search, sweep
from core import paths, servers

BATCH_SIZE, BATCH_WAIT_MS = 8, 2  # @serve.batch when batching is on (serving/rayserve/app.py's defaults)


def points(replicas: list[int], modes: list[str] = ("on", "off")) -> list[dict]:
    """The Ray Serve configurations: each replica count with batching on and off (or only those named)."""
    return [{"name": f"{count} replica{'s' if count > 1 else ''}, batching {'on' if batching else 'off'}",
             "replicas": count, "batching": batching,
             "settings": {"rayserve_flags": {"replicas": count, "max-batch-size": BATCH_SIZE if batching else 1,
                                             "batch-wait-ms": BATCH_WAIT_MS if batching else 0}}}
            for count in replicas for batching in (mode == "on" for mode in modes)]


def others() -> list[str]:
    """The other model servers of Ray Serve's model (the PyTorch one), in the table's order (core/servers.py)."""
    framework = servers.SERVERS["rayserve"].framework
    return [name for name in servers.model_servers()
            if name != "rayserve" and servers.SERVERS[name].framework == framework]


def rows(server: str, point: dict, cores: int) -> list[dict]:
    """The table's lines of one measured point, one per endpoint: capacity, per core, latency, memory."""
    targets = point.get("targets") or {server: {"error": point.get("error", "not measured")}}
    memory = point.get("memory", {})
    lines = []
    for target, figures in targets.items():
        capacity = figures.get("capacity_rps")
        lines.append({"server": server, "target": target, "config": point["name"], "replicas": point.get("replicas"),
                      "batching": point.get("batching"), "capacity_rps": capacity,
                      "rps_per_core": round(capacity / cores, 1) if capacity is not None else None,
                      "one_client_p50_ms": figures.get("one_client", {}).get("p50_ms"),
                      "one_client_p99_ms": figures.get("one_client", {}).get("p99_ms"),
                      "idle_mb": memory.get("idle_mb"), "peak_mb": memory.get("peak_mb"),
                      "cold_start_s": point.get("cold_start_s"), "error": figures.get("error") or point.get("error")})
    return lines


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4], help="replica counts (default: 1 2 4)")
    parser.add_argument("--batching", nargs="+", default=["on", "off"], choices=("on", "off"),
                        help="@serve.batch on, off or both (default: both)")
    parser.add_argument("--others", nargs="*", default=others(),
                        help="servers measured beside it with their checked-in settings (default: every other server "
                             f"of the PyTorch model, {' '.join(others())}; none: --others)")
    parser.add_argument("--latency-seconds", type=float, default=1.0, help="one-client timing (default: 1)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0, help="unrecorded load first (default: 3)")
    parser.add_argument("--step-seconds", type=float, default=2.0, help="length of each load step (default: 2)")
    sweep.add_bounds_arguments(parser, start=25.0, maximum=4000.0)
    parser.add_argument("--threads", type=int, default=32, help="client threads of the load generator (default: 32)")
    parser.add_argument("--retries", type=int, default=1, help="runs again of a failing step (default: 1)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    bounds = sweep.bounds_from(args)
    cores = len(os.sched_getaffinity(0))
    todo = [("rayserve", point) for point in points(args.replicas, args.batching)] + \
           [(server, {"name": "default", "settings": {}}) for server in args.others]
    print(f"scale: {len(todo)} configurations, load steps of {args.step_seconds:g} s, {bounds.describe()}, "
          f"objective p99 <= {sweep.SLO_P99_MS:g} ms, {cores} cores shared with the generator", flush=True)
    started, measured = time.monotonic(), []
    for number, (server, point) in enumerate(todo, 1):
        print(f"[{number}/{len(todo)}] {server} {point['name']}", flush=True)
        measured.append((server, search.measure_point(root, server, point, args, bounds)))
    table = [line for server, point in measured for line in rows(server, point, cores)]
    report = {"command": results.command(__name__, argv), "machine": machine_mod.describe(),
              "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": cores,
              "slo_p99_ms": sweep.SLO_P99_MS, "search": {**bounds.to_dict(), "step_seconds": args.step_seconds},
              "batch": {"max_batch_size": BATCH_SIZE, "wait_ms": BATCH_WAIT_MS}, "table": table,
              "points": [{"server": server, **point} for server, point in measured],
              "seconds": round(time.monotonic() - started, 1)}
    path = results.write(report, root, "scale")
    print(f"\n{'target':<22}{'configuration':<28}{'req/s':>8}{'per core':>10}{'p50 ms':>9}{'idle MB':>9}{'peak MB':>9}")
    for line in table:
        figures = (f"{line['capacity_rps']:>8g}{line['rps_per_core']:>10g}{line['one_client_p50_ms']:>9.2f}"
                   f"{line['idle_mb']:>9.0f}{line['peak_mb']:>9.0f}") if line["error"] is None else f"  {line['error']}"
        print(f"{line['target']:<22}{line['config']:<28}{figures}")
    print(f"\nwrote {path} in {report['seconds']:.0f} s ({report['command']})")
    return report
