"""Turn the measured JSON results into REPORT.md with PNG charts: the common claims, tested here.

    make report                                      # = python -m benchmarks report
    python -m benchmarks report --artifacts /tmp/x/artifacts --out /tmp/x/REPORT.md

Reads, from <artifacts>: metrics.json (make train), manifest.json (make export), and under bench/:
edge.json (make bench-edge), serving.json (make bench-serving), web.json (make bench-web),
load-capacity.json and load-<endpoint>.json (make loadtest-sweep), scale.json (make bench TOOL=scale),
burst.json and burst.png (make bench TOOL=burst),
widths.json (make bench TOOL=widths), training.json (make bench TOOL=training),
distributed.json (make bench TOOL=distributed),
handwriting.json (make bench TOOL=handwriting), faults.json (make bench TOOL=faults).
An input that is missing makes its section say "not measured: run <command>"; nothing else stops
the report. Charts go to report/ next to REPORT.md. Nothing is measured here.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import machine as machine_mod
from benchmarks.report.claims import section_claims
from benchmarks.report.cost import section_compilation, section_distributed, section_training_cost, section_widths
from benchmarks.report.edge import section_edge
from benchmarks.report.faults import section_faults
from benchmarks.report.figures import SOURCES, load_inputs, server_latency, server_memory, table
from benchmarks.report.handwriting import section_handwriting
from benchmarks.report.load import section_burst, section_capacity
from benchmarks.report.scale import section_scale
from benchmarks.report.search import section_search
from benchmarks.report.servers import section_servers
from benchmarks.report.targets import section_latency, section_memory_and_cold, section_sizes, section_training
from core import paths, registry


def headline(inputs) -> str:
    """One row per served endpoint: latency, capacity, memory of its server."""
    latency, load = server_latency(inputs), inputs["load"]
    memory = server_memory(inputs)
    rows = []
    for target in registry.served():
        p50 = latency.get(target, (None,))[0]
        capacity = load["endpoints"].get(target, {}) if load else {}
        server = registry.TARGETS[target].server
        # memory and cold start of the server at the settings its capacity was measured with
        figures = (server_memory(inputs, capacity["setting"]) if capacity else memory).get(server) or {}
        rows.append([target, p50, capacity.get("capacity_rps"), capacity.get("setting"),
                     figures.get("peak_mb"), figures.get("cold_start_s")])
    return table(["endpoint", "p50 ms (1 client)", "capacity req/s", "at settings", "server peak RSS MiB",
                  "cold start s"], rows)


CAVEATS = """## What these figures do not show

- **TF Serving is the project's compatible server** (serving/tfserving/compat_server.py: Python, gRPC and REST
  over the same SavedModel, merging requests into batches as TF Serving does with `--enable_batching`) unless
  `tensorflow_model_server` was on PATH; the C++ server cannot be installed on this machine. Its memory, cold
  start and capacity are that server's, not the binary's.
- The load generator, the servers and other work share the same 2 cores: a server's capacity here includes
  the cost of the client next to it. Latency is measured from each request's scheduled send time (open loop),
  so queueing shows up in p99 rather than being hidden by a slower client.
- Arrivals are drawn reproducibly (one seed per offered rate, the same for every endpoint), so a step's number
  of requests, and its achieved rate, can differ from rate x seconds by Poisson noise; achieved = good answers
  per second over the step.
- With the compatible server, TF Serving's batching on/off changes only the largest batch it accepts (it does not
  merge requests), so the difference between its two settings is this run's noise: a yardstick for the others.
- PyTorch's default of one intra-op thread per core is the likely reason its figures suffer most when other
  processes compete for the cores (training time, in-process p99, TorchServe with default settings); the
  settings search tries one thread per worker (`OMP_NUM_THREADS=1`) on its own and with two workers.
- Training cost and distributed training are wall-clock times of processes that share the machine with everything
  else running on it: peak RSS does not depend on that load, epoch times do. Two workers on a 2-core machine share
  the cores one worker had, so the scaling efficiency there is the engines' overhead, never a speed-up.
- torch.compile's first call and first epoch include building C++ with g++ unless inductor's on-disk cache
  (`/tmp/torchinductor_<user>`) already holds the kernels from an earlier run.
- One run: no confidence intervals. Rerun `make bench-all` on a quiet machine before quoting an absolute number.
"""


def build(root: Path, out_md: Path) -> str:
    inputs = load_inputs(root)
    charts_dir = out_md.parent / "report"
    charts_dir.mkdir(parents=True, exist_ok=True)
    machine = (inputs["load"] or {}).get("machine") or machine_mod.describe()
    parts = [
        "# digits-everywhere: PyTorch and TensorFlow deployment, measured\n\n",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `make report` from the JSON results under "
        "`artifacts/` (`make bench-all` measures them all). Machine: "
        f"{machine.get('platform')}, {machine.get('processor')}, {machine.get('cpus', '?')} CPU cores, no GPU. "
        f"**Every figure comes from one run on this {machine.get('cpus', '?')}-core machine, where the load generator "
        "shares the cores with the servers: absolute numbers vary between runs; the ratios of figures measured side by "
        "side in the same run are the point.**\n\n",
        "## Headline\n\n", headline(inputs), "\n", section_claims(inputs), "\n",
        section_training(inputs, charts_dir), "\n", section_handwriting(inputs), "\n",
        section_sizes(inputs, charts_dir), "\n",
        section_latency(inputs, charts_dir), "\n", section_edge(inputs, charts_dir), "\n",
        section_memory_and_cold(inputs, charts_dir), "\n", section_servers(inputs), "\n",
        section_search(inputs, charts_dir), "\n",
        section_capacity(inputs, charts_dir, root), "\n", section_scale(inputs), "\n",
        section_burst(inputs, charts_dir, root), "\n",
        section_faults(inputs), "\n",
        section_widths(inputs, charts_dir), "\n", section_compilation(inputs, charts_dir), "\n",
        section_training_cost(inputs, charts_dir), "\n", section_distributed(inputs, charts_dir), "\n", CAVEATS,
    ]
    text = "".join(parts)
    out_md.write_text(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--out", type=Path, default=paths.REPO_ROOT / "REPORT.md",
                        help="the report to write (default: REPORT.md at the repo root)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    print(f"report: reading {root}", flush=True)
    build(root, args.out)
    absent = [f"{SOURCES[key][0]} ({SOURCES[key][1]})" for key, value in load_inputs(root).items() if value is None]
    print(f"wrote {args.out} and {args.out.parent / 'report'}/*.png"
          + (f"; not measured: {', '.join(absent)}" if absent else ""))
