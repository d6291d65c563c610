"""Capacity of every served endpoint, default versus the latency and throughput profiles, pinned and
unpinned, in one run.

    make loadtest-sweep                                    # = python -m benchmarks sweep
    python -m benchmarks sweep --seconds 3 --start-rate 20 --precision 0.05 --settings default throughput --pin both

For each named server setting (deploy/local/settings.py: "default" = the checked-in configs, and
the COMMITTED profiles of deploy/local/profiles.json, so a rerun measures the same settings; the
settings search, benchmarks/search.py, is what re-derives them) it starts both servers in their own
variant root (benchmarks/variants.py) on free ports, records each server's cold start and the
RSS of its process tree (idle and peak under load), then finds the goodput of every server target
of core/registry.py: the highest offered open-loop rate (benchmarks/openloop.py, the one load
engine) whose step held the objective, p99 <= 50 ms with every request answered (none refused,
failed or never sent). The search (`find_capacity`) first brackets it, doubling the rate
(`--factor`) from `--start-rate` until a step fails, then bisects the bracket (geometric middle)
until the first failing rate is within `--precision` (10%) of the goodput: a figure known to 10%
in about as many steps as a 1.5x ladder, which could be off by half. Each endpoint first gets an
unrecorded warm-up at the first rate, and a failing step is run once more before it counts as
failed (`--retries`), so one burst of noise from other work on the machine does not end a search.
The goodput is also given per core (of the cores the servers may use) and per core of the CPU the
servers' processes actually used at that step. The in-process rate of each framework (one client
thread, batch 1, no server) is measured in the same run.

The load generator runs on the same machine as the servers. Every step records what it cost the
generator (its process CPU over the step, as cores and as a share of the cores it may use, and its
send lag) and the CPU of each server's process tree over the same step. `--pin` runs the search
with the generator and the servers on separate cores (servers under `taskset -c`, this process
with os.sched_setaffinity; `--generator-cpus` cores for the generator, the rest for the servers),
without (`off`), or both ways (`both`, the default) when the machine has two cores or more. A
goodput whose bounding step (the lowest failing rate) or own step was limited by the generator
(>= 90% of its cores, or send lag p99 > 10 ms; the engine's `generator_limited`) is marked
`generator_limited`, in the output and the JSON, with `why`: that figure measures the client too.
Writes, under <artifacts>/bench/ (benchmarks/results.py):
  load-<target>.json      every step (offered and achieved rate, p50/p90/p99/max, outcomes, CPU) per setting and pinning
  load-<target>.png       latency against offered load, both settings (unpinned, or pinned when only that ran)
  load-capacity.json      goodput per target (the better setting), per core, pinned and unpinned, generator limits,
                          cold starts, memory, in-process rates
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import time
from pathlib import Path

from benchmarks import machine as machine_mod
from benchmarks import memory, openloop, variants
from benchmarks import results as results_mod
from benchmarks.report import charts
from core import paths, registry
from core import spec as specs
from deploy.local import runner, servers
from deploy.local import settings as settings_mod
from serving.endpoints import free_endpoints

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


class Bounds:
    """Where a capacity search looks: from `start` up to `maximum` req/s, `factor` times more each
    bracketing step, and how close it bisects: the bracket within `precision` (0.10: the lowest
    failing rate at most 10% above the capacity)."""

    def __init__(self, start: float, maximum: float, factor: float = 2.0, precision: float = 0.10):
        if start <= 0 or factor <= 1 or maximum < start:
            raise ValueError("--start-rate must be > 0, --factor > 1 and --max-rate at least --start-rate")
        if not 0 < precision < factor - 1:
            raise ValueError(f"--precision must be > 0 and below --factor - 1 ({factor - 1:g}), got {precision:g}")
        self.start, self.maximum, self.factor, self.precision = start, maximum, factor, precision

    def bracket_rates(self) -> list[float]:
        """start, start*factor, ... and `maximum` itself last: the rates tried until one fails."""
        rates = ladder(self.start, self.factor, self.maximum)
        return rates if rates[-1] >= round(self.maximum, 1) else [*rates, round(self.maximum, 1)]

    def lowest(self) -> float:
        """How far down a search whose first rate failed goes (`factor` at a time): start / factor**4."""
        return self.start / self.factor ** 4

    def to_dict(self) -> dict:
        return {"start_rps": self.start, "max_rps": self.maximum, "factor": self.factor, "precision": self.precision}

    def describe(self) -> str:
        return (f"rates from {self.start:g} req/s (x{self.factor:g} until a step fails, at most {self.maximum:g}), "
                f"then bisected to within {self.precision:.0%}")


def add_bounds_arguments(parser, start: float, maximum: float, factor: float = 2.0, precision: float = 0.10) -> None:
    """--start-rate, --factor, --max-rate and --precision: a capacity search's Bounds (the sweep's and the search's)."""
    parser.add_argument("--start-rate", type=float, default=start,
                        help=f"first offered rate, req/s (default: {start:g})")
    parser.add_argument("--factor", type=float, default=factor,
                        help=f"bracketing: each step offers this much more until one fails (default: {factor:g})")
    parser.add_argument("--max-rate", type=float, default=maximum,
                        help=f"highest rate offered, req/s (default: {maximum:g})")
    parser.add_argument("--precision", type=float, default=precision,
                        help="bisect until the first failing rate is within this of the goodput "
                             f"(default: {precision:g})")


