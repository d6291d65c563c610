"""The common PyTorch-vs-TensorFlow claims, each held against what was measured on this machine.

Every claim says what was measured, the figure (a ratio of two figures from the same run), what
it means here by a stated rule, and the command that reproduces it; a claim whose input is missing
says "not measured" with that command.
"""
from __future__ import annotations

from benchmarks.report.figures import compile_figures, edge_latency, ratio, server_memory, table, training_runs
from core import registry, servers

# Each framework's own server (core/servers.py rows marked `native`): TF Serving and TorchServe.
TF_SERVER, TORCH_SERVER = servers.native("tensorflow"), servers.native("torch")
TF_LABEL, TORCH_LABEL = servers.label(TF_SERVER), servers.label(TORCH_SERVER)


def claims(inputs) -> list[dict]:
    """Each common claim: what was measured, the figure, what it says here, and the command."""
    found = []
    memory = server_memory(inputs)
    tf_mb, torch_mb = (memory.get(TF_SERVER) or {}).get("peak_mb"), (memory.get(TORCH_SERVER) or {}).get("peak_mb")
    r = ratio(tf_mb, torch_mb)
    found.append({"claim": "TensorFlow uses less memory",
                  "measured": "peak RSS of each server's process tree under the same load (default settings)",
                  "figure": f"{TF_LABEL} {tf_mb} MiB vs {TORCH_LABEL} {torch_mb} MiB: {r:.2f}x" if r else None,
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
                              "int8 files exist on both sides (TFLite; ExecuTorch XNNPACK and ONNX), "
                              "each set beside its fp32 twin in the edge section",
                  "figure": (f"TFLite {tflite[0]:.4f} ms / {tflite[3]:,} B vs ExecuTorch {xnn[0]:.4f} ms / "
                             f"{xnn[3]:,} B: latency {r:.2f}x") if r else None,
                  "verdict": None if r is None else (
                      "TFLite faster here" if r < 1 else "ExecuTorch as fast or faster here"),
                  "command": "make bench-edge", "input": "edge"})
    load = inputs["load"]
    figure = verdict = None
    if load:
        def best(server, setting=None):
            """The best capacity among `server`'s endpoints (its targets, core/registry.py)."""
            values = [(e["by_setting"].get(setting) if setting else e["capacity_rps"])
                      for t, e in load["endpoints"].items()
                      if t in registry.TARGETS and registry.TARGETS[t].server == server]
            values = [v for v in values if v is not None]
            return max(values) if values else None

        tf_best, ts_best = best(TF_SERVER), best(TORCH_SERVER)
        tf_default, ts_default = best(TF_SERVER, "default"), best(TORCH_SERVER, "default")
        if tf_best is not None and ts_best is not None:
            figure = (f"best endpoint, better settings: {TF_LABEL} {tf_best:g} vs {TORCH_LABEL} {ts_best:g} req/s; "
                      f"default settings: {tf_default:g} vs {ts_default:g} req/s")
            if tf_best > 1.2 * ts_best:
                verdict = f"{TF_LABEL} carries more load here"
            elif ts_best > 1.2 * tf_best:
                verdict = f"{TORCH_LABEL} carries more load here"
            else:
                verdict = "about the same once tuned (within 20%)"
            if tf_default is not None and ts_default is not None and tf_default > 1.2 * ts_default:
                verdict += f"; {TF_LABEL} more with default settings"
    found.append({"claim": "TF Serving is the production server",
                  "measured": "capacity at p99 <= 50 ms, cold start and memory of both servers; "
                              "TF Serving here is the project's compatible server unless "
                              "tensorflow_model_server is installed",
                  "figure": figure, "verdict": verdict, "command": "make loadtest-sweep", "input": "load"})
    return found + more_claims(inputs)


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


def graph_compilation(inputs) -> dict:
    """TensorFlow's graph mode and XLA against torch.compile: warm batch-1 p50 and the compile (first call)."""
    f = compile_figures(inputs)
    claim = {"claim": "TensorFlow's graph mode and XLA make it faster; torch.compile has closed the gap",
             "measured": "batch-1 p50 (one thread) of each framework eager and compiled, in-process: Keras eager, "
                         "tf.function, XLA; PyTorch eager, torch.compile; the first call (the compile) apart",
             "figure": None, "verdict": None, "command": "make bench-edge", "input": "edge"}
    names = ("keras-eager", "tf-function", "tf-xla", "torch-eager", "torch-compile")
    if not all(name in f for name in names):
        return claim
    p50 = {name: f[name]["p50_ms"] for name in names}
    best_tf = min(("tf-function", "tf-xla"), key=p50.get)
    gap = p50[best_tf] / p50["torch-compile"]
    claim["figure"] = (
        f"Keras eager {p50['keras-eager']:.3f} ms -> tf.function {p50['tf-function']:.3f} ms "
        f"({p50['keras-eager'] / p50['tf-function']:.1f}x faster), XLA {p50['tf-xla']:.3f} ms; PyTorch eager "
        f"{p50['torch-eager']:.3f} ms -> torch.compile {p50['torch-compile']:.3f} ms; best TensorFlow graph "
        f"({best_tf}) / torch.compile: {gap:.2f}x; compile (first call): tf.function "
        f"{f['tf-function']['first_ms']:,.0f} ms, XLA {f['tf-xla']['first_ms']:,.0f} ms, torch.compile "
        f"{f['torch-compile']['first_ms'] / 1e3:,.1f} s")
    faster = p50["tf-function"] < p50["keras-eager"]
    claim["verdict"] = ("graph mode makes TensorFlow faster here" if faster else "graph mode is not faster here") + (
        "; compiled paths within 2x of each other" if 0.5 <= gap <= 2 else
        "; compiled TensorFlow still slower than compiled PyTorch (over 2x)" if gap > 2 else
        "; compiled TensorFlow over 2x faster than compiled PyTorch") + (
        "; torch.compile slower than eager PyTorch at batch 1" if p50["torch-compile"] > p50["torch-eager"] else "")
    return claim


