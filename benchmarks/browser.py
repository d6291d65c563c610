"""Benchmark the page's runtimes in headless Chromium: cold start, warm latency and page weight.

    python -m benchmarks web                           # every runtime (TF.js on wasm, webgl, cpu);
                                                       # 3 cold starts, 200 warm runs
    python -m benchmarks web --configs tfjs:wasm litert-torch --cold-runs 1 --warm-runs 5
    make bench-web                                     # build the page, then this (BENCH_ARGS="..." passes flags)

Serves `<artifacts>/web` on a free 127.0.0.1 port and runs `web/tfjs/tools/bench.js` (playwright-core
driving /usr/bin/chromium), one runtime of runtimes.json at a time (`?runtime=`), TF.js once per
backend. tools/bench.js returns raw samples (what each one times is written at its top); they are
summarized here with benchmarks/timing.py `summarize` (n, mean, p50/p90/p99 nearest-rank, max, in ms).

Page weight: the body bytes of every response Chromium received on a first visit (empty cache),
sorted into the runtime's own files (its `files` in runtimes.json, and the graph model's shards
for TF.js) by kind (scripts, wasm, model), the page's shared files (HTML, CSS, the page's own
scripts, spec.json, runtimes.json) and files of other runtimes the page loads anyway (index.html
loads tf.min.js for every runtime). Writes `<artifacts>/bench/web.json` (benchmarks/results.py) and
prints a table. A benchmark, not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from benchmarks import machine, results, timing
from core import manifest, paths, registry
from web.tfjs import export, serve

# runtime[:tfjs backend] in the order measured: TF.js on each backend, then every other row of the page
# (core/registry.py); a backend headless Chromium cannot start is reported, not fatal.
TFJS_BACKENDS = ("wasm", "webgl", "cpu")
CONFIGS = (*(f"tfjs:{backend}" for backend in TFJS_BACKENDS),
           *(t.page.runtime for t in registry.pages() if t.page.adapter != "tfjs"))
UNITS = ("milliseconds; cold = navigation start to the runtime's first answer (fresh browser); pipeline = input "
         "pixels to probabilities; model = reduced input to probabilities; bytes = response bodies fetched")


def kind_of(path: str) -> str:
    """scripts, wasm or model, by the file's name."""
    if path.endswith(".wasm"):
        return "wasm"
    if path.endswith((".js", ".mjs")):
        return "scripts"
    return "model"


def page_weight(responses: list[dict], runtime: dict, runtimes: list[dict]) -> dict:
    """Bytes fetched: the runtime's own scripts, wasm and model, the shared page, other runtimes' files."""
    own = set(runtime["files"]) | ({"model/"} if runtime["name"] == "tfjs" else set())
    others = {path for entry in runtimes if entry["name"] != runtime["name"] for path in entry["files"]} - own
    weight = {"scripts": 0, "wasm": 0, "model": 0, "shared": 0, "other_runtimes": 0, "files": {}}
    for response in responses:
        url = urlparse(response["url"])
        if url.scheme not in ("http", "https"):
            continue  # blob: and data: URLs (a runtime's workers) are made in the page, not fetched
        path = url.path.lstrip("/") or "index.html"
        size = response["bytes"] or 0
        weight["files"][path] = weight["files"].get(path, 0) + size
        if path in own or any(path.startswith(folder) for folder in own if folder.endswith("/")):
            weight[kind_of(path)] += size
        elif path in others:
            weight["other_runtimes"] += size
        else:
            weight["shared"] += size
    weight["runtime_total"] = weight["scripts"] + weight["wasm"] + weight["model"]
    return weight


def summarize(raw: dict, runtimes: list[dict]) -> dict:
    """bench.js's raw samples -> the figures web.json keeps (samples in ms -> timing.summarize)."""
    listed = {entry["name"]: entry for entry in runtimes}
    out = {}
    for key, figures in raw.items():
        entry = listed.get(figures["runtime"], {})
        row = {"runtime": figures["runtime"], "title": entry.get("title"), "framework": entry.get("framework"),
               "package": entry.get("package"), "version": entry.get("version")}
        if "error" in figures:
            out[key] = {**row, "error": figures["error"]}
            continue

        def ms(samples):
            return timing.summarize([value / 1e3 for value in samples], unit="ms")

        out[key] = {**row, "backend": figures["backend"], "cross_origin_isolated": figures["cross_origin_isolated"],
                    "wasm_threads": figures["wasm_threads"],
                    "cold_start": ms(figures["cold_samples_ms"]),
                    "cold_samples_ms": [round(value, 1) for value in figures["cold_samples_ms"]],
                    "warm_pipeline": ms(figures["warm_pipeline_samples_ms"]),
                    "warm_model": ms(figures["warm_model_samples_ms"]),
                    "page_bytes": page_weight(figures["responses"], entry, runtimes)}
    return out