def bounds_from(args) -> Bounds:
    return Bounds(args.start_rate, args.max_rate, args.factor, args.precision)


def passes(step: dict, slo_ms: float = SLO_P99_MS) -> bool:
    """Every request answered (none refused, failed or left unsent) and p99 within the objective."""
    return step["failed"] == 0 and step["p99_ms"] is not None and step["p99_ms"] <= slo_ms


def find_capacity(run_step, bounds: Bounds, slo_ms: float = SLO_P99_MS, retries: int = 1, cores: int | None = None,
                  progress=print) -> dict:
    """The goodput of one endpoint: the highest offered rate whose step held the objective (p99 <=
    `slo_ms`, every request answered), found by bracketing then bisecting.

    Bracket: `run_step(rate)` at bounds.start, start*factor, ... until a step fails (run `retries`
    more times first: one burst of noise from other work does not end it), or `maximum` holds; when
    the first rate fails already, start/factor, start/factor**2, ... down to `bounds.lowest()`. Bisect:
    the geometric middle of the last rate that held and the first that failed, again and again,
    until the failing rate is within `precision` of the holding one. Returns the steps in the order
    they ran, `goodput_rps` (also `capacity_rps`, the name the profiles and the report read), the
    bracket, req/s per core (of the `cores` the servers may use; default this process's), and what
    bounded it: the generator's and servers' CPU at the lowest failing step. `generator_limited`
    (the load engine's flag, benchmarks/openloop.py) when the generator was the limit at that step
    or at the goodput's own step: then the figure measures the client too, and `why` says where.
    """
    steps: list = []

    def held(rate: float) -> tuple[bool, dict]:
        for attempt in range(retries + 1):
            step = run_step(rate)
            ok = passes(step, slo_ms)
            if ok:
                break
            if attempt < retries:
                progress(f"    {rate:>8.1f} req/s offered: p99 {step['p99_ms']} ms, not answered {step['failed']}: "
                         "once more")
        step["attempts"] = attempt + 1
        steps.append(step)
        generator = step.get("generator", {})
        progress(f"    {rate:>8.1f} req/s offered: achieved {step['achieved_rps']:>8.1f}, p50 {step['p50_ms']} ms, "
                 f"p99 {step['p99_ms']} ms, not answered {step['failed']}"
                 + (f", generator CPU {generator['cpu_cores']:.2f} cores" if generator else "")
                 + ("" if ok else "  <- over the objective")
                 + (f" (generator-limited: {generator.get('why', '')})" if step.get("generator_limited") else ""))
        return ok, step

    low, high, low_step, high_step = 0.0, None, None, None
    for rate in bounds.bracket_rates():
        ok, step = held(rate)
        if not ok:
            high, high_step = rate, step
            break
        low, low_step = rate, step
    # The first rate failed: down, `factor` at a time (rates are kept to 0.1 req/s).
    while low == 0 and high is not None and round(high / bounds.factor, 1) >= round(bounds.lowest(), 1) > 0:
        rate = round(high / bounds.factor, 1)
        ok, step = held(rate)
        if ok:
            low, low_step = rate, step
        else:
            high, high_step = rate, step
    while low > 0 and high is not None and high > low * (1 + bounds.precision):
        middle = round(math.sqrt(low * high), 1)
        if not low < middle < high:  # rates are kept to 0.1 req/s: nothing left between them
            break
        ok, step = held(middle)
        if ok:
            low, low_step = middle, step
        else:
            high, high_step = middle, step
    return {"steps": steps, **capacity_figures(low, high, low_step, high_step, bounds, cores)}


