"""The edge section of REPORT.md: each edge runtime's own call beside its runner's `predict`, at every
batch size `make bench-edge` measured (each int8 file beside its fp32 twin), and int8 against fp32 in one
sentence per runtime that has both (TFLite, ExecuTorch XNNPACK, ONNX Runtime, OpenVINO).

    from benchmarks.report.edge import section_edge     # benchmarks/report/layout.py calls it; measures nothing

Reads edge.json (benchmarks/edge_runtimes.py): per target and batch size the runner's p50 (`p50_us`), the
runtime's own call (`runtime.p50_us`, null for the eager and compiled references) and their ratio.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.report.figures import missing, ratio, table


def microseconds(value) -> str | None:
    """One decimal whatever the size (the shared table() shows three below 10)."""
    return None if value is None else f"{value:,.1f}"


def runtime_rows(inputs) -> list[dict]:
    """The edge.json rows that carry a runtime-only figure (the edge artifacts), in the file's order."""
    edge = inputs["edge"] or {}
    return [row for row in edge.get("results", []) if (row.get("batch_1") or {}).get("runtime")]


def batches_of(inputs) -> list[int]:
    return list((inputs["edge"] or {}).get("batches") or [1, 32])


# Each int8 file beside its fp32 twin: (target prefix, what it is, what runs the file, how its int8 file takes float32).
INT8_TWINS = (
    ("tflite", "TFLite", "the interpreter", "the int8 file quantizes its float32 input and dequantizes its output "
     "inside the interpreter, so both runners do the same work"),
    ("executorch-xnnpack", "ExecuTorch XNNPACK", "the program", "the int8 program quantizes its float32 input "
     "inside XNNPACK and its softmax runs in float32, so both runners do the same work"),
    ("onnx", "ONNX Runtime", "the session", "the int8 file quantizes its float32 input and dequantizes its "
     "probabilities in QuantizeLinear / DequantizeLinear nodes, so both runners do the same work"),
    ("openvino", "OpenVINO", "the CPU plugin", "the int8 IR quantizes its float32 input in a FakeQuantize node "
     "and its softmax runs in float32, so both runners do the same work"),
)


def int8_twin(name: str) -> str | None:
    """The fp32 twin of an int8 target's name (`onnx-int8` -> `onnx-fp32`); None for any other name."""
    return name.removesuffix("-int8") + "-fp32" if name.endswith("-int8") else None


def beside_twins(rows: list[dict]) -> list[dict]:
    """The rows in their order, each int8 row moved to just after its fp32 twin (where that was measured)."""
    names = {row["name"] for row in rows}
    paired = {int8_twin(row["name"]): row for row in rows if int8_twin(row["name"]) in names}
    moved = {id(row) for row in paired.values()}
    ordered = []
    for row in rows:
        if id(row) in moved:
            continue
        ordered.append(row)
        if row["name"] in paired:
            ordered.append(paired[row["name"]])
    return ordered


def int8_against_fp32(rows: list[dict], batches: list[int]) -> str:
    """One sentence per runtime with both files: int8 against fp32 through the runner, and the runtime alone,
    per batch size."""
    by_name = {row["name"]: row for row in rows}
    return "".join(_int8_sentence(by_name.get(f"{prefix}-int8"), by_name.get(f"{prefix}-fp32"), batches, *words)
                   for prefix, *words in INT8_TWINS)


def _int8_sentence(int8: dict | None, fp32: dict | None, batches: list[int], title: str, runtime_name: str,
                   same_work: str) -> str:
    if not (int8 and fp32):
        return ""
    parts, slower, runtime_slower = [], [], []
    for size in batches:
        key = f"batch_{size}"
        if key not in int8 or key not in fp32:
            continue
        runner = ratio(int8[key]["p50_us"], fp32[key]["p50_us"])
        runtime = ratio(int8[key]["runtime"]["p50_us"], fp32[key]["runtime"]["p50_us"])
        parts.append(f"batch {size}: runner {int8[key]['p50_us']:,.1f} vs {fp32[key]['p50_us']:,.1f} us "
                     f"({runner:.2f}x), runtime alone {int8[key]['runtime']['p50_us']:,.1f} vs "
                     f"{fp32[key]['runtime']['p50_us']:,.1f} us ({runtime:.2f}x)")
        if runner > 1:
            slower.append(size)
            if runtime > 1:
                runtime_slower.append(size)
    if not parts:
        return ""
    if not slower:
        verdict = "int8 is no slower than fp32 through the runner at any batch size measured."
    elif runtime_slower == slower:
        verdict = (f"int8 is slower than fp32 at batch {', '.join(map(str, slower))}, and so is {runtime_name} "
                   "alone: its int8 kernels, not the runner, are the cost there.")
    else:
        verdict = (f"int8 is slower than fp32 through the runner at batch {', '.join(map(str, slower))} while "
                   f"{runtime_name} alone is not: the runner's own work is the difference there.")
    return f"{title} int8 against fp32 ({same_work}): " + "; ".join(parts) + ". " + verdict + "\n\n"


def section_edge(inputs, out: Path) -> str:
    text = "## Edge runtimes: the runtime's own call and the runner around it\n\n"
    if not inputs["edge"]:
        return text + missing("edge")
    rows = beside_twins(runtime_rows(inputs))
    if not rows:
        return text + "*edge.json holds no runtime-only figures (measured before they were): run `make bench-edge`*\n\n"
    batches = batches_of(inputs)
    body = []
    for row in rows:
        cells = [row["name"], row["framework"], row["precision"], row["bytes"]]
        for size in batches:
            figures = row.get(f"batch_{size}") or {}
            runtime = (figures.get("runtime") or {}).get("p50_us")
            share = figures.get("runner_over_runtime")
            cells += [microseconds(runtime), microseconds(figures.get("p50_us")),
                      None if share is None else f"{share:.2f}x"]
        body.append(cells)
    header = ["target", "framework", "precision", "bytes"]
    for size in batches:
        header += [f"b{size} runtime p50 us", f"b{size} runner p50 us", f"b{size} runner / runtime"]
    return (text + "p50 per call, one thread, the same test images "
            f"(`{inputs['edge'].get('command', 'make bench-edge')}`). *Runtime*: the runtime's own call alone, the "
            "input already in place (TFLite `invoke()`, ONNX Runtime `session.run`, ExecuTorch `execute`, "
            "OpenVINO `infer()`); "
            "*runner*: the runner's `predict`, which adds the input check (core/contract.py), copying the input in "
            "and the answer out. The runtime figure is taken in a tight loop, with the runtime's code and data hot "
            "in the caches: part of the gap is the runtime running colder between other work, not work the runner "
            "does. The eager and compiled references have one figure (runtime == runner), in the sections above "
            "and below.\n\n"
            + table(header, body) + "\n" + int8_against_fp32(rows, batches))
