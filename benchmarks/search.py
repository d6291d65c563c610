"""The settings search: a grid of server settings per server, each point measured, two profiles picked.

    make tune                                                   # = python -m benchmarks search (small grid)
    python -m benchmarks search --servers torchserve --grid full
    python -m benchmarks search --points default b1           # only these grid points (the tests: two)
    python -m benchmarks search --write-profiles              # and rewrite deploy/local/profiles.json

In the spirit of Triton's Model Analyzer. The servers searched are the rows of core/servers.py that name
a grid. For every point of the grid (benchmarks/grid.py: the
checked-in "default" and the knobs each other point changes) it starts that one server with those
settings in its own variant root on free ports (deploy/local/runner.py, benchmarks/variants.py),
and measures, for each of the server's endpoints (core/registry.py):
  warm-up      --warmup-seconds of load at the search's first rate, not recorded
  one client   sequential calls for --latency-seconds (benchmarks/timing.py time_for + summarize)
  capacity     the goodput, as the capacity sweep finds it (benchmarks/sweep.py find_capacity:
               open loop, p99 <= 50 ms, zero errors; rates doubled until a step fails, then
               bisected to within --precision, 10%), in short steps
then stops it. The model each server runs is also timed in-process, without a server, in the same
run (core/registry.py IN_PROCESS). From the points it picks the "latency" and "throughput" profile
of each server by the rule in benchmarks/grid.py, and writes everything to
<artifacts>/bench/search.json (the report's "Settings search" section). With --write-profiles it
also rewrites deploy/local/profiles.json, the committed profiles `make serve PROFILE=...`, the
capacity sweep and the container configs use (then run `python -m deploy.containers.configs` and
commit both). A server left out with --servers keeps its committed profiles.

The small grid takes about 8-10 minutes per server on 2 cores; every line of progress says which
point of how many is running. The load generator shares the cores with the server: ratios of
points measured in the same run are the point, not the absolute figures.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks import grid, memory, openloop, results, sweep, timing, variants
from benchmarks import machine as machine_mod
from core import paths, registry
from core import servers as table
from core import spec as specs
from deploy.local import runner, servers
from deploy.local import settings as settings_mod
from serving.endpoints import free_endpoints


def searched() -> dict[str, str]:
    """Server -> the framework of the model it serves: every row of core/servers.py with a grid, in start order."""
    return {name: table.SERVERS[name].framework for name in table.searched()}


def endpoints_of(server: str) -> list[str]:
    """The served targets of `server` (its rows' `server=`), not every server of its framework."""
    return [name for name in registry.served() if registry.TARGETS[name].server == server]


def one_client(predictor, image, classes: int, seconds: float) -> dict:
    """p50/p99 of sequential calls of one client, batch 1 (the first answer checked, then timed)."""
    openloop.check_answer(predictor.predict(image), 1, classes)
    samples, elapsed = timing.time_for(lambda: predictor.predict(image), seconds, warmup=20)
    return {**timing.summarize(samples, "ms"), "calls_per_s": round(len(samples) / elapsed, 1)}


def measure_point(root: Path, server: str, point: dict, args, bounds: sweep.Bounds) -> dict:
    """Start `server` with the point's settings, measure each endpoint, stop it; the point with its figures."""
    settings = settings_mod.ServerSettings(name=point["name"]).merged(**point["settings"])
    variant = variants.prepare(root, f"search-{server}")
    endpoints = free_endpoints()
    images, classes = openloop.test_images(root), specs.load(root).num_classes
    runner.stop(variant)  # left over from an interrupted run
    result = {**point, "targets": {}}
    try:
        cold = runner.start(variant, endpoints, timeout=300, settings=settings, only=(server,))
        result["cold_start_s"] = round(cold[server], 2)
        pid = runner.read_pid(runner.run_dir(server, variant)).pid
        with memory.Sampler({server: pid}) as sampler:  # RSS of the server's process tree: idle, peak
            for target in endpoints_of(server):
                make = openloop.predictor_factory(target, variant, endpoints)
                try:
                    # Warm-up first (the JVM's JIT, connections, TensorFlow's first runs), unrecorded.
                    openloop.run(make, images, classes, bounds.start, args.warmup_seconds, args.threads)
                    predictor = make()
                    figures = {"one_client": one_client(predictor, images[:1], classes, args.latency_seconds)}
                    getattr(predictor, "close", lambda: None)()
                    def run_step(rate, make=make):
                        return openloop.run(make, images, classes, rate, args.step_seconds, args.threads)
                    figures.update(sweep.find_capacity(run_step, bounds, retries=args.retries))
                except Exception as error:  # a point that fails is a result: recorded and never chosen
                    figures = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
                result["targets"][target] = figures
                said = figures.get("error") or (f"one client p50 {figures['one_client']['p50_ms']} ms "
                                                f"p99 {figures['one_client']['p99_ms']} ms, {sweep.describe(figures)}")
                print(f"    {target}: {said}", flush=True)
        result["memory"] = sampler.result()[server]
    except (runner.StartError, servers.PrepareError, OSError) as error:
        result["error"] = str(error)[:2000]
        print(f"    did not start: {str(error).splitlines()[0]}", flush=True)
    finally:
        runner.stop(variant)
    return result


def in_process(root: Path, server: str, seconds: float) -> dict:
    """One client's p50/p99 of the model `server` runs, called in-process (no server), batch 1."""
    name = registry.IN_PROCESS[searched()[server]]
    predictor = registry.load(name, root=root)
    images, classes = openloop.test_images(root), specs.load(root).num_classes
    return {"target": name, **one_client(predictor, images[:1], classes, seconds)}


def search_server(root: Path, server: str, args, bounds: sweep.Bounds) -> dict:
    todo = grid.points(server, args.grid, args.points.get(server))
    print(f"\n== {server}: {len(todo)} points of the {args.grid} grid", flush=True)
    baseline = in_process(root, server, args.latency_seconds)
    print(f"  in-process {baseline['target']}: one client p50 {baseline['p50_ms']} ms", flush=True)
    measured, began = [], time.monotonic()
    for number, point in enumerate(todo, 1):
        elapsed = time.monotonic() - began
        eta = f", about {elapsed / (number - 1) * (len(todo) - number + 1):.0f} s to go" if number > 1 else ""
        print(f"  [{number}/{len(todo)}] {server} {point['name']}: {json.dumps(point['settings'])}{eta}", flush=True)
        measured.append(measure_point(root, server, point, args, bounds))
    chosen = grid.pick(measured) if any(grid.score(p) for p in measured) else {}
    return {"framework": searched()[server], "endpoints": endpoints_of(server), "grid": args.grid,
            "in_process": baseline, "points": measured, "profiles": chosen,
            "batches_requests": True,  # TorchServe, and TF Serving with --enable_batching (either binary)
            "seconds": round(time.monotonic() - began, 1)}


def profiles_from(result: dict, committed: dict) -> dict:
    """{profile: ServerSettings fields}: each searched server's chosen point, the committed ones for the rest."""
    profiles = {name: {field: value for field, value in settings_mod.ServerSettings().to_dict().items()
                       if field != "name"} for name in settings_mod.PROFILES}
    for server, fields in settings_mod.server_fields().items():
        for profile in settings_mod.PROFILES:
            searched = result["servers"].get(server, {})
            if searched.get("profiles"):
                point = next(p for p in searched["points"] if p["name"] == searched["profiles"][profile])
                source = {field: point["settings"].get(field, profiles[profile][field]) for field in fields}
            else:
                source = {field: committed.get(profile, {}).get(field, profiles[profile][field]) for field in fields}
            profiles[profile].update(source)
    return profiles


def write_profiles(result: dict, path: Path = settings_mod.PROFILES_FILE) -> Path:
    committed = json.loads(path.read_text()) if path.exists() else {"profiles": {}, "chosen": {}}
    chosen = {**committed.get("chosen", {}),
              **{server: entry["profiles"] for server, entry in result["servers"].items() if entry.get("profiles")}}
    out = {"about": "Written by `python -m benchmarks search --write-profiles` (deploy/local/settings.py reads it); "
                    "commit it together with `python -m deploy.containers.configs`'s output.",
           "command": result["command"], "measured_at": result["measured_at"], "machine": result["machine"],
           "rule": grid.rule(), "chosen": chosen, "profiles": profiles_from(result, committed.get("profiles", {}))}
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


def parse_points(values: list[str] | None) -> dict:
    """--points NAME or SERVER:NAME -> {server: [names]} (a bare name applies to every server)."""
    out: dict = {}
    for value in values or []:
        server, _, name = value.rpartition(":")
        for each in [server] if server else searched():
            out.setdefault(each, []).append(name)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", nargs="+", default=list(searched()), choices=list(searched()))
    parser.add_argument("--grid", default="small", choices=("small", "full"),
                        help="small: ~8 points per server, ~8-10 min on 2 cores; full: ~20 (default: small)")
    parser.add_argument("--points", nargs="+", metavar="[SERVER:]NAME", help="only these points of the grid")
    parser.add_argument("--latency-seconds", type=float, default=1.0,
                        help="one-client timing per endpoint (default: 1)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0,
                        help="unrecorded load at the first rate before measuring each endpoint (default: 3)")
    parser.add_argument("--step-seconds", type=float, default=1.5, help="length of each load step (default: 1.5)")
    sweep.add_bounds_arguments(parser, start=50.0, maximum=4000.0)
    parser.add_argument("--threads", type=int, default=32, help="client threads of the load generator (default: 32)")
    parser.add_argument("--retries", type=int, default=1, help="runs again of a failing step (default: 1)")
    parser.add_argument("--write-profiles", nargs="?", const=settings_mod.PROFILES_FILE, type=Path, metavar="PATH",
                        help="rewrite the profiles file "
                             f"(default path: {settings_mod.PROFILES_FILE.relative_to(paths.REPO_ROOT)})")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--out", type=Path, help="JSON result (default: <artifacts>/bench/search.json)")
    args = parser.parse_args(argv)
    args.points = parse_points(args.points)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    bounds = sweep.bounds_from(args)
    command = results.command(__name__, argv)
    started = time.monotonic()
    print(f"search: {', '.join(args.servers)}, {args.grid} grid; one client {args.latency_seconds:g} s per endpoint; "
          f"load steps of {args.step_seconds:g} s, {bounds.describe()}, objective p99 <= {sweep.SLO_P99_MS:g} ms",
          flush=True)
    result = {"command": command, "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": machine_mod.describe(), "slo_p99_ms": sweep.SLO_P99_MS, "rule": grid.rule(),
              "search": {**bounds.to_dict(), "step_seconds": args.step_seconds},
              "latency_seconds": args.latency_seconds,
              "tfserving": servers.tfserving(root, free_endpoints()).describe,
              "servers": {server: search_server(root, server, args, bounds) for server in args.servers}}
    result["seconds"] = round(time.monotonic() - started, 1)
    out = args.out or root / "bench" / "search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'server':<12}{'point':<24}{'p50 ms':>9}{'p99 ms':>9}{'capacity':>10}  profile")
    for server, entry in result["servers"].items():
        for point in entry["points"]:
            scored = grid.score(point)
            p99 = max((t["one_client"]["p99_ms"] for t in point["targets"].values() if "one_client" in t), default=None)
            tags = [name for name, chosen in entry["profiles"].items() if chosen == point["name"]]
            figures = f"{scored[0]:>9.3f}{p99:>9.3f}{scored[1]:>10g}" if scored else f"{'failed':>28}"
            print(f"{server:<12}{point['name']:<24}{figures}  {', '.join(tags)}")
        print(f"{server:<12}{'in-process ' + entry['in_process']['target']:<24}{entry['in_process']['p50_ms']:>9.3f}"
              f"{entry['in_process']['p99_ms']:>9.3f}")
    if args.write_profiles:
        print(f"wrote {write_profiles(result, args.write_profiles)} "
              "(commit it; then `python -m deploy.containers.configs`)")
    print(f"\nwrote {out} in {result['seconds']:.0f} s ({command})")
    return result
