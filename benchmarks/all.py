"""Every measurement the report needs, one after the other, then the report (`make bench-all`).

    make bench-all                         # = python -m benchmarks all
    python -m benchmarks all --skip widths --sweep-args "--seconds 2"

Steps: the build graph (deploy/local/build.py: train and export what is missing or stale); bench-edge;
the serving benchmark against servers started for it on free ports (in their own run folder, so a
`make serve` already running is left alone); 64 requests in flight on the TF server and TorchServe,
the default, latency and throughput profiles, by the native generator (benchmarks/concurrent.py: `make
setup` installs it); where KServe's latency goes (`kserve-breakdown`); where TorchServe's goes and
what can be cut (`torchserve-breakdown`); bench-web; the settings search (benchmarks/search.py: every
grid point, for the report; it does NOT rewrite deploy/local/profiles.json: `make tune` does, and
the sweep measures the committed profiles, so two runs compare the same settings); the capacity
sweep (default vs the latency and throughput profiles, pinned and unpinned); the burst (16..1,000
connections at once); the width sweep; the training cost (`training`); data-parallel training at 1 and 2
workers (`distributed`); drawn and printed digits with and without augmentation (`handwriting`);
the fault-injection tests with their counts (`faults`); `make report`.
Each step runs as its own process, prints its progress, and a failed step is named at the end
while the others still run (the report then says which figures are missing). Takes about
60-80 minutes on a 2-core machine (the search: 15-20 of them).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import tools
from core import paths

STEPS = ("build", "edge", "serving", "concurrent", "kserve", "torchserve", "web", "search", "sweep", "scale", "burst",
         "widths", "training", "distributed", "handwriting", "faults", "report")


def run(command: list[str], env: dict | None = None) -> None:
    print("$ " + shlex.join(command[2:] if command[0] == sys.executable else command), flush=True)
    subprocess.run(command, check=True, cwd=paths.REPO_ROOT, env={**os.environ, **(env or {})})


def step_build(root: Path, args) -> None:
    """Train and export what is missing or stale (the same graph `make deploy-all` runs)."""
    run([sys.executable, "-m", "deploy.local.build", "--artifacts", str(root)])


def step_edge(root: Path, args) -> None:
    run(tools.argv("edge"), env={"DIGITS_ARTIFACTS": str(root)})


def step_serving(root: Path, args) -> None:
    """The one-client benchmark (one_client.py) against servers of our own on free ports; its JSON: <root>/bench/."""
    from benchmarks import variants
    from deploy.local import runner
    from serving.endpoints import free_endpoints

    variant = variants.prepare(root, "bench")
    endpoints = free_endpoints()
    runner.stop(variant)  # servers left by an interrupted run would answer on other ports
    runner.start(variant, endpoints, timeout=300)
    try:
        run(tools.argv("serving"), env={"DIGITS_ARTIFACTS": str(variant), **endpoints.as_environment()})
    finally:
        runner.stop(variant)
    (root / "bench").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(variant / "bench" / "serving.json", root / "bench" / "serving.json")


def step_concurrent(root: Path, args) -> None:
    """64 requests in flight: the default, latency and throughput profiles, by the native generator (own servers)."""
    run(tools.argv("concurrent", "--artifacts", str(root)))


def step_torchserve(root: Path, args) -> None:
    """Where TorchServe's latency goes, and what can be cut (benchmarks/torchserve_breakdown.py: its own servers)."""
    run(tools.argv("torchserve-breakdown", "--artifacts", str(root)))


def step_kserve(root: Path, args) -> None:
    """Where KServe's V2 REST latency goes (benchmarks/kserve_breakdown.py: its own servers on free ports)."""
    run([str(paths.REPO_ROOT / ".venv-kserve" / "bin" / "python"), "-m", "benchmarks", "kserve-breakdown"],
        env={"DIGITS_ARTIFACTS": str(root)})


def step_web(root: Path, args) -> None:
    run(tools.argv("web", "--artifacts", str(root)))


def step_search(root: Path, args) -> None:
    run(tools.argv("search", "--artifacts", str(root), *shlex.split(args.search_args)))


def step_sweep(root: Path, args) -> None:
    run(tools.argv("sweep", "--artifacts", str(root), *shlex.split(args.sweep_args)))


def step_scale(root: Path, args) -> None:
    run(tools.argv("scale", "--artifacts", str(root)))


def step_burst(root: Path, args) -> None:
    run(tools.argv("burst", "--artifacts", str(root), *shlex.split(args.burst_args)))


def step_widths(root: Path, args) -> None:
    run(tools.argv("widths", "--artifacts", str(root), *shlex.split(args.width_args)))


def step_training(root: Path, args) -> None:
    run(tools.argv("training", "--artifacts", str(root)))


def step_distributed(root: Path, args) -> None:
    run(tools.argv("distributed", "--artifacts", str(root)))


def step_handwriting(root: Path, args) -> None:
    run(tools.argv("handwriting", "--artifacts", str(root)))


def step_faults(root: Path, args) -> None:
    """The fault-injection tests (benchmarks/faults.py); each builds and starts what it needs of its own."""
    run(tools.argv("faults", "--artifacts", str(root)))


def step_report(root: Path, args) -> None:
    run(tools.argv("report", "--artifacts", str(root)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS, help="steps to leave out")
    # 2 s steps: the sweep runs its search twice (generator and servers pinned apart, and not).
    parser.add_argument("--sweep-args", default="--seconds 2",
                        help="flags for benchmarks.sweep (default: \"--seconds 2\")")
    parser.add_argument("--search-args", default="", help="flags for benchmarks.search, e.g. \"--grid full\"")
    parser.add_argument("--burst-args", default="", help="flags for benchmarks.burst, e.g. \"--connections 64 256\"")
    parser.add_argument("--width-args", default="", help="flags for benchmarks.widths, e.g. \"--widths 1 8\"")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    steps = [name for name in STEPS if name not in args.skip]
    failed, times, started = [], {}, time.monotonic()
    for number, name in enumerate(steps, 1):
        print(f"\n==== bench-all [{number}/{len(steps)}] {name}", flush=True)
        begin = time.monotonic()
        try:
            globals()[f"step_{name}"](root, args)
        except (subprocess.CalledProcessError, Exception) as error:
            print(f"==== {name} failed: {error}", flush=True)
            failed.append(name)
        times[name] = round(time.monotonic() - begin, 1)
        print(f"==== {name}: {times[name]:.0f} s", flush=True)
    print(f"\nbench-all: {time.monotonic() - started:.0f} s; seconds per step {json.dumps(times)}")
    if failed:
        raise SystemExit(f"bench-all: these steps failed: {', '.join(failed)} "
                         "(their report sections say 'not measured')")
