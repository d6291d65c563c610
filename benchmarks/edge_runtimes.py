"""Latency and file size of every edge artifact, with eager PyTorch and Keras and their compiled graphs.

    make bench-edge                                   # = python -m benchmarks edge
    python -m benchmarks edge --iterations 500 --warmup 50
    python -m benchmarks edge --targets tflite-fp32 tflite-int8   # some targets only

One process measures everything, on the same inputs (test-split images), one after the other, at
batch 1 and at batch 32, with the project's one timer (benchmarks/timing.py: `--warmup` untimed
calls, then `--iterations` timed ones, nearest-rank percentiles):

  runner   the runner's `predict`: the input check (core/contract.py), conversions, copying the
           input in and the answer out, around the runtime's call: what a caller of the runner pays;
  runtime  for an edge artifact, the runtime's own call alone, the input already in place (the
           runner's `prepare(batch)`, edge/common.py RuntimeCall): TFLite `invoke()`, ONNX Runtime
           `session.run` on the prepared feed, ExecuTorch `execute` on the prepared inputs;
  ratio    runner p50 / runtime p50: what the runner adds, as a multiple of the runtime.

The eager and compiled references have no runtime call apart from their `predict` (the framework's
call is the predict, with the same input check): one figure, `runtime` null. The first `predict`
of each batch size is timed on its own (`first_call_us`): for the compiled targets (torch.compile,
tf.function, XLA) it is the compile, kept apart from the warm latency; inductor's on-disk cache
(/tmp/torchinductor_<user>) shortens it on later runs. Latency is per call (per batch), in
microseconds. Every runtime is held to one thread, so the numbers compare the runtimes rather
than the machine's core count. Writes `artifacts/bench/edge.json` and prints a table. A benchmark,
not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from benchmarks import machine, results, timing
from benchmarks.report.edge import beside_twins
from core import manifest, paths, registry
from training import data

BATCHES = (1, 32)
THREADS = 1
DIGITS = 1  # decimals of a microsecond kept in the JSON


def limit_threads() -> None:
    """One thread for every framework that lets us choose (before any of them starts working)."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(THREADS)
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)


def measure(predictor, batch, warmup: int, iterations: int) -> dict:
    """One batch size of one target: the runner's figures (p50/p99/... and `first_call_us`), and, where the
    runner can set the batch up apart (`prepare`), the runtime's own call (`runtime`) and the ratio."""
    first, samples = timing.time_calls(lambda: predictor.predict(batch), iterations, warmup)
    row = {**timing.summarize(samples, unit="us", digits=DIGITS), "first_call_us": round(first * 1e6, DIGITS),
           "runtime": None, "runner_over_runtime": None}
    prepare = getattr(predictor, "prepare", None)
    if prepare is not None:
        call = prepare(batch)
        _, samples = timing.time_calls(call.run, iterations, warmup)
        row["runtime"] = timing.summarize(samples, unit="us", digits=DIGITS)
        if row["runtime"]["p50_us"]:
            row["runner_over_runtime"] = round(row["p50_us"] / row["runtime"]["p50_us"], 2)
    return row


KINDS = ("reference", "compiled", "edge")  # what this benchmark measures, in this order


def names() -> list[str]:
    return [name for kind in KINDS for name in registry.names(kind)]


def targets(root: Path, chosen: list[str] | None = None):
    """(manifest id, predictor factory) of every target built (the eager references, their compiled graphs,
    every edge artifact), or of those `chosen`."""
    built = manifest.load(root)
    for name in names():
        artifact_id = registry.TARGETS[name].artifact
        if artifact_id in built and (chosen is None or name in chosen):
            yield artifact_id, lambda name=name: registry.load(name, root)


def run(root: Path, warmup: int, iterations: int, chosen: list[str] | None = None) -> list[dict]:
    test = data.load_split(paths.split_path(root))["test"]
    inputs = {size: test.x[:size] for size in BATCHES}
    entries = manifest.load(root)
    rows = []
    for artifact_id, make in tqdm(list(targets(root, chosen)), desc="bench", unit="target"):
        predictor = make()
        row = {"name": predictor.name, "artifact": artifact_id, "framework": predictor.framework,
               "precision": predictor.precision, "kind": registry.TARGETS[predictor.name].kind,
               "bytes": entries[artifact_id]["bytes"],
               "measures": "runner and runtime" if hasattr(predictor, "prepare") else "runner (runtime == runner)"}
        for size, batch in inputs.items():
            row[f"batch_{size}"] = measure(predictor, batch, warmup, iterations)
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    def cells(figures: dict) -> str:
        runtime = figures["runtime"]["p50_us"] if figures.get("runtime") else None
        ratio = figures.get("runner_over_runtime")
        return (f"{figures['p50_us']:>12,.1f}{figures['p99_us']:>12,.1f}"
                + (f"{runtime:>12,.1f}" if runtime is not None else f"{'-':>12}")
                + (f"{ratio:>8.2f}x" if ratio is not None else f"{'-':>9}"))

    header = f"{'target':<26}{'prec':<6}{'bytes':>9}" + "".join(
        f"{f'b{size} p50 us':>12}{f'b{size} p99 us':>12}{f'b{size} rt p50':>12}{'ratio':>9}" for size in BATCHES
    ) + f"{'b1 first ms':>13}"
    lines = [header, "-" * len(header)]
    for row in rows:
        first = row["batch_1"]["first_call_us"] / 1e3
        lines.append(f"{row['name']:<26}{row['precision']:<6}{row['bytes']:>9,}"
                     + "".join(cells(row[f"batch_{size}"]) for size in BATCHES) + f"{first:>13,.1f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300,
                        help="timed calls per target and batch size (default: 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default: 30)")
    parser.add_argument("--targets", nargs="+", choices=names(), metavar="TARGET",
                        help=f"only these (default: every one built): {', '.join(names())}")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    root = paths.artifacts_dir()
    limit_threads()
    rows = run(root, args.warmup, args.iterations, args.targets)
    report = {
        "command": results.command(__name__, argv),
        "machine": machine.describe(),
        "threads": THREADS, "warmup": args.warmup, "iterations": args.iterations, "batches": list(BATCHES),
        "latency": "per call (one batch), microseconds, nearest-rank percentiles (benchmarks/timing.py). "
                   "batch_<n>: the runner's predict (input check, conversions, copies and the runtime's call); "
                   "first_call_us: the first predict of that batch size (the compile, for the compiled targets); "
                   "runtime: the runtime's own call alone with the input already in place (edge artifacts; null "
                   "for the eager and compiled references, where runtime == runner); runner_over_runtime: the "
                   "ratio of the two p50s",
        "results": rows,
    }
    out = results.write(report, root, "edge")
    print(f"\n{table(beside_twins(rows))}\n\n(rt p50: the runtime's own call alone; ratio: runner p50 / rt p50)\n"
          f"wrote {out} ({report['command']}, {args.iterations} timed calls each)")
    return report
