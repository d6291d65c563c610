"""Benchmark the browser target in headless Chromium: cold start and warm latency per backend.

    python -m web.tfjs.bench                           # wasm, webgl, cpu; 3 cold starts, 200 warm runs
    python -m web.tfjs.bench --backends wasm --warm-runs 50
    make bench-web                                     # build the page, then this

Serves `<artifacts>/web` on a free 127.0.0.1 port, runs `web/tfjs/tools/bench.js` (playwright-core
driving /usr/bin/chromium), writes `<artifacts>/bench/web.json` and prints a table. What each figure
means is written at the top of tools/bench.js. A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import machine
from training import manifest, paths
from web.tfjs import export, serve


def run(root: Path, backends: str, cold_runs: int, warm_runs: int) -> dict:
    """Serve the page, drive Chromium through tools/bench.js, and return its figures."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("error: node not found: install Node.js 18+ (`make setup-system`)")
    with serve.running(root) as url:
        command = [node, "tools/bench.js", "--url", url, "--web", str(export.web_dir(root)), "--backends", backends,
                   "--cold-runs", str(cold_runs), "--warm-runs", str(warm_runs)]
        # stderr passes through: it shows progress, one line per backend.
        done = subprocess.run(command, cwd=export.TFJS_DIR, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: tools/bench.js failed (exit {done.returncode})")
    return json.loads(done.stdout)


def table(results: dict) -> str:
    lines = [f"{'backend':<8}{'cold p50':>10}{'cold max':>10}{'pipeline p50':>14}{'p99':>9}{'model p50':>11}{'p99':>9}"]
    for name, figures in results["backends"].items():
        if "error" in figures:
            lines.append(f"{name:<8}  unavailable: {figures['error']}")
            continue
        lines.append(
            f"{name:<8}{figures['cold_start']['p50_ms']:>7.0f} ms{figures['cold_start']['max_ms']:>7.0f} ms"
            f"{figures['warm_pipeline']['p50_ms']:>11.3f} ms{figures['warm_pipeline']['p99_ms']:>9.3f}"
            f"{figures['warm_model']['p50_ms']:>11.3f}{figures['warm_model']['p99_ms']:>9.3f}"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="wasm,webgl,cpu", help="comma-separated tfjs backends (default: wasm,webgl,cpu)")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh-browser page loads per backend (default: 3)")
    parser.add_argument("--warm-runs", type=int, default=200, help="timed predictions per backend (default: 200)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    if args.cold_runs < 1 or args.warm_runs < 1:
        parser.error("--cold-runs and --warm-runs must be at least 1")
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        results = run(root, args.backends, args.cold_runs, args.warm_runs)
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}")
    results |= {
        "command": " ".join(["python -m web.tfjs.bench", *(sys.argv[1:] if argv is None else argv)]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine.describe(),
        "units": "milliseconds; cold = navigation start to first prediction; pipeline = pad pixels to probabilities",
    }
    out = root / "bench" / "web.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
