"""Latency and throughput of each served endpoint and of in-process inference, side by side.

    python -m benchmarks serving                      # needs `make serve`; 3 s per target, batch 1
    python -m benchmarks serving --seconds 5 --batch 8

Each target is a Predictor: TorchServe REST and gRPC, TF Serving gRPC and REST, and the same
models in-process (PyTorch checkpoint, SavedModel signature). Calls are sequential from one
client thread, so latency is per call and throughput is calls (and images) per second of one
client; timing and percentiles: benchmarks/timing.py. Writes artifacts/bench/serving.json
(benchmarks/results.py) and prints a table. Numbers on a shared 2-core
machine are noisy: compare them side by side, not across runs.
"""
from __future__ import annotations

import argparse

import numpy as np

from benchmarks import machine, results, timing
from core import paths
from training import data


def targets(root):
    from core import registry

    return [registry.load(name, root=root) for name in (*registry.served(), *registry.IN_PROCESS.values())]


def measure(predictor, batch: np.ndarray, seconds: float, warmup: int) -> dict:
    """Sequential calls of `predictor` on `batch` for about `seconds` (benchmarks/timing.py): latency and rate."""
    samples, elapsed = timing.time_for(lambda: predictor.predict(batch), seconds, warmup=warmup)
    return {"target": predictor.name, "framework": predictor.framework, "calls": len(samples),
            **timing.summarize(samples, "ms", digits=4),
            "calls_per_s": round(len(samples) / elapsed, 2),
            "images_per_s": round(len(samples) * len(batch) / elapsed, 2)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured run per target, seconds (default: 3)")
    parser.add_argument("--batch", type=int, default=1, help="images per call (default: 1)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured calls first (default: 20)")
    args = parser.parse_args(argv)
    root = paths.artifacts_dir()
    test = data.load_split(paths.split_path(root))["test"]
    batch = test.x[: args.batch]

    rows = []
    for predictor in targets(root):
        print(f"bench: {predictor.name} for {args.seconds:g} s ...", flush=True)
        rows.append(measure(predictor, batch, args.seconds, args.warmup))

    report = {"command": results.command(__name__, argv),
              "batch": args.batch, "seconds_per_target": args.seconds, "client_threads": 1,
              "machine": machine.describe(), "results": rows}
    out = results.write(report, root, "serving")

    print(f"\n{'target':<22}{'p50 ms':>9}{'p99 ms':>9}{'calls/s':>10}{'images/s':>10}{'calls':>8}")
    for r in rows:
        print(f"{r['target']:<22}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['calls_per_s']:>10.1f}{r['images_per_s']:>10.1f}{r['calls']:>8}")
    print(f"\nbatch {args.batch}, one client thread, {args.seconds:g} s per target; written to {out}")
