"""The measured results the report reads, and the figures both its sections and its claims take from them.

Each input is one JSON file under the artifacts folder, named in SOURCES with the command that
writes it; a missing or unreadable one is None, and `missing(key)` says how to measure it.
"""
from __future__ import annotations

import json
from pathlib import Path

# Where each input comes from: the command that (re)measures it.
SOURCES = {
    "metrics": ("metrics.json", "make train"),
    "manifest": ("manifest.json", "make export"),
    "edge": ("bench/edge.json", "make bench-edge"),
    "serving": ("bench/serving.json", "make bench-serving"),
    "kserve_breakdown": ("bench/kserve-breakdown.json", "make bench TOOL=kserve-breakdown"),
    "torchserve_breakdown": ("bench/torchserve-breakdown.json", "make bench TOOL=torchserve-breakdown"),
    "concurrent": ("bench/concurrent.json", "make bench-serving"),
    "scale": ("bench/scale.json", "make bench TOOL=scale"),
    "web": ("bench/web.json", "make bench-web"),
    "search": ("bench/search.json", "make bench TOOL=search"),
    "load": ("bench/load-capacity.json", "make loadtest-sweep"),
    "burst": ("bench/burst.json", "make bench TOOL=burst"),
    "widths": ("bench/widths.json", "make bench TOOL=widths"),
    "training": ("bench/training.json", "make bench TOOL=training"),
    "distributed": ("bench/distributed.json", "make bench TOOL=distributed"),
    "handwriting": ("bench/handwriting.json", "make bench TOOL=handwriting"),
    "faults": ("bench/faults.json", "make bench TOOL=faults"),
}

# The eager reference and its compiled graphs, by framework (core/registry.py names).
COMPILED = {"torch": ("torch-eager", "torch-compile"), "tensorflow": ("keras-eager", "tf-function", "tf-xla")}


def load_inputs(root: Path) -> dict:
    """{key: parsed JSON or None}; an unreadable file counts as missing (and is named in the report)."""
    inputs = {}
    for key, (relative, _) in SOURCES.items():
        try:
            # Commands recorded with this machine's absolute artifacts folder read as `artifacts`.
            inputs[key] = json.loads((root / relative).read_text().replace(str(root), "artifacts"))
        except (OSError, ValueError):
            inputs[key] = None
    return inputs


def missing(key: str) -> str:
    relative, command = SOURCES[key]
    return f"*not measured: run `{command}` (writes `artifacts/{relative}`)*\n\n"


def table(header: list[str], rows: list[list]) -> str:
    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float) and value == int(value) and (value == 0 or abs(value) >= 10):
            return f"{value:,.0f}"
        if isinstance(value, float):
            return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


# ---- the figures each section and claim uses -------------------------------------------------

def server_latency(inputs) -> dict:
    """{target: (p50 ms, p99 ms, framework)} from serving.json (one client, batch 1)."""
    if not inputs["serving"]:
        return {}
    return {r["target"]: (r["p50_ms"], r["p99_ms"], r["framework"]) for r in inputs["serving"]["results"]}


def edge_latency(inputs) -> dict:
    """{target: (p50 ms, p99 ms, framework, bytes)} at batch 1 from edge.json."""
    if not inputs["edge"]:
        return {}
    return {r["name"]: (r["batch_1"]["p50_us"] / 1e3, r["batch_1"]["p99_us"] / 1e3, r["framework"], r["bytes"])
            for r in inputs["edge"]["results"]}


def browser_latency(inputs) -> dict:
    """{"chromium-<runtime>[-<backend>]": (model p50 ms, p99 ms, cold p50 ms, framework, page bytes)} from web.json.

    web.json before the page ran several runtimes held TF.js alone, by backend (`backends`): read as
    tfjs rows with no page weight."""
    web = inputs["web"]
    if not web:
        return {}
    if "runtimes" in web:
        measured = {name: f for name, f in web["runtimes"].items() if "error" not in f}
    else:
        measured = {f"tfjs-{name}": {**f, "framework": "tensorflow"} for name, f in web.get("backends", {}).items()
                    if "error" not in f}
    return {f"chromium-{name}": (f["warm_model"]["p50_ms"], f["warm_model"]["p99_ms"], f["cold_start"]["p50_ms"],
                                 f.get("framework") or "tensorflow", f.get("page_bytes", {}).get("runtime_total"))
            for name, f in measured.items()}


def server_memory(inputs, setting="default") -> dict:
    if not inputs["load"]:
        return {}
    return inputs["load"]["servers"].get(setting, {})


def compile_figures(inputs) -> dict:
    """{target: {"p50_ms", "first_ms", "p50_b32_ms", "first_b32_ms"}} of the eager and compiled targets (edge.json)."""
    if not inputs["edge"]:
        return {}
    rows = {r["name"]: r for r in inputs["edge"]["results"]}
    out = {}
    for name in (n for names in COMPILED.values() for n in names):
        row = rows.get(name)
        if row and "first_call_us" in row["batch_1"]:
            out[name] = {"p50_ms": row["batch_1"]["p50_us"] / 1e3, "first_ms": row["batch_1"]["first_call_us"] / 1e3,
                         "p50_b32_ms": row["batch_32"]["p50_us"] / 1e3,
                         "first_b32_ms": row["batch_32"]["first_call_us"] / 1e3}
    return out


def training_runs(inputs) -> dict:
    """{(framework, mode, width): run} from training.json, runs that finished only."""
    if not inputs["training"]:
        return {}
    return {(r["framework"], r["mode"], r["width"]): r for r in inputs["training"]["runs"] if "error" not in r}