def training_memory(inputs) -> dict:
    """Peak RSS of the training process, each framework's default training mode, at the smallest and largest width."""
    runs = training_runs(inputs)
    claim = {"claim": "TensorFlow uses less memory; PyTorch's dynamic graphs consume more (training)",
             "measured": "peak RSS of the training process (its own process, same network, split, batch, epochs, "
                         "one thread), each framework's default: PyTorch eager, Keras fit (tf.function graph)",
             "figure": None, "verdict": None, "command": "make bench TOOL=training", "input": "training"}
    widths = sorted({w for (fw, mode, w) in runs if (fw, mode) in (("torch", "eager"), ("tensorflow", "graph"))})
    pairs = [(w, runs.get(("tensorflow", "graph", w)), runs.get(("torch", "eager", w))) for w in widths]
    pairs = [(w, tf, pt) for w, tf, pt in pairs if tf and pt]
    if not pairs:
        return claim
    parts = [f"width {w}: TensorFlow {tf['peak_rss_mb']:,.0f} MiB vs PyTorch {pt['peak_rss_mb']:,.0f} MiB "
             f"({tf['peak_rss_mb'] / pt['peak_rss_mb']:.2f}x)" for w, tf, pt in (pairs[0], pairs[-1])[:len(pairs)]]
    ends = (pairs[0], pairs[-1])[:len(pairs)]
    growth = [(w, tf["peak_rss_mb"] - tf["start_rss_mb"], pt["peak_rss_mb"] - pt["start_rss_mb"]) for w, tf, pt in ends]
    parts.append("what training adds above the imported framework (peak - RSS at start): " + ", ".join(
        f"width {w}: TensorFlow +{g_tf:,.0f} vs PyTorch +{g_pt:,.0f} MiB" for w, g_tf, g_pt in growth))
    compiled = [r for (fw, mode, w), r in runs.items() if mode in ("compiled", "xla") and w == pairs[0][0]]
    if compiled:
        parts.append("compiled training at width {}: {}".format(pairs[0][0], ", ".join(
            f"{r['framework']} {r['mode']} {r['peak_rss_mb']:,.0f} MiB" for r in compiled)))
    claim["figure"] = "; ".join(parts)
    ratios = [tf["peak_rss_mb"] / pt["peak_rss_mb"] for _, tf, pt in pairs]
    claim["verdict"] = ("holds here (TensorFlow lower at every width)" if all(r < 1 for r in ratios) else
                        "does not hold here (PyTorch lower at every width)" if all(r > 1 for r in ratios) else
                        "mixed: depends on the width") + (
        "; the part training adds is smaller in TensorFlow" if all(g_tf < g_pt for _, g_tf, g_pt in growth) else "")
    return claim


def distributed_training(inputs) -> dict:
    """Both engines at 1 and 2 workers on this machine: efficiency, accuracy, and what it took to run them."""
    claim = {"claim": "tf.distribute makes it easier to scale training across devices (vs PyTorch DDP)",
             "measured": "the same training at 1 and 2 local workers: PyTorch DDP (gloo, torchrun) and TensorFlow "
                         "MultiWorkerMirroredStrategy; samples/s, scaling efficiency, test accuracy; what each "
                         "engine needed from the training loop",
             "figure": None, "verdict": None, "command": "make bench TOOL=distributed", "input": "distributed"}
    dist = inputs["distributed"]
    two = (dist or {}).get("results", {}).get("2")
    if not two or "scaling_efficiency" not in two["torch"]:
        return claim
    t, k = two["torch"], two["tensorflow"]
    claim["figure"] = (f"2 workers vs 1 on {dist['machine']['cpus']} shared cores: PyTorch DDP efficiency "
                       f"{t['scaling_efficiency']:.2f} ({t['samples_per_s']:,.0f} samples/s), TensorFlow MWMS "
                       f"{k['scaling_efficiency']:.2f} ({k['samples_per_s']:,.0f} samples/s); test accuracy after "
                       f"{dist['epochs']} epochs at 2 workers: {t['test_accuracy']:.4f} / {k['test_accuracy']:.4f}")
    better = "PyTorch DDP" if t["scaling_efficiency"] > k["scaling_efficiency"] else "TensorFlow MWMS"
    claim["verdict"] = (f"not easier here: Keras 3 `fit` does not run under MultiWorkerMirroredStrategy "
                        f"(keras-team/keras#20585), so TensorFlow needed a custom loop while DDP wrapped the "
                        f"existing one; {better} kept more of its speed on 2 workers")
    return claim


def more_claims(inputs) -> list[dict]:
    return [graph_compilation(inputs), training_memory(inputs), distributed_training(inputs)]
