"""Turn the measured JSON results into REPORT.md with PNG charts: the common claims, tested here.

    make report                                      # = python -m benchmarks.report
    python -m benchmarks.report --artifacts /tmp/x/artifacts --out /tmp/x/REPORT.md

Reads, from <artifacts>: metrics.json (make train), manifest.json (make export), and under bench/:
edge.json (make bench-edge), serving.json (make bench-serving), web.json (make bench-web),
load-capacity.json and load-<endpoint>.json (make loadtest-sweep), scale.json (make bench-scale),
burst.json and burst.png (make loadtest-burst),
widths.json (make bench-widths), training.json (make bench-training), distributed.json (make bench-distributed),
handwriting.json (make bench-handwriting), faults.json (make faults).
An input that is missing makes its section say "not measured: run <command>"; nothing else stops
the report. Charts go to report/ next to REPORT.md. Nothing is measured here.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from benchmarks import charts
from benchmarks import machine as machine_mod
from benchmarks.claims import section_claims
from benchmarks.figures import (
    COMPILED,
    SOURCES,
    browser_latency,
    compile_figures,
    edge_latency,
    load_inputs,
    missing,
    server_latency,
    server_memory,
    table,
    training_runs,
)
from benchmarks.report_edge import section_edge
from benchmarks.report_faults import section_faults
from benchmarks.report_handwriting import section_handwriting
from benchmarks.report_scale import section_scale
from benchmarks.report_search import section_search
from benchmarks.report_servers import section_servers
from core import paths, registry, servers


def section_training(inputs, out: Path) -> str:
    text = "## Training time and accuracy per framework\n\n"
    metrics = inputs["metrics"]
    if not metrics:
        return text + missing("metrics")
    rows = [[fw, *(metrics[fw][key] for key in ("test_accuracy", "params", "train_seconds", "epochs"))]
            for fw in ("torch", "tensorflow") if fw in metrics]
    charts.bars([(r[0], r[3], r[0]) for r in rows], out / "training.png", "training time, same network and data",
                "seconds")
    return (text + "Same network, split, seed and epochs in both frameworks (`make train`, `artifacts/metrics.json`); "
            f"the twin check's max abs difference: {metrics.get('twin_max_abs_diff', '-')}.\n\n"
            + table(["framework", "test accuracy", "parameters", "train seconds", "epochs"], rows)
            + "\n![training time](report/training.png)\n")


def section_sizes(inputs, out: Path) -> str:
    text = "## Artifact size per format\n\n"
    entries = inputs["manifest"]
    if not entries:
        return text + missing("manifest")
    rows = sorted(([key, e["framework"], e["precision"], e["bytes"], e["path"]] for key, e in entries.items()),
                  key=lambda r: (r[1], r[3]))
    charts.bars([(r[0], r[3], r[1]) for r in rows], out / "sizes.png", "artifact size (manifest)", "bytes", log=True)
    return (text + "Every file `make export` writes, from `artifacts/manifest.json` "
            "(folders: the sum of their files).\n\n"
            + table(["artifact", "framework", "precision", "bytes", "path"], rows) + "\n![sizes](report/sizes.png)\n")


def section_latency(inputs, out: Path) -> str:
    text = "## Latency per target (batch 1)\n\n"
    rows = []
    for name, (p50, p99, fw) in server_latency(inputs).items():
        rows.append([name, fw, registry.TARGETS[name].kind if name in registry.TARGETS else "server", p50, p99])
    for name, (p50, p99, fw, _) in edge_latency(inputs).items():
        rows.append([name, fw, "in-process / edge", p50, p99])
    for name, (p50, p99, _, fw, _) in browser_latency(inputs).items():
        rows.append([name, fw, "browser (model only)", p50, p99])
    notes = [missing(key) for key in ("serving", "edge", "web") if not inputs[key]]
    if not rows:
        return text + "".join(notes)
    charts.bars([(r[0], r[3], r[1]) for r in rows], out / "latency.png", "p50 latency per call, batch 1", "ms (log)",
                log=True)
    sources = []
    for key, what in (("serving", "servers: one client thread, sequential"), ("edge", "edge: one thread per runtime"),
                      ("web", "browser: warm model call in headless Chromium")):
        if inputs[key]:
            sources.append(f"{what} (`{inputs[key].get('command', SOURCES[key][1])}`)")
    return (text + "Sources: " + "; ".join(sources) + ".\n\n" + "".join(notes)
            + table(["target", "framework", "kind", "p50 ms", "p99 ms"], rows) + "\n![latency](report/latency.png)\n")


def section_memory_and_cold(inputs, out: Path) -> str:
    text = "## Peak memory and cold start of each server, and of the page\n\n"
    load = inputs["load"]
    if load:
        rows = [[server, setting, f["cold_start_s"], f["idle_mb"], f["peak_mb"]]
                for setting, by_server in load["servers"].items() for server, f in by_server.items()]
        # Coloured by the framework of the model each server serves (its row in core/servers.py).
        framework = {name: row.framework or "tensorflow" for name, row in servers.SERVERS.items()}
        charts.bars([(f"{r[0]} ({r[1]})", r[4], framework.get(r[0], "tensorflow")) for r in rows],
                    out / "memory.png", "peak RSS of the server's process tree under load", "MiB")
        tfserving = load.get("tfserving", "see serving/tfserving/README.md")
        text += (f"RSS summed over each server's process tree (TorchServe: Java frontend + Python workers), sampled "
                 f"every 0.25 s during the load sweep; cold start = process launch to the first successful readiness "
                 f"check (`{load['command']}`). TF Serving here: {tfserving}.\n\n"
                 + table(["server", "settings", "cold start s", "idle RSS MiB", "peak RSS MiB"], rows)
                 + "\n![memory](report/memory.png)\n\n")
    else:
        text += missing("load")
    browser = browser_latency(inputs)
    if browser:
        shared = inputs["web"].get("shared_page_bytes")
        text += ("Page cold start per runtime (fresh headless Chromium, the page loading that runtime alone: "
                 "navigation to its first answer) and its page weight (bytes fetched for its scripts, wasm and model"
                 + (f"; the shared page adds {shared:,} bytes" if shared is not None else "") + ", "
                 f"`{inputs['web'].get('command', 'make bench-web')}`):\n\n"
                 + table(["runtime", "framework", "cold start p50 ms", "page bytes"],
                         [[name, fw, cold, f"{size:,}" if size is not None else "-"]
                          for name, (_, _, cold, fw, size) in browser.items()]))
    else:
        text += missing("web")
    return text


def capacity_cell(run: dict | None):
    """A goodput figure, marked when the load generator (not the server) was the limit."""
    if run is None:
        return None
    return f"{run['capacity_rps']:g} (generator-limited)" if run.get("generator_limited") else run["capacity_rps"]


def how_found(load: dict) -> str:
    """How the sweep found each figure: bracket then bisect (its `search` bounds), or an older file's ladder."""
    bounds, slo = load.get("search"), f"p99 > {load['slo_p99_ms']:g} ms or a request not answered"
    if not bounds:
        return f"rate raised until {slo}"
    return (f"the rate doubled until a step failed ({slo}), then bisected until the first failing rate was within "
            f"{bounds['precision']:.0%} of the goodput, the highest rate that held")


