"""How latency grows with the width multiplier (1, 2, 4, 8) on every target of core/registry.py.

    make bench TOOL=widths                                  # = python -m benchmarks widths
    python -m benchmarks widths --widths 1 8 --epochs 1 --calls 100

For each width it trains both frameworks briefly (accuracy is not the point here) into its own
artifacts folder `<artifacts>/width/w<k>/`, exports every artifact (edge files, the TorchServe
archive, a SavedModel version, the TF.js model), starts both servers there on free ports, and times
`--calls` sequential batch-1 predictions of every target in core/registry.py (after a warm-up).
A target that cannot be built or reached here is recorded with the reason instead of a figure.
In-process runtimes are held to one thread, as in `make bench-edge`. tfjs-node starts Node for
every call, so its figure is mostly start-up; the browser's own latency (Chromium, wasm) is
measured through the page as in `make bench-web`.
Timing and percentiles: benchmarks/timing.py. Writes <artifacts>/bench/widths.json
(benchmarks/results.py). Each folder is built by the build graph (deploy/local/build.py): a folder
already trained with these flags and exported is reused.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, results, timing
from core import paths, registry
from training import data
from training.spec import WIDTHS


def build(root: Path, width: int, epochs: int) -> dict:
    """Train and export width `width` into `root` through the build graph (only what is missing or
    stale there); the training metrics. An export that fails is recorded by the targets that need it."""
    from deploy.local import build as graph

    graph.ensure(root, args=["--epochs", str(epochs), "--width", str(width), "--seed", "0"], keep_going=True,
                 progress=lambda line: print(f"  {line}", flush=True))
    metrics_file = paths.metrics_path(root)
    if not metrics_file.exists():
        raise SystemExit(f"error: width {width} could not be trained into {root} (see the build lines above)")
    return json.loads(metrics_file.read_text())


def time_target(predictor, image: np.ndarray, calls: int, warmup: int) -> dict:
    """`calls` timed batch-1 calls after `warmup` (benchmarks/timing.py); the first call is kept apart."""
    first, samples = timing.time_calls(lambda: predictor.predict(image), calls, warmup=max(warmup - 1, 0))
    return {**timing.summarize(samples, "ms", digits=4), "first_ms": round(first * 1e3, 4), "calls": calls}


def measure_width(root: Path, calls: int, warmup: int) -> dict:
    """Every target's batch-1 latency over the artifacts in `root` (servers started and stopped here)."""
    from deploy.local import runner
    from serving.endpoints import free_endpoints

    image = data.load_split(paths.split_path(root))["test"].x[:1]
    results, endpoints, started = {}, free_endpoints(), False
    needs_server = [t for t in registry.TARGETS.values() if t.kind == "server"]
    try:
        if needs_server:
            runner.stop(root)  # servers left by an interrupted run would answer on other ports
            try:
                runner.start(root, endpoints, timeout=300)
                started = True
            except Exception as error:
                for target in needs_server:
                    results[target.name] = {"error": f"servers did not start: {str(error)[:200]}"}
        for target in registry.TARGETS.values():
            if target.name in results:
                continue
            slow = target.kind == "browser"  # one Node start per call
            try:
                predictor = registry.load(target.name, root=root, endpoints=endpoints)
                results[target.name] = time_target(predictor, image, 3 if slow else calls, 1 if slow else warmup)
                getattr(predictor, "close", lambda: None)()
            except Exception as error:  # a target that cannot run here is reported, not fatal
                results[target.name] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
            figure = results[target.name]
            shown = f"p50 {figure['p50_ms']:.3f} ms" if "p50_ms" in figure else figure["error"]
            print(f"    {target.name:<26}{shown}", flush=True)
    finally:
        if started:
            runner.stop(root)
    results["chromium-wasm"] = _browser(root)
    return results


def _browser(root: Path) -> dict:
    """The page's warm model latency in headless Chromium, wasm backend (benchmarks/browser.py)."""
    from benchmarks import browser

    try:
        figures = browser.run(root, "wasm", cold_runs=1, warm_runs=50)["backends"]["wasm"]
        return {"p50_ms": figures["warm_model"]["p50_ms"], "p99_ms": figures["warm_model"]["p99_ms"], "calls": 50}
    except (Exception, SystemExit) as error:
        return {"error": f"{type(error).__name__}: {str(error)[:200]}"}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), choices=WIDTHS,
                        help="width multipliers (default: 1 2 4 8)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per width (default: 1)")
    parser.add_argument("--calls", type=int, default=100, help="timed batch-1 calls per target (default: 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first (default: 10)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    from benchmarks.edge_runtimes import limit_threads

    limit_threads()
    command = results.command(__name__, argv)
    report = {"command": command, "machine": machine.describe(), "epochs": args.epochs, "calls": args.calls,
              "latency": "batch 1, ms per call", "widths": {}}
    started = time.monotonic()
    for number, width in enumerate(args.widths, 1):
        folder = root / "width" / f"w{width}"
        print(f"== [{number}/{len(args.widths)}] width {width} -> {folder}", flush=True)
        metrics = build(folder, width, args.epochs)
        report["widths"][str(width)] = {
            "params": {fw: metrics[fw]["params"] for fw in ("torch", "tensorflow")},
            "targets": measure_width(folder, args.calls, args.warmup)}
    out = results.write(report, root, "widths")
    names = list(next(iter(report["widths"].values()))["targets"])
    print(f"\n{'target (p50 ms)':<26}" + "".join(f"{'w' + w:>10}" for w in report["widths"]))
    for name in names:
        cells = [report["widths"][w]["targets"][name].get("p50_ms") for w in report["widths"]]
        print(f"{name:<26}" + "".join(f"{c:>10.3f}" if c is not None else f"{'-':>10}" for c in cells))
    print(f"\nwrote {out} in {time.monotonic() - started:.0f} s ({command})")
    return report
