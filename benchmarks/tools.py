"""The measuring tools, one row each: the name `python -m benchmarks <name>` takes, its module, one line.

    python -m benchmarks --help                  # every tool with its line
    python -m benchmarks sweep --seconds 3       # = the `sweep` row's module, main(["--seconds", "3"])

The make targets, `make bench-all` (all.py) and every result's `command` (results.py) name tools by these rows.
"""
from __future__ import annotations

import importlib
import sys
from typing import NamedTuple


class Tool(NamedTuple):
    module: str
    line: str


TOOLS = {
    # One target at a time, in-process or against running servers.
    "edge": Tool("benchmarks.edge_runtimes", "edge artifacts' latency (runtime, runner) and size, eager and compiled"),
    "web": Tool("benchmarks.browser", "the page's runtimes in Chromium: cold start, warm latency, weight"),
    "serving": Tool("benchmarks.one_client", "one client's latency on every served endpoint and in-process"),
    "widths": Tool("benchmarks.widths", "latency of every target at width 1, 2, 4, 8"),
    # Load: the open-loop engine, Locust and the native generator, and what drives them.
    "openloop": Tool("benchmarks.openloop", "the load engine: Poisson arrivals at a rate on one endpoint"),
    "locust": Tool("benchmarks.locust.run", "Locust's closed-loop users on one endpoint, headless"),
    "native": Tool("benchmarks.native", "NVIDIA perf_analyzer: many requests in flight on TF Serving's gRPC (--check)"),
    "concurrent": Tool("benchmarks.concurrent", "many requests in flight per server setting, by perf_analyzer"),
    "sweep": Tool("benchmarks.sweep", "capacity (p99 <= 50 ms) of every endpoint, per profile, pinned or not"),
    "search": Tool("benchmarks.search", "the settings search: a grid per server, the latency and throughput profiles"),
    "scale": Tool("benchmarks.scale", "Ray Serve at 1, 2, 4 replicas, batching on/off, beside KServe, TorchServe"),
    "burst": Tool("benchmarks.burst", "16..1,000 connections at once on every endpoint: answered, refused, dropped"),
    "flood": Tool("benchmarks.flood", "half-sent connections on one port: what the server does with them"),
    "soak": Tool("benchmarks.soak", "every endpoint at half its capacity for 10 minutes: errors, memory growth"),
    # Where a server's latency goes.
    "torchserve-breakdown": Tool("benchmarks.torchserve_breakdown", "where TorchServe's latency goes"),
    "kserve-breakdown": Tool("benchmarks.kserve_breakdown", "where KServe's latency goes (in .venv-kserve)"),
    "kserve-floor": Tool("benchmarks.kserve_floor", "the bare ASGI server the KServe breakdown measures against"),
    # Training.
    "training": Tool("benchmarks.training", "peak RSS and time per epoch of training, per framework, width and mode"),
    "distributed": Tool("benchmarks.distributed", "data-parallel training at 1 and 2 workers: s/epoch, scaling"),
    "handwriting": Tool("benchmarks.handwriting", "held-out drawn and printed digits, with and without augmentation"),
    "faults": Tool("benchmarks.faults", "the fault tests and heavy batteries in full, each fault's counts"),
    # Everything, and the report.
    "all": Tool("benchmarks.all", "every measurement the report needs, servers on free ports, then the report"),
    "report": Tool("benchmarks.report.layout", "REPORT.md and report/*.png from the JSON results"),
}


def name_of(module: str) -> str:
    """The tool whose row names `module`."""
    return next(name for name, tool in TOOLS.items() if tool.module == module)


def argv(name: str, *args: str) -> list[str]:
    """The command line that runs tool `name` in this Python (for subprocesses)."""
    return [sys.executable, "-m", "benchmarks", name, *args]


def usage() -> str:
    width = max(map(len, TOOLS))
    return ("usage: python -m benchmarks <tool> [args]   (python -m benchmarks <tool> --help: its flags)\n\ntools:\n"
            + "".join(f"  {name:<{width}}  {tool.line}\n" for name, tool in TOOLS.items()))


def main(args: list[str] | None = None) -> int | None:
    args = sys.argv[1:] if args is None else args
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in TOOLS:
        print(f"benchmarks: no tool {name!r}\n\n{usage()}", end="", file=sys.stderr)
        return 2
    # argparse names the program from argv[0]; the tool reads its flags from `rest`.
    sys.argv = [f"python -m benchmarks {name}", *rest]
    return importlib.import_module(TOOLS[name].module).main(rest)
