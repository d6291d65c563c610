"""REPORT.md's cost sections: latency against width, graph compilation, training cost, distributed training."""
from __future__ import annotations

from pathlib import Path

from benchmarks.report import charts
from benchmarks.report.figures import COMPILED, compile_figures, missing, table, training_runs


def section_widths(inputs, out: Path) -> str:
    text = "## Latency against the width multiplier (1, 2, 4, 8)\n\n"
    widths = inputs["widths"]
    if not widths:
        return text + missing("widths")
    keys = list(widths["widths"])
    names = list(next(iter(widths["widths"].values()))["targets"])
    rows, series = [], {}
    for name in names:
        cells = [widths["widths"][w]["targets"].get(name, {}).get("p50_ms") for w in keys]
        rows.append([name, *cells])
        points = [(int(w), c) for w, c in zip(keys, cells, strict=False) if c is not None]
        if points:
            series[name] = ([p[0] for p in points], [p[1] for p in points])
    params = [["parameters", *[widths["widths"][w]["params"]["torch"] for w in keys]]]
    charts.lines(series, out / "widths.png", "p50 latency against width (batch 1)", "width multiplier", "ms (log)")
    errors = {name: widths["widths"][w]["targets"][name]["error"] for w in keys for name in names
              if "error" in widths["widths"][w]["targets"].get(name, {})}
    return (text + f"Each width trained {widths['epochs']} epoch(s) into its own folder, exported, and every target of "
            f"core/registry.py timed at batch 1 (`{widths['command']}`). tfjs-node starts Node on every call; "
            "chromium-wasm is the page's own model call.\n\n"
            + table(["target (p50 ms)", *[f"w{w}" for w in keys]], params + rows)
            + "".join(f"\n- {name}: not measured ({error})" for name, error in errors.items())
            + "\n\n![widths](report/widths.png)\n")


def section_compilation(inputs, out: Path) -> str:
    text = "## Graph compilation: compile time and warm latency, in-process\n\n"
    found = compile_figures(inputs)
    if not found:
        return text + missing("edge")
    rows = [[name, fw, f["first_ms"], f["p50_ms"], f["first_b32_ms"], f["p50_b32_ms"]]
            for fw, names in COMPILED.items() for name in names if (f := found.get(name))]
    charts.bars([(r[0], r[3], r[1]) for r in rows], out / "compiled.png", "warm p50 per call, batch 1, one thread",
                "ms (log)", log=True)
    return (text + "Each framework's eager model and its compiled graphs, one thread, the same test images "
            f"(`{inputs['edge'].get('command', 'make bench-edge')}`). *First call*: the first `predict` of that batch "
            "size, which traces and compiles (torch.compile: TorchInductor generating C++ built with g++; "
            "its on-disk cache shortens later runs); then warm p50. All are held to their eager model by "
            "`make parity` (max abs diff <= 1e-4).\n\n"
            + table(["target", "framework", "b1 first call ms", "b1 p50 ms", "b32 first call ms", "b32 p50 ms"], rows)
            + "\n![compiled](report/compiled.png)\n")


def section_training_cost(inputs, out: Path) -> str:
    text = "## Training cost per framework: peak memory and time per epoch\n\n"
    runs = training_runs(inputs)
    if not inputs["training"]:
        return text + missing("training")
    t = inputs["training"]
    rows, memory, epoch = [], {}, {}
    for r in t["runs"]:
        if "error" in r:
            rows.append([r["framework"], r["mode"], r["width"], None, None, None, None, r["error"][:80]])
            continue
        rows.append([r["framework"], r["mode"], r["width"], r["params"], r["first_epoch_s"], r["steady_epoch_s"],
                     r["start_rss_mb"], r["peak_rss_mb"]])
    for (framework, mode, width), r in sorted(runs.items(), key=lambda item: item[0][2]):
        label = f"{framework} {mode}"
        memory.setdefault(label, ([], []))
        epoch.setdefault(label, ([], []))
        memory[label][0].append(width), memory[label][1].append(r["peak_rss_mb"])
        epoch[label][0].append(width), epoch[label][1].append(r["steady_epoch_s"])
    if runs:
        charts.lines(memory, out / "training-memory.png", "peak RSS of the training process", "width multiplier",
                     "MiB (log)")
        charts.lines(epoch, out / "training-epoch.png", "time per epoch after the first", "width multiplier",
                     "seconds (log)")
    return (text + f"Each run in a process of its own: the same network, split, batch size {t['batch_size']}, "
            f"{t['epochs']} epochs of {t['train_examples']:,} examples, {t['threads']} thread(s) in both frameworks, "
            f"TensorBoard off (`{t['command']}`). Peak RSS is the process's maximum resident set (interpreter and "
            "framework included: *RSS at start* is after importing the framework and loading the data); the first "
            "epoch includes tracing and compiling. TensorFlow `graph` is what Keras `fit` runs by default on a CPU; "
            "`eager` is `run_eagerly=True`. Note: `make train` logs to TensorBoard, and PyTorch's `SummaryWriter` "
            "imports TensorFlow into the PyTorch process, which this benchmark avoids.\n\n"
            + table(["framework", "mode", "width", "parameters", "first epoch s", "epoch s", "RSS at start MiB",
                     "peak RSS MiB"], rows)
            + ("\n![training memory](report/training-memory.png)\n\n![time per epoch](report/training-epoch.png)\n"
               if runs else ""))


def section_distributed(inputs, out: Path) -> str:
    text = "## Data-parallel training on each framework's own engine\n\n"
    dist = inputs["distributed"]
    if not dist:
        return text + missing("distributed")
    rows = []
    for workers, entry in dist["results"].items():
        for framework in ("torch", "tensorflow"):
            f = entry[framework]
            rows.append([framework, int(workers), entry["global_batch"], f["steady_epoch_s"], f["samples_per_s"],
                         f.get("scaling_efficiency"), f["test_accuracy"]])
    return (text + f"`make train-distributed WORKERS=N` at each worker count, {dist['epochs']} epochs "
            f"(`{dist['command']}`): PyTorch {dist['engines']['torch']}; TensorFlow {dist['engines']['tensorflow']}. "
            "The global batch and the learning rate grow with the workers; efficiency = samples/s at N / "
            f"(N x samples/s at 1). **Caveat: {dist['caveat']}.**\n\n"
            + table(["framework", "workers", "global batch", "s/epoch", "samples/s", "efficiency", "test accuracy"],
                    rows))
