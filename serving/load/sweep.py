"""Capacity of every served endpoint, default versus the latency and throughput profiles, in one run.

    make loadtest-sweep                                    # = python -m serving.load.sweep
    python -m serving.load.sweep --seconds 3 --start-rate 20 --factor 1.5 --settings default throughput

For each named server setting (deploy/local/settings.py: "default" = the checked-in configs, and
the COMMITTED profiles of deploy/local/profiles.json, so a rerun measures the same settings; the
settings search, serving/load/search.py, is what re-derives them) it starts both servers in their own
variant root (serving/load/variants.py) on free ports, records each server's cold start and the
RSS of its process tree (idle and peak under load), then raises the offered open-loop rate
(serving/load/openloop.py) step by step on every server target of core/registry.py until a
step's p99 exceeds the objective (50 ms) or any request fails. An endpoint's capacity is the
highest offered rate whose p99 stayed within the objective with zero errors. Each endpoint first
gets an unrecorded warm-up at the lowest rate, and a failing step is run once more before the
ladder stops (`--retries`), so one burst of noise from other work on the machine does not end it. The in-process rate
of each framework (one client thread, batch 1, no server) is measured in the same run.

The load generator runs on the same machine as the servers, so the servers and the client share
its cores: the figures are this machine's, and ratios side by side are the point.
Writes, under <artifacts>/bench/:
  load-<target>.json      every step (offered and achieved rate, p50/p90/p99/max, errors) per setting
  load-<target>.png       latency against offered load, every setting
  load-capacity.json      capacity per target (the better setting), cold starts, memory, in-process rates
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks import machine as machine_mod
from core import registry
from core import spec as specs
from deploy.local import runner, servers
from deploy.local import settings as settings_mod
from serving.endpoints import free_endpoints
from serving.load import memory, openloop, plots, variants
from training import paths

SLO_P99_MS = 50.0


def ladder(start: float, factor: float, maximum: float) -> list[float]:
    """Offered rates start, start*factor, ... up to maximum."""
    if start <= 0 or factor <= 1:
        raise ValueError("--start-rate must be > 0 and --factor > 1")
    rates = []
    while start <= maximum:
        rates.append(round(start, 1))
        start *= factor
    return rates


def passes(step: dict, slo_ms: float = SLO_P99_MS) -> bool:
    return step["errors"] == 0 and step["p99_ms"] is not None and step["p99_ms"] <= slo_ms


def find_capacity(run_step, rates: list[float], slo_ms: float = SLO_P99_MS, retries: int = 1,
                  progress=print) -> tuple[list, float]:
    """Run `run_step(rate)` up the ladder until a step fails the objective `retries + 1` times in a row.

    Returns (the recorded steps, capacity in req/s); a step run again replaces its failed try.
    """
    steps, capacity = [], 0.0
    for rate in rates:
        for attempt in range(retries + 1):
            step = run_step(rate)
            ok = passes(step, slo_ms)
            if ok:
                break
            if attempt < retries:
                progress(f"    {rate:>8.1f} req/s offered: p99 {step['p99_ms']} ms, errors {step['errors']}: once more")
        step["attempts"] = attempt + 1
        steps.append(step)
        progress(f"    {rate:>8.1f} req/s offered: achieved {step['achieved_rps']:>8.1f}, p50 {step['p50_ms']} ms, "
                 f"p99 {step['p99_ms']} ms, errors {step['errors']}" + ("" if ok else "  <- over the objective"))
        if not ok:
            break
        capacity = rate
    return steps, capacity


def run_setting(root: Path, name: str, target_names: list[str], rates: list[float], seconds: float,
                threads: int, retries: int = 1) -> dict:
    """Start both servers with settings `name`, sweep every target, stop them; the setting's results."""
    settings = settings_mod.preset(name)
    variant = variants.prepare(root, name)
    endpoints = free_endpoints()
    print(f"\n== settings {name!r}: {json.dumps(settings.to_dict())}", flush=True)
    runner.stop(variant)  # left over from an interrupted run: its cold start and settings would not be this run's
    try:
        cold = runner.start(variant, endpoints, timeout=300, settings=settings)
        pids = {server: runner.read_pid(runner.run_dir(server, variant)).pid for server in servers.MODEL_SERVERS}
        images, classes = openloop.test_images(root), specs.load(root).num_classes
        results = {}
        with memory.Sampler(pids) as sampler:
            for target in target_names:
                print(f"  {target}:", flush=True)
                make = openloop.predictor_factory(target, variant, endpoints)
                openloop.run(make, images, classes, rates[0], seconds, threads)  # warm-up: JIT, connections, batches
                steps, capacity = find_capacity(
                    lambda rate: openloop.run(make, images, classes, rate, seconds, threads), rates, retries=retries)
                results[target] = {"capacity_rps": capacity, "steps": steps}
                print(f"  {target}: capacity {capacity:g} req/s", flush=True)
    finally:
        runner.stop(variant)
    usage = sampler.result()
    return {"server_settings": settings.to_dict(), "targets": results,
            "servers": {server: {"cold_start_s": round(cold[server], 2), **usage[server]} for server in servers.MODEL_SERVERS}}