def section_capacity(inputs, out: Path, root: Path) -> str:
    text = "## Capacity of each endpoint (open loop, p99 <= 50 ms, every request answered)\n\n"
    load = inputs["load"]
    if not load:
        return text + missing("load")
    settings = list(load["server_settings"])
    pinning = load.get("pinning") or {"modes": ["unpinned"], "headline": "unpinned"}
    main = pinning["headline"]
    others = [mode for mode in pinning["modes"] if mode != main]
    rows = []
    for target, e in load["endpoints"].items():
        by_mode = e.get("by_mode", {})
        cells = [capacity_cell(by_mode.get(main, {}).get(s)) if by_mode else e["by_setting"].get(s) for s in settings]
        cells += [capacity_cell(by_mode.get(mode, {}).get(s)) for mode in others for s in settings]
        rows.append([target, e["framework"], *cells, e["setting"]])
    header = [*[f"{s} req/s" + (" (pinned)" if main == "pinned" else "") for s in settings],
              *[f"{s} req/s ({mode})" for mode in others for s in settings]]
    if "generator_cpus" in pinning:
        where = (f"Pinned: the load generator on core(s) {pinning['generator_cpus']}, the servers on "
                 f"{pinning['server_cpus']} (`taskset -c`); unpinned: all share the machine's "
                 f"{load['machine']['cpus']} cores.")
    else:
        where = f"Load generator and servers share the machine's {load['machine']['cpus']} cores."
    limits = load.get("generator_limits")
    text += (f"Poisson arrivals at a fixed offered rate, latency from each request's scheduled send time, "
             f"{load['step_seconds']:g} s per step, {how_found(load)} (`{load['command']}`). {where}"
             + (f" A figure marked *generator-limited* stopped at a step where the generator itself used >= "
                f"{limits['cpu_share']:.0%} of its cores or its send lag p99 exceeded "
                f"{limits['send_lag_p99_ms']:g} ms: "
                "it measures the client as much as the server." if limits else "") + "\n\n"
             + table(["endpoint", "framework", *header, "better"], rows))
    cpu_rows = [[target, mode, name, run.get("stopped_at_rps"), run.get("generator_cpu_cores"),
                 run.get("generator_cpu_share"), run.get("send_lag_p99_ms"),
                 ", ".join(f"{server} {cores:g}" for server, cores in (run.get("servers_cpu_cores") or {}).items())]
                for target, e in load["endpoints"].items() for mode, runs in e.get("by_mode", {}).items()
                for name, run in runs.items()]
    if cpu_rows:
        text += ("\nCPU at the step that bounded each search (its lowest failing rate): the generator's process CPU "
                 "over the step (cores, and "
                 "share of the cores it may use), its send lag, and the servers' process trees (cores):\n\n"
                 + table(["endpoint", "pinning", "settings", "stopped at req/s", "generator cores", "generator share",
                          "send lag p99 ms", "servers cores"], cpu_rows))
    for target, e in load["endpoints"].items():
        values = [e["by_setting"][s] for s in settings if s in e["by_setting"]]
        if len(values) == 2 and max(values) > 1.5 * max(min(values), 1e-9):
            text += (f"\n- {target}: {settings[1]} {values[1]:g} req/s against {settings[0]} {values[0]:g} req/s "
                     f"({values[1] / values[0]:.1f}x)" if values[0] else
                     f"\n- {target}: {settings[1]} {values[1]:g} req/s against {settings[0]} {values[0]:g} req/s")
    text += "\n\nServer settings compared in the same run:\n\n" + "".join(
        f"- **{name}**: `{json.dumps({k: v for k, v in s.items() if k != 'name'})}`\n"
        for name, s in load["server_settings"].items())
    text += "\nIn-process rate of each framework in the same run (one thread, batch 1, no server):\n\n" + table(
        ["framework", "calls/s", "p50 ms"],
        [[fw, e["calls_per_s"], e["p50_ms"]] for fw, e in load["in_process"].items()])
    for target in load["endpoints"]:
        png = root / "bench" / f"load-{target}.png"
        if png.exists():
            shutil.copyfile(png, out / png.name)
            text += f"\n![{target}](report/{png.name})\n"
    return text


