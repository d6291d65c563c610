"""The common PyTorch-vs-TensorFlow claims, each held against what was measured on this machine.

Every claim says what was measured, the figure (a ratio of two figures from the same run), what
it means here by a stated rule, and the command that reproduces it; a claim whose input is missing
says "not measured" with that command.
"""
from __future__ import annotations

from benchmarks.figures import edge_latency, ratio, server_memory, table

def claims(inputs) -> list[dict]:
    """Each common claim: what was measured, the figure, what it says here, and the command."""
    found = []
    memory = server_memory(inputs)
    tf_mb, torch_mb = (memory.get("tfserving") or {}).get("peak_mb"), (memory.get("torchserve") or {}).get("peak_mb")
    r = ratio(tf_mb, torch_mb)
    found.append({"claim": "TensorFlow uses less memory",
                  "measured": "peak RSS of each server's process tree under the same load (default settings)",
                  "figure": f"TF Serving {tf_mb} MiB vs TorchServe {torch_mb} MiB: {r:.2f}x" if r else None,
                  "verdict": None if r is None else ("holds here" if r < 1 else "does not hold here"),
                  "command": "make loadtest-sweep", "input": "load"})
    edge = edge_latency(inputs)
    eager = [edge.get(name, (None,))[0] for name in ("torch-eager", "keras-eager")]
    r_eager = ratio(eager[1], eager[0])
    in_process = (inputs["load"] or {}).get("in_process", {})
    graph = [(in_process.get(fw) or {}).get("p50_ms") for fw in ("torch", "tensorflow")]
    rate = [(in_process.get(fw) or {}).get("calls_per_s") for fw in ("torch", "tensorflow")]
    r_graph, r_rate = ratio(graph[1], graph[0]), ratio(rate[1], rate[0])
    figures = []
    if r_eager:
        figures.append(f"eager: Keras {eager[1]:.3f} ms vs PyTorch {eager[0]:.3f} ms ({r_eager:.2f}x)")
    if r_graph and r_rate:
        figures.append(f"served model in-process: SavedModel signature {graph[1]:.3f} ms vs PyTorch {graph[0]:.3f} ms "
                       f"p50 ({r_graph:.2f}x), {rate[1]:,.0f} vs {rate[0]:,.0f} calls/s ({r_rate:.2f}x)")
    deciding = [r_graph, r_rate] if r_graph and r_rate else [r_eager] if r_eager else []
    verdict = None
    if deciding:
        verdict = ("comparable here (within 2x)" if all(0.5 <= r <= 2 for r in deciding)
                   else "not comparable here (over 2x apart)")
    found.append({"claim": "Performance is comparable",
                  "measured": "batch 1, the same network, TensorFlow against PyTorch: eager p50 (one thread), "
                              "and the model each server runs called in-process (p50 and calls/s of one client); "
                              "the verdict uses the latter when measured",
                  "figure": "; ".join(figures) or None, "verdict": verdict,
                  "command": "make bench-edge; make loadtest-sweep", "input": "edge"})
    tflite, xnn = edge.get("tflite-fp32"), edge.get("executorch-xnnpack-fp32")
    r = ratio(tflite[0], xnn[0]) if tflite and xnn else None
    found.append({"claim": "TFLite is more mature than PyTorch's mobile path",
                  "measured": "what is measurable of it: batch-1 p50 and file size, TFLite fp32 against "
                              "ExecuTorch XNNPACK (both held to their framework's answers by tests/parity); "
                              "only TFLite has an int8 file here",
                  "figure": (f"TFLite {tflite[0]:.4f} ms / {tflite[3]:,} B vs ExecuTorch {xnn[0]:.4f} ms / "
                             f"{xnn[3]:,} B: latency {r:.2f}x") if r else None,
                  "verdict": None if r is None else (
                      "TFLite faster here" if r < 1 else "ExecuTorch as fast or faster here"),
                  "command": "make bench-edge", "input": "edge"})
    load = inputs["load"]
    figure = verdict = None
    if load:
        def best(prefix, setting=None):
            values = [(e["by_setting"].get(setting) if setting else e["capacity_rps"])
                      for t, e in load["endpoints"].items() if t.startswith(prefix)]
            values = [v for v in values if v is not None]
            return max(values) if values else None

        tf_best, ts_best = best("tfserving"), best("torchserve")
        tf_default, ts_default = best("tfserving", "default"), best("torchserve", "default")
        if tf_best is not None and ts_best is not None:
            figure = (f"best endpoint, better settings: TF Serving {tf_best:g} vs TorchServe {ts_best:g} req/s; "
                      f"default settings: {tf_default:g} vs {ts_default:g} req/s")
            if tf_best > 1.2 * ts_best:
                verdict = "TF Serving carries more load here"
            elif ts_best > 1.2 * tf_best:
                verdict = "TorchServe carries more load here"
            else:
                verdict = "about the same once tuned (within 20%)"
            if tf_default is not None and ts_default is not None and tf_default > 1.2 * ts_default:
                verdict += "; TF Serving more with default settings"
    found.append({"claim": "TF Serving is the production server",
                  "measured": "capacity at p99 <= 50 ms, cold start and memory of both servers; "
                              "TF Serving here is the project's compatible server unless "
                              "tensorflow_model_server is installed",
                  "figure": figure, "verdict": verdict, "command": "make loadtest-sweep", "input": "load"})
    return found


def section_claims(inputs) -> str:
    text = "## The claims, tested on this machine\n\n"
    rows = []
    for c in claims(inputs):
        if c["figure"] is None:
            rows.append([c["claim"], c["measured"], f"not measured: run `{c['command']}`", "-",
                         f"`{c['command']}`"])
        else:
            rows.append([c["claim"], c["measured"], c["figure"], c["verdict"], f"`{c['command']}`"])
    return text + table(["claim", "what was measured", "figure", "on this machine", "reproduce"], rows)