def run(root: Path, configs: list[str], cold_runs: int, warm_runs: int) -> dict:
    """Serve the page, drive Chromium through tools/bench.js; its raw output."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("error: node not found: install Node.js 18+ (`make setup`)")
    with serve.running(root) as url:
        command = [node, "tools/bench.js", "--url", url, "--web", str(export.web_dir(root)),
                   "--fixtures", str(export.fixtures_dir(root)), "--configs", ",".join(configs),
                   "--cold-runs", str(cold_runs), "--warm-runs", str(warm_runs)]
        # stderr passes through: it shows progress, one line per runtime.
        done = subprocess.run(command, cwd=export.TFJS_DIR, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: tools/bench.js failed (exit {done.returncode})")
    return json.loads(done.stdout)


def table(report: dict) -> str:
    lines = [f"{'runtime':<22}{'cold p50':>10}{'pipeline p50':>14}{'p99':>9}{'model p50':>11}{'p99':>9}"
             f"{'own KB':>9}{'wasm KB':>9}{'model KB':>10}{'shared KB':>11}"]
    for name, f in report["runtimes"].items():
        if "error" in f:
            lines.append(f"{name:<22}  unavailable: {f['error'][:100]}")
            continue
        weight = f["page_bytes"]
        lines.append(f"{name:<22}{f['cold_start']['p50_ms']:>7.0f} ms{f['warm_pipeline']['p50_ms']:>11.3f} ms"
                     f"{f['warm_pipeline']['p99_ms']:>9.3f}{f['warm_model']['p50_ms']:>11.3f}{f['warm_model']['p99_ms']:>9.3f}"
                     f"{weight['runtime_total'] / 1e3:>9.0f}{weight['wasm'] / 1e3:>9.0f}{weight['model'] / 1e3:>10.1f}"
                     f"{(weight['shared'] + weight['other_runtimes']) / 1e3:>11.0f}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), metavar="RUNTIME[:BACKEND]",
                        help=f"what to measure (default: {' '.join(CONFIGS)}); a runtime the page lacks is left out")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh-browser page loads per runtime (default: 3)")
    parser.add_argument("--warm-runs", type=int, default=200, help="timed predictions per runtime (default: 200)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    if args.cold_runs < 1 or args.warm_runs < 1:
        parser.error("--cold-runs and --warm-runs must be at least 1")
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        web = manifest.verify("web_demo", root)
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}: run `make export-web`") from None
    runtimes = json.loads((web / "runtimes.json").read_text())["runtimes"]
    names = [entry["name"] for entry in runtimes]
    configs = [config for config in args.configs if config.split(":")[0] in names]
    for config in sorted(set(args.configs) - set(configs)):
        print(f"bench-web: {config}: not on this page (runtimes.json lists {', '.join(names)})")
    raw = run(root, configs, args.cold_runs, args.warm_runs)
    shared = {path: size for f in raw["configs"].values() if "error" not in f
              for path, size in page_weight(f["responses"], {"name": "", "files": []}, runtimes)["files"].items()
              if not any(path in entry["files"] or path.startswith("model/") for entry in runtimes)}
    report = {
        "command": results.command(__name__, argv),
        "machine": machine.describe(),
        "chromium": raw["chromium"], "cold_runs": args.cold_runs, "warm_runs": args.warm_runs,
        "units": UNITS,
        "shared_page_bytes": sum(shared.values()), "shared_page_files": dict(sorted(shared.items())),
        "runtimes": summarize(raw["configs"], runtimes),
    }
    out = results.write(report, root, "web")
    print(table(report))
    print(f"shared page: {report['shared_page_bytes'] / 1e3:.0f} KB ({', '.join(shared)})")
    print(f"wrote {out} ({report['command']})")
    return report
