"""Data-parallel training, measured: time per epoch, samples/s and scaling efficiency at 1 and 2 workers.

    make bench TOOL=distributed                             # = python -m benchmarks distributed
    python -m benchmarks distributed --workers 1 2 4 --epochs 5

Runs `make train-distributed` (training/distributed.py: PyTorch DDP under torchrun, TensorFlow
MultiWorkerMirroredStrategy) once per worker count, the full-length training by default (25
epochs), each into its own folder <artifacts>/distributed/w<N>/, and reads the epoch times and
test accuracy from its metrics.json. Per framework and worker count: the steady time per epoch
(median after the first, which includes start-up and tracing), samples/s (training examples per
epoch / that time), and the scaling efficiency against 1 worker: samples/s at N / (N x samples/s
at 1). All workers share this machine's cores (each gets cores / N threads), so on a 2-core
machine 2 workers measure the engines' overhead on the same cores, not what a second machine adds.
Writes <artifacts>/bench/distributed.json and prints a table. A benchmark: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import machine
from benchmarks import results as results_mod
from core import paths
from training import data

FRAMEWORKS = ("torch", "tensorflow")


def run(workers: int, epochs: int, root: Path) -> tuple[dict, float]:
    """One `training.distributed` run into `root`; its metrics.json and its wall time."""
    command = [sys.executable, "-m", "training.distributed", "--workers", str(workers), "--epochs", str(epochs),
               "--artifacts", str(root)]
    print("$ " + shlex.join(command[2:]), flush=True)
    began = time.monotonic()
    subprocess.run(command, cwd=paths.REPO_ROOT, check=True)
    return json.loads(paths.metrics_path(root).read_text()), time.monotonic() - began


def examples_per_epoch(root: Path) -> int:
    """The examples one epoch of that run passed over (the digits' default flags: augmented)."""
    from core import spec as core_spec
    from training import augment

    spec = core_spec.load(root)
    split = data.load_split(paths.split_path(root))["train"]
    return len(augment.training_examples(split, spec, augment=spec.reduction.get("kind") == "ink_blocks", seed=0))


def figures(metrics: dict, examples: int) -> dict:
    """Per framework: steady s/epoch, samples/s, first epoch, accuracy, training seconds."""
    out = {}
    for framework in FRAMEWORKS:
        seconds = metrics[framework]["epoch_seconds"]
        steady = float(np.median(seconds[1:] or seconds))
        out[framework] = {"steady_epoch_s": round(steady, 3), "samples_per_s": round(examples / steady, 1),
                          "first_epoch_s": seconds[0], "train_seconds": metrics[framework]["train_seconds"],
                          "test_accuracy": metrics[framework]["test_accuracy"]}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--epochs", type=int, default=25, help="epochs per run (default: 25, the full training)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    if min(args.workers) < 1 or args.epochs < 2:
        parser.error("--workers must be at least 1 and --epochs at least 2")
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    command = results_mod.command(__name__, argv)
    counts = sorted(set(args.workers))
    results, started = {}, time.monotonic()
    for number, workers in enumerate(counts, 1):
        print(f"\n==== [{number}/{len(counts)}] {workers} worker(s) per framework", flush=True)
        folder = root / "distributed" / f"w{workers}"
        metrics, wall = run(workers, args.epochs, folder)
        examples = examples_per_epoch(folder)
        results[str(workers)] = {"wall_s": round(wall, 1), "examples_per_epoch": examples,
                                 "global_batch": metrics["distributed"]["global_batch"],
                                 "learning_rate": metrics["distributed"]["learning_rate"],
                                 "twin_max_abs_diff": metrics["twin_max_abs_diff"], **figures(metrics, examples)}
    base = results.get("1")
    for workers, entry in results.items():
        for framework in FRAMEWORKS:
            if base:
                entry[framework]["scaling_efficiency"] = round(
                    entry[framework]["samples_per_s"] / (int(workers) * base[framework]["samples_per_s"]), 3)
    described = machine.describe()
    cpus = described["cpus"]
    report = {
        "command": command, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "epochs": args.epochs,
        "machine": described,
        "engines": {"torch": "DistributedDataParallel, gloo, under torchrun",
                    "tensorflow": "MultiWorkerMirroredStrategy (ring all-reduce), TF_CONFIG"},
        "caveat": f"every worker runs on this one {cpus}-core machine, sharing its cores (cores / workers threads "
                  "each): more workers cannot add compute here, so the efficiency shows the engines' overhead "
                  "(gradient all-reduce, coordination), not the speed-up a second machine would give; the "
                  "machine was shared with other work, so figures are noisy",
        "results": results,
    }
    out = results_mod.write(report, root, "distributed")
    print(f"\n{'framework':<12}{'workers':>8}{'s/epoch':>10}{'samples/s':>11}{'efficiency':>12}{'test acc':>10}")
    for workers, entry in results.items():
        for framework in FRAMEWORKS:
            f = entry[framework]
            print(f"{framework:<12}{workers:>8}{f['steady_epoch_s']:>10.2f}{f['samples_per_s']:>11,.0f}"
                  f"{f.get('scaling_efficiency', float('nan')):>12.2f}{f['test_accuracy']:>10.4f}")
    print(f"\nwrote {out} in {time.monotonic() - started:.0f} s ({command})")
    return report