def capacity_figures(low: float, high: float | None, low_step: dict | None, high_step: dict | None, bounds: Bounds,
                     cores: int | None = None) -> dict:
    """The figures of a finished search: goodput, bracket, per core, and what bounded it."""
    cores = cores or len(os.sched_getaffinity(0))
    bound = high_step or low_step or {}  # the step that stopped the search (the top one when the maximum held)
    generator = bound.get("generator", {})
    limited = [f"at {step['offered_rps']:g} req/s: {step.get('generator', {}).get('why', '')}"
               for step in (high_step, low_step) if step and step.get("generator_limited")]
    servers_cpu = (low_step or {}).get("servers_cpu_cores")
    used = sum(servers_cpu.values()) if servers_cpu else None
    return {"goodput_rps": low, "capacity_rps": low, "bracket_rps": [low, high],
            "bracket_within": round(high / low - 1, 3) if low and high else None,
            "reached_max": high is None, "below_start": low == 0,
            "cores": cores, "rps_per_core": round(low / cores, 1),
            "rps_per_server_core": round(low_step["achieved_rps"] / used, 1) if used else None,
            "search": bounds.to_dict(),
            "generator_limited": bool(limited), "why": "; ".join(limited), "stopped_at_rps": high,
            "generator_cpu_cores": generator.get("cpu_cores"), "generator_cpu_share": generator.get("cpu_share"),
            "servers_cpu_cores": bound.get("servers_cpu_cores"), "send_lag_p99_ms": bound.get("send_lag_p99_ms")}


def describe(found: dict) -> str:
    """One line for a finished search: goodput, bracket, per core, and a generator limit when there was one."""
    low, high = found["bracket_rps"]
    where = (f"the maximum {low:g} req/s held" if found["reached_max"] else
             f"nothing held down to {high:g} req/s" if found["below_start"] else
             f"bracket {low:g}..{high:g} req/s (within {found['bracket_within']:.0%})")
    return (f"goodput {low:g} req/s ({where}), {found['rps_per_core']:g} req/s per core of {found['cores']}"
            + (f"; GENERATOR-LIMITED {found['why']}" if found["generator_limited"] else ""))


def split_cores(generator_cpus: int = 1, allowed=None) -> dict | None:
    """{"generator": [...], "servers": [...]}: this process's cores split in two, or None with fewer than two."""
    allowed = sorted(os.sched_getaffinity(0) if allowed is None else allowed)
    if len(allowed) < 2:
        return None
    count = min(max(generator_cpus, 1), len(allowed) - 1)
    return {"generator": allowed[:count], "servers": allowed[count:]}