def in_process_rates(root: Path, seconds: float) -> dict:
    """Sequential batch-1 calls per second of each framework's model without a server (serving/bench.py)."""
    from serving import bench

    images = openloop.test_images(root)
    rates = {}
    for name in registry.IN_PROCESS.values():
        print(f"  in-process {name} for {seconds:g} s", flush=True)
        predictor = registry.load(name, root=root)
        figures = bench.measure(predictor, images[:1], seconds, warmup=20)
        rates[predictor.framework] = {"target": name, "calls_per_s": round(figures["calls_per_s"], 1),
                                      "p50_ms": round(figures["p50_ms"], 4), "p99_ms": round(figures["p99_ms"], 4)}
    return rates


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate step, seconds (default: 3)")
    parser.add_argument("--start-rate", type=float, default=10.0, help="first offered rate, req/s (default: 10)")
    parser.add_argument("--factor", type=float, default=1.5, help="each step offers this much more (default: 1.5)")
    parser.add_argument("--max-rate", type=float, default=3000.0, help="stop the ladder here, req/s (default: 3000)")
    parser.add_argument("--threads", type=int, default=32, help="client threads of the load generator (default: 32)")
    parser.add_argument("--retries", type=int, default=1,
                        help="runs again of a failing step before stopping (default: 1)")
    parser.add_argument("--settings", nargs="+", default=list(settings_mod.PRESET_NAMES),
                        choices=settings_mod.PRESET_NAMES,
                        help="server settings to compare (default: default latency throughput)")
    parser.add_argument("--targets", nargs="+", default=registry.served(), choices=registry.served(),
                        help="served endpoints (default: every server target in core/registry.py)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    rates = ladder(args.start_rate, args.factor, args.max_rate)
    command = "python -m serving.load.sweep " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    print(f"sweep: {len(args.targets)} endpoints x {len(args.settings)} settings, steps of {args.seconds:g} s at "
          f"{rates[0]:g}..{rates[-1]:g} req/s (x{args.factor:g}), objective p99 <= {SLO_P99_MS:g} ms", flush=True)

    by_setting = {name: run_setting(root, name, args.targets, rates, args.seconds, args.threads, args.retries)
                  for name in args.settings}
    print("\nin-process rates (no server):", flush=True)
    in_process = in_process_rates(root, args.seconds)

    machine = machine_mod.describe()
    out_dir = root / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"command": command, "slo_p99_ms": SLO_P99_MS, "machine": machine, "step_seconds": args.seconds,
               "tfserving": servers.tfserving(root, free_endpoints()).describe,
               "endpoints": {}, "in_process": in_process,
               "servers": {name: result["servers"] for name, result in by_setting.items()},
               "server_settings": {name: result["server_settings"] for name, result in by_setting.items()}}
    for target in args.targets:
        per_target = {"target": target, "framework": registry.TARGETS[target].framework, "command": command,
                      "slo_p99_ms": SLO_P99_MS, "machine": machine,
                      "settings": {name: {"server_settings": result["server_settings"], **result["targets"][target]}
                                   for name, result in by_setting.items()}}
        (out_dir / f"load-{target}.json").write_text(json.dumps(per_target, indent=2) + "\n")
        plots.latency_vs_load(per_target, out_dir / f"load-{target}.png")
        capacities = {name: result["targets"][target]["capacity_rps"] for name, result in by_setting.items()}
        best = max(capacities, key=lambda name: (capacities[name], name == "default"))
        summary["endpoints"][target] = {"capacity_rps": capacities[best], "setting": best, "by_setting": capacities,
                                        "framework": per_target["framework"]}
    (out_dir / "load-capacity.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\n{'endpoint':<18}" + "".join(f"{name + ' req/s':>16}" for name in args.settings) + f"{'best':>10}")
    for target, entry in summary["endpoints"].items():
        print(f"{target:<18}" + "".join(f"{entry['by_setting'][name]:>16g}" for name in args.settings)
              + f"{entry['setting']:>10}")
    for framework, entry in in_process.items():
        print(f"in-process {framework:<11}{entry['calls_per_s']:>12.1f} calls/s (one thread, batch 1)")
    print(f"\nwrote {out_dir}/load-*.json, load-*.png and load-capacity.json in {time.monotonic() - started:.0f} s "
          f"({command})")
    return summary


if __name__ == "__main__":
    main()
