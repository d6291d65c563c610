"""REPORT.md's sections per target: training, artifact sizes, latency, memory and cold start."""
from __future__ import annotations

from pathlib import Path

from benchmarks.report import charts
from benchmarks.report.figures import SOURCES, browser_latency, edge_latency, missing, server_latency, table
from core import registry, servers


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
