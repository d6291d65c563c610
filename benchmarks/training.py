"""What training costs in each framework: peak memory of the training process and time per epoch.

    make bench TOOL=training                                    # = python -m benchmarks training
    python -m benchmarks training --widths 1 8 --epochs 2 --modes torch:eager tensorflow:graph

Every run trains the same network on the same split (seed 0), batch size, epochs and thread count
(`--threads`, default 1, for both frameworks), in a process of its own, so its peak RSS
(`ru_maxrss`: interpreter, framework, data, model, optimizer state, compiled code) belongs to that
run alone; TensorBoard logging is off in both (PyTorch's SummaryWriter imports TensorFlow).
Modes: PyTorch `eager` and `compiled` (torch.compile, inductor); TensorFlow `eager`
(Keras `run_eagerly=True`, op by op), `graph` (Keras' default on a CPU: the training step as a
tf.function) and `xla` (`jit_compile=True`); `eager` only when named in --modes. The first
epoch includes tracing/compiling, so it is reported apart from the steady epochs after it.
Widths 1, 2, 4, 8 by default.
Writes <artifacts>/bench/training.json and prints a table. A benchmark: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, tools
from benchmarks import results as results_mod
from core import paths
from training import data
from training.spec import WIDTHS, digits_spec, write_spec

MODES = ("torch:eager", "torch:compiled", "tensorflow:eager", "tensorflow:graph", "tensorflow:xla")
# Keras op by op (`run_eagerly=True`) is a debugging mode, not how Keras trains, and about 40x slower
# per epoch here (width 1: ~45 s/epoch on the 2-core machine): measured only when asked for.
DEFAULT_MODES = tuple(mode for mode in MODES if mode != "tensorflow:eager")
RESULT = "RESULT "  # the child's last line: its figures as JSON


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(framework: str, mode: str, width: int, args) -> dict:
    """One training run in this process (started by the parent for a clean RSS)."""
    from core import spec as specs
    from training.spec import ModelConfig

    splits = data.load_split(args.split)
    task = specs.from_file(args.split.parent / "spec.json")  # the reference task's, written beside the split
    # No TensorBoard logs: PyTorch's writer would import TensorFlow into the PyTorch process.
    hyper = dict(epochs=args.epochs, seed=0, batch_size=args.batch_size, learning_rate=3e-3, log_dir=None)
    if framework == "torch":
        import torch

        from training import train_torch

        torch.set_num_threads(args.threads)
        start_rss = rss_mb()
        _, metrics = train_torch.train(splits, ModelConfig(width=width), task, compile=mode == "compiled", **hyper)
    else:
        import tensorflow as tf

        from training import train_keras

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        start_rss = rss_mb()
        _, metrics = train_keras.train(splits, ModelConfig(width=width), task, jit_compile=mode == "xla",
                                       run_eagerly=mode == "eager", **hyper)
    seconds = metrics["epoch_seconds"]
    return {"framework": framework, "mode": mode, "width": width, "params": metrics["params"],
            "epoch_seconds": seconds, "first_epoch_s": seconds[0],
            "steady_epoch_s": round(float(np.median(seconds[1:] or seconds)), 3),
            "start_rss_mb": round(start_rss, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "test_accuracy": metrics["test_accuracy"]}


def measure(framework: str, mode: str, width: int, args) -> dict:
    command = [*tools.argv("training"), "--child", framework, mode, str(width),
               "--split", str(args.split), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"framework": framework, "mode": mode, "width": width, "error": f"exit {done.returncode}: {tail[:200]}"}
    return json.loads(lines[-1][len(RESULT):])


def table(runs: list[dict]) -> str:
    header = (f"{'framework':<12}{'mode':<10}{'width':>6}{'params':>10}{'first epoch s':>15}{'epoch s':>10}"
              f"{'peak RSS MiB':>14}")
    lines = [header, "-" * len(header)]
    for run in runs:
        if "error" in run:
            lines.append(f"{run['framework']:<12}{run['mode']:<10}{run['width']:>6}  {run['error']}")
        else:
            lines.append(f"{run['framework']:<12}{run['mode']:<10}{run['width']:>6}{run['params']:>10,}"
                         f"{run['first_epoch_s']:>15.2f}{run['steady_epoch_s']:>10.2f}{run['peak_rss_mb']:>14,.0f}")
    return "\n".join(lines)


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), choices=WIDTHS, help="default: 1 2 4 8")
    parser.add_argument("--modes", nargs="+", default=list(DEFAULT_MODES), choices=MODES,
                        help="framework:mode (default: all but tensorflow:eager)")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs per run; the first is reported apart (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both frameworks (default: 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one run may take (default: 900)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "MODE", "WIDTH"), help=argparse.SUPPRESS)
    parser.add_argument("--split", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is reported apart)")
    if args.child:
        framework, mode, width = args.child
        print(RESULT + json.dumps(child(framework, mode, int(width), args)), flush=True)
        return None

    root = (args.artifacts or paths.artifacts_dir()).resolve()
    command = results_mod.command(__name__, argv)
    with tempfile.TemporaryDirectory(prefix="bench-training-") as folder:
        args.split = Path(folder) / "split.npz"
        _, splits = data.prepare(0, None, args.split)  # the default split, seed 0
        write_spec(digits_spec(seed=0), Path(folder) / "spec.json")  # the reference task, as training writes it
        runs, started = [], time.monotonic()
        plan = [(m.split(":")[0], m.split(":")[1], w) for w in args.widths for m in args.modes]
        for number, (framework, mode, width) in enumerate(plan, 1):
            print(f"[{number}/{len(plan)}] {framework} {mode} width {width} ...", end=" ", flush=True)
            began = time.monotonic()
            try:
                run = measure(framework, mode, width, args)
            except subprocess.TimeoutExpired:
                run = {"framework": framework, "mode": mode, "width": width, "error": f"over {args.timeout:g} s"}
            run["process_s"] = round(time.monotonic() - began, 1)
            print(run.get("error") or f"epoch {run['steady_epoch_s']:.2f} s, peak RSS {run['peak_rss_mb']:,.0f} MiB "
                  f"({run['process_s']:.0f} s)", flush=True)
            runs.append(run)
    report = {
        "command": command, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine.describe(),
        "epochs": args.epochs, "batch_size": args.batch_size, "threads": args.threads,
        "train_examples": len(data.augment_with_shifts(splits["train"])),
        "figures": "peak_rss_mb: the training process's maximum resident set (ru_maxrss); start_rss_mb: its RSS "
                   "after importing the framework and loading the data; first_epoch_s includes tracing/compiling; "
                   "steady_epoch_s: median of the later epochs (training steps plus the validation pass)",
        "runs": runs,
    }
    out = results_mod.write(report, root, "training")
    print(f"\n{table(runs)}\n\nwrote {out} in {time.monotonic() - started:.0f} s ({command})")
    return report