@contextlib.contextmanager
def generator_on(cpus):
    """Every thread of this process (and every one started meanwhile) on `cpus`; as before afterwards."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)

    def pin(cores):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(task), cores)

    pin(set(cpus))
    try:
        yield
    finally:
        pin(before)


def run_setting(root: Path, name: str, target_names: list[str], bounds: Bounds, seconds: float,
                threads: int, retries: int = 1, pin: dict | None = None) -> dict:
    """Start both servers with settings `name` (on `pin["servers"]` cores, the generator on
    `pin["generator"]`, when given), sweep every target, stop them; the setting's results."""
    settings = settings_mod.preset(name)
    variant = variants.prepare(root, name)
    endpoints = free_endpoints()
    where = f", generator on cores {pin['generator']}, servers on {pin['servers']}" if pin else ""
    print(f"\n== settings {name!r}{where}: {json.dumps(settings.to_dict())}", flush=True)
    runner.stop(variant)  # left over from an interrupted run: its cold start and settings would not be this run's
    try:
        cold = runner.start(variant, endpoints, timeout=300, settings=settings, cpus=pin and pin["servers"])
        pids = {server: runner.read_pid(runner.run_dir(server, variant)).pid for server in servers.MODEL_SERVERS}
        images, classes = openloop.test_images(root), specs.load(root).num_classes
        results = {}
        with memory.Sampler(pids) as sampler, generator_on(pin and pin["generator"]):
            for target in target_names:
                print(f"  {target}:", flush=True)
                make = openloop.predictor_factory(target, variant, endpoints)
                # Warm-up: the JIT, connections, the first batches.
                openloop.run(make, images, classes, bounds.start, seconds, threads)
                results[target] = find_capacity(
                    lambda rate, make=make: openloop.run(make, images, classes, rate, seconds, threads, servers=pids),
                    bounds, retries=retries, cores=len(pin["servers"]) if pin else None)
                print(f"  {target}: {describe(results[target])}", flush=True)
    finally:
        runner.stop(variant)
    usage = sampler.result()
    return {"server_settings": settings.to_dict(), "targets": results, "pin": pin,
            "servers": {server: {"cold_start_s": round(cold[server], 2), **usage[server]}
                        for server in servers.MODEL_SERVERS}}


def in_process_rates(root: Path, seconds: float) -> dict:
    """Sequential batch-1 calls per second of each framework's model without a server (benchmarks/one_client.py)."""
    from benchmarks import one_client

    images = openloop.test_images(root)
    rates = {}
    for name in registry.IN_PROCESS.values():
        print(f"  in-process {name} for {seconds:g} s", flush=True)
        predictor = registry.load(name, root=root)
        figures = one_client.measure(predictor, images[:1], seconds, warmup=20)
        rates[predictor.framework] = {"target": name, "calls_per_s": round(figures["calls_per_s"], 1),
                                      "p50_ms": round(figures["p50_ms"], 4), "p99_ms": round(figures["p99_ms"], 4)}
    return rates