def section_burst(inputs, out: Path, root: Path) -> str:
    text = "## A crowd at once: concurrent connections each endpoint holds\n\n"
    burst = inputs["burst"]
    if not burst:
        return text + missing("burst")
    requests = burst["requests_per_connection"]
    rows = [[target, e["largest_held"], e["p99_ms_at_largest_held"], e["largest_answered_in_full"], e["largest_tried"]]
            for target, e in burst["endpoints"].items()]
    text += (f"N clients connect at the same moment (each its own keep-alive connection or gRPC channel) and send "
             f"{requests} single-image requests each, without retries (`{burst['command']}`). A burst is *held* when "
             "every request is answered or explicitly refused (HTTP 503/429, gRPC RESOURCE_EXHAUSTED): no connection "
             "reset, no time-out, no unexplained error. Latency is send to answer of the answered requests; the "
             "client shares the cores with the servers.\n\n"
             + table(["endpoint", "largest burst held (connections)", "p99 ms there", "answered in full up to",
                      "largest tried"], rows) + "\n")
    cells = {(r["target"], r["connections"]): r for r in burst["runs"]}
    counts = sorted({r["connections"] for r in burst["runs"]})
    detail = []
    for target in burst["endpoints"]:
        row = [target]
        for count in counts:
            r = cells.get((target, count))
            dropped = r and r["reset"] + r["timed_out"] + r["errors"]
            row.append(None if r is None else f"{r['answered']:,}/{r['sent']:,}" + (f", {r['refused']:,} refused"
                       if r["refused"] else "") + (f", **{dropped:,} dropped**" if dropped else ""))
        detail.append(row)
    text += "Answered of sent per burst (dropped = reset, timed out or unexplained):\n\n" + table(
        ["endpoint", *[f"{count:,} x {requests}" for count in counts]], detail)
    png = root / "bench" / "burst.png"
    if png.exists():
        shutil.copyfile(png, out / png.name)
        text += f"\n![burst](report/{png.name})\n"
    return text


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


if __name__ == "__main__":
    main()
