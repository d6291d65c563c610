"""Latency and file size of every edge artifact, with eager PyTorch and Keras and their compiled graphs.

    make bench-edge                                   # = python -m edge.bench
    python -m edge.bench --iterations 500 --warmup 50

One process measures everything, on the same inputs (test-split images), one after the other:
for each target, `--warmup` untimed calls, then `--iterations` timed calls of `predict` at batch 1
and at batch 32. The first call of each batch size is timed on its own (`first_call_us`): for the
compiled targets (torch.compile, tf.function, XLA) it is the compile, kept apart from the warm
latency; inductor's on-disk cache (/tmp/torchinductor_<user>) shortens it on later runs.
Latency is per call (per batch), p50 and p99, in microseconds, and includes the runner's input
check (the same for every target). Every runtime is held to one thread, so the
numbers compare the runtimes rather than the machine's core count. Writes
`artifacts/bench/edge.json` and prints a table. A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks import machine
from core import registry
from training import data, manifest, paths

BATCHES = (1, 32)
THREADS = 1


def limit_threads() -> None:
    """One thread for every framework that lets us choose (before any of them starts working)."""
    import tensorflow as tf
    import torch

    torch.set_num_threads(THREADS)
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)


def time_calls(predictor, batch: np.ndarray, warmup: int, iterations: int) -> dict:
    """The first call alone, then p50 / p99 of `iterations` timed `predict` calls on one batch, in microseconds."""
    start = time.perf_counter_ns()
    predictor.predict(batch)  # a compiled target compiles (or retraces) here
    first = (time.perf_counter_ns() - start) / 1e3
    for _ in range(warmup):
        predictor.predict(batch)
    times = np.empty(iterations)
    for i in range(iterations):
        start = time.perf_counter_ns()
        predictor.predict(batch)
        times[i] = (time.perf_counter_ns() - start) / 1e3
    return {"p50_us": round(float(np.percentile(times, 50)), 1), "p99_us": round(float(np.percentile(times, 99)), 1),
            "first_call_us": round(first, 1)}


def targets(root: Path):
    """(manifest id, predictor factory) for the eager references, their compiled graphs and every edge artifact built."""
    built = manifest.load(root)
    for name in (*registry.names("reference"), *registry.names("compiled"), *registry.names("edge")):
        artifact_id = registry.TARGETS[name].artifact
        if artifact_id in built:
            yield artifact_id, lambda name=name: registry.load(name, root)


def run(root: Path, warmup: int, iterations: int) -> list[dict]:
    test = data.load_split(paths.split_path(root))["test"]
    inputs = {size: test.x[:size] for size in BATCHES}
    entries = manifest.load(root)
    results = []
    for artifact_id, make in tqdm(list(targets(root)), desc="bench", unit="target"):
        predictor = make()
        row = {"name": predictor.name, "artifact": artifact_id, "framework": predictor.framework,
               "precision": predictor.precision, "bytes": entries[artifact_id]["bytes"]}
        for size, batch in inputs.items():
            row[f"batch_{size}"] = time_calls(predictor, batch, warmup, iterations)
        results.append(row)
    return results


def table(results: list[dict]) -> str:
    header = f"{'target':<26}{'framework':<12}{'prec':<6}{'bytes':>9}" + "".join(
        f"{f'b{size} p50 us':>13}{f'b{size} p99 us':>13}" for size in BATCHES) + f"{'b1 first ms':>13}"
    lines = [header, "-" * len(header)]
    for row in results:
        cells = "".join(f"{row[f'batch_{size}']['p50_us']:>13,.1f}{row[f'batch_{size}']['p99_us']:>13,.1f}" for size in BATCHES)
        first = row["batch_1"]["first_call_us"] / 1e3
        lines.append(f"{row['name']:<26}{row['framework']:<12}{row['precision']:<6}{row['bytes']:>9,}{cells}"
                     f"{first:>13,.1f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300, help="timed calls per target and batch size (default: 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (default: 30)")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    root = paths.artifacts_dir()
    limit_threads()
    results = run(root, args.warmup, args.iterations)
    report = {
        "command": "python -m edge.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine.describe(),
        "threads": THREADS, "warmup": args.warmup, "iterations": args.iterations,
        "latency": "per predict call (one batch), microseconds; first_call_us: the first call of that batch size "
                   "(the compile, for the compiled targets)", "results": results,
    }
    out = root / "bench" / "edge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{table(results)}\n\nwrote {out} ({report['command'].strip()}, {args.iterations} timed calls each)")
    return report


if __name__ == "__main__":
    main()