def summarize(by_mode: dict, targets: list[str], settings: list[str]) -> tuple[str, dict]:
    """(the headline mode, per endpoint: capacity at the better setting of that mode, and every mode's limits)."""
    main = "unpinned" if "unpinned" in by_mode else next(iter(by_mode))
    endpoints = {}
    for target in targets:
        runs = {mode: {name: {k: v for k, v in by_setting[name]["targets"][target].items() if k != "steps"}
                       for name in settings} for mode, by_setting in by_mode.items()}
        capacities = {name: entry["capacity_rps"] for name, entry in runs[main].items()}
        best = max(capacities, key=lambda name: (capacities[name], name == "default"))
        endpoints[target] = {"capacity_rps": capacities[best], "goodput_rps": capacities[best],
                             "rps_per_core": runs[main][best]["rps_per_core"], "setting": best,
                             "by_setting": capacities,
                             "framework": registry.TARGETS[target].framework, "pinning": main,
                             "generator_limited": runs[main][best]["generator_limited"], "by_mode": runs}
    return main, endpoints


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each rate step, seconds (default: 3)")
    add_bounds_arguments(parser, start=10.0, maximum=3000.0)
    parser.add_argument("--threads", type=int, default=32, help="client threads of the load generator (default: 32)")
    parser.add_argument("--retries", type=int, default=1,
                        help="runs again of a failing step before stopping (default: 1)")
    parser.add_argument("--settings", nargs="+", default=list(settings_mod.PRESET_NAMES),
                        choices=settings_mod.PRESET_NAMES,
                        help="server settings to compare (default: default latency throughput)")
    parser.add_argument("--targets", nargs="+", default=registry.served(), choices=registry.served(),
                        help="served endpoints (default: every server target in core/registry.py)")
    parser.add_argument("--pin", choices=("off", "on", "both"), default="both",
                        help="generator and servers on separate cores: off, on, or both ways (default: both; "
                             "off on a single core)")
    parser.add_argument("--generator-cpus", type=int, default=1,
                        help="cores for the generator when pinned, the servers get the rest (default: 1)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    bounds = bounds_from(args)
    command = results_mod.command(__name__, argv)
    split = split_cores(args.generator_cpus)
    modes = {"off": ["unpinned"], "on": ["pinned"], "both": ["unpinned", "pinned"]}[args.pin]
    if split is None and "pinned" in modes:
        print("sweep: one core only: nothing to pin apart, running unpinned", flush=True)
        modes = ["unpinned"]
    started = time.monotonic()
    print(f"sweep: {len(args.targets)} endpoints x {len(args.settings)} settings x {' and '.join(modes)}, steps of "
          f"{args.seconds:g} s, {bounds.describe()}, objective p99 <= "
          f"{SLO_P99_MS:g} ms" + (f"; pinned: generator on cores {split['generator']}, servers on {split['servers']}"
                                  if "pinned" in modes else ""), flush=True)

    by_mode = {mode: {name: run_setting(root, name, args.targets, bounds, args.seconds, args.threads, args.retries,
                                        pin=split if mode == "pinned" else None)
                      for name in args.settings} for mode in modes}
    print("\nin-process rates (no server):", flush=True)
    in_process = in_process_rates(root, args.seconds)

    machine = machine_mod.describe()
    main_mode, endpoints = summarize(by_mode, args.targets, args.settings)
    by_setting = by_mode[main_mode]
    summary = {"command": command, "slo_p99_ms": SLO_P99_MS, "machine": machine, "step_seconds": args.seconds,
               "search": bounds.to_dict(),
               "tfserving": servers.tfserving(root, free_endpoints()).describe,
               "pinning": {"modes": modes, "headline": main_mode,
                           **({"generator_cpus": split["generator"], "server_cpus": split["servers"]}
                              if "pinned" in modes else {})},
               "generator_limits": {"cpu_share": openloop.GENERATOR_CPU_SHARE_LIMIT,
                                    "send_lag_p99_ms": openloop.SEND_LAG_LIMIT_MS},
               "endpoints": endpoints, "in_process": in_process,
               "servers": {name: result["servers"] for name, result in by_setting.items()},
               "servers_by_mode": {mode: {name: result["servers"] for name, result in runs.items()}
                                   for mode, runs in by_mode.items()},
               "server_settings": {name: result["server_settings"] for name, result in by_setting.items()}}
    for target in args.targets:
        per_mode = {mode: {name: {"server_settings": result["server_settings"], **result["targets"][target]}
                           for name, result in runs.items()} for mode, runs in by_mode.items()}
        per_target = {"target": target, "framework": registry.TARGETS[target].framework, "command": command,
                      "slo_p99_ms": SLO_P99_MS, "machine": machine, "pinning": main_mode,
                      "settings": per_mode[main_mode], "by_mode": per_mode}
        out_dir = results_mod.write(per_target, root, f"load-{target}").parent
        charts.latency_vs_load(per_target, out_dir / f"load-{target}.png")
    results_mod.write(summary, root, "load-capacity")

    columns = [(mode, name) for mode in modes for name in args.settings]
    print(f"\ngoodput, req/s (p99 <= {SLO_P99_MS:g} ms, every request answered; (gen): the generator was the limit)")
    print(f"{'endpoint':<18}" + "".join(f"{f'{name} {mode}':>20}" for mode, name in columns) + f"{'best':>10}"
          + f"{'per core':>10}")
    for target, entry in endpoints.items():
        cells = []
        for mode, name in columns:
            run = entry["by_mode"][mode][name]
            cells.append(f"{run['capacity_rps']:g}" + (" (gen)" if run["generator_limited"] else ""))
        print(f"{target:<18}" + "".join(f"{cell:>20}" for cell in cells) + f"{entry['setting']:>10}"
              + f"{entry['rps_per_core']:>10g}")
    print("generator CPU at the lowest failing step (cores used / share of its cores), servers' CPU (cores):")
    for target, entry in endpoints.items():
        for mode, name in columns:
            run = entry["by_mode"][mode][name]
            print(f"  {target:<16} {name:<8} {mode:<9} generator {run['generator_cpu_cores']} / "
                  f"{run['generator_cpu_share']}, servers {run['servers_cpu_cores']}")
    for framework, entry in in_process.items():
        print(f"in-process {framework:<11}{entry['calls_per_s']:>12.1f} calls/s (one thread, batch 1)")
    print(f"\nwrote {results_mod.bench_dir(root)}/load-*.json, load-*.png and load-capacity.json in "
          f"{time.monotonic() - started:.0f} s ({command})")
    return summary
