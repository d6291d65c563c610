"""The report from small made-up results: figures land in their sections, a missing input is named, charts are drawn."""
from __future__ import annotations

import json

from benchmarks.report import layout


def write(root, relative, data):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def made_up(root):
    write(root, "metrics.json", {
        "torch": {"test_accuracy": 0.9712, "params": 9802, "train_seconds": 41.5, "epochs": 25},
        "tensorflow": {"test_accuracy": 0.9688, "params": 9802, "train_seconds": 33.25, "epochs": 25},
        "twin_max_abs_diff": 1e-7})
    write(root, "manifest.json", {
        "tflite_int8": {"path": "tflite/digits_int8.tflite", "bytes": 17123, "framework": "tensorflow",
                        "precision": "int8"},
        "torchserve_mar": {"path": "torchserve/model-store/digits.mar", "bytes": 55161, "framework": "torch",
                           "precision": "fp32"}})
    rows = [("torch-eager", "torch", 40.0, 43519), ("keras-eager", "tensorflow", 400.0, 163278),
            ("tflite-fp32", "tensorflow", 4.0, 40000), ("executorch-xnnpack-fp32", "torch", 8.0, 50000)]
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge", "results": [
        {"name": n, "framework": fw, "precision": "fp32", "bytes": b, "batch_1": {"p50_us": us, "p99_us": us * 2}}
        for n, fw, us, b in rows]})
    write(root, "bench/load-capacity.json", {
        "command": "python -m benchmarks sweep --seconds 3", "slo_p99_ms": 50.0, "step_seconds": 3.0,
        "machine": {"platform": "Linux-test", "processor": "x86_64", "cpus": 2}, "tfserving": "the compatible server",
        "endpoints": {"torchserve-grpc": {"capacity_rps": 150.0, "setting": "tuned", "framework": "torch",
                                          "by_setting": {"default": 100.0, "tuned": 150.0}},
                      "tfserving-grpc": {"capacity_rps": 337.5, "setting": "default", "framework": "tensorflow",
                                         "by_setting": {"default": 337.5, "tuned": 225.0}}},
        "in_process": {"torch": {"calls_per_s": 2500.0, "p50_ms": 0.4},
                       "tensorflow": {"calls_per_s": 1800.0, "p50_ms": 0.5}},
        "servers": {"default": {"torchserve": {"cold_start_s": 6.5, "idle_mb": 450.0, "peak_mb": 800.0},
                                "tfserving": {"cold_start_s": 9.0, "idle_mb": 380.0, "peak_mb": 400.0}}},
        "server_settings": {"default": {"name": "default"},
                            "tuned": {"name": "tuned", "torchserve": {"batchSize": 16}}}})


def made_up_burst(root):
    def run(target, connections, answered, refused=0, timed_out=0, p99=50.0):
        sent = connections * 5
        return {"target": target, "connections": connections, "requests_per_connection": 5, "sent": sent,
                "answered": answered, "refused": refused, "reset": 0, "timed_out": timed_out, "errors": 0,
                "held": timed_out == 0, "p50_ms": p99 / 2, "p99_ms": p99}

    write(root, "bench/burst.json", {
        "command": "python -m benchmarks burst", "requests_per_connection": 5,
        "runs": [run("tfserving-rest", 64, 320, p99=12.0), run("tfserving-rest", 1000, 4019, timed_out=981),
                 run("torchserve-rest", 64, 320), run("torchserve-rest", 1000, 588, refused=4412, p99=1246.1)],
        "endpoints": {"tfserving-rest": {"largest_held": 64, "p99_ms_at_largest_held": 12.0,
                                         "largest_answered_in_full": 64, "largest_tried": 1000},
                      "torchserve-rest": {"largest_held": 1000, "p99_ms_at_largest_held": 1246.1,
                                          "largest_answered_in_full": 64, "largest_tried": 1000}}})


def test_report_shows_the_crowd_each_endpoint_holds(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up_burst(root)
    text = layout.build(root, out)
    assert "| tfserving-rest | 64 | 12 | 64 | 1,000 |" in text
    assert "| torchserve-rest | 1,000 | 1,246.1 | 64 | 1,000 |" in text
    assert "| tfserving-rest | 320/320 | 4,019/5,000, **981 dropped** |" in text
    assert "| torchserve-rest | 320/320 | 588/5,000, 4,412 refused |" in text


def test_report_from_made_up_results_names_the_missing_ones(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "site" / "REPORT.md"
    made_up(root)
    text = layout.build(root, out)
    assert out.read_text() == text
    # figures from the inputs, in their sections
    assert "| torch | 0.971 | 9,802 | 41.5 | 25 |" in text
    assert "| tflite_int8 | tensorflow | int8 | 17,123 |" in text
    assert "| torchserve-grpc | torch | 100 | 150 | tuned |" in text
    assert "| torchserve | default | 6.500 | 450 | 800 |" in text
    # the claims, with their ratios and verdicts
    assert "TF Serving 400.0 MiB vs TorchServe 800.0 MiB: 0.50x | holds here" in text
    assert ("eager: Keras 0.400 ms vs PyTorch 0.040 ms (10.00x); served model in-process: SavedModel signature "
            "0.500 ms vs PyTorch 0.400 ms p50 (1.25x), 1,800 vs 2,500 calls/s (0.72x) | "
            "comparable here (within 2x)") in text
    assert "latency 0.50x | TFLite faster here" in text
    assert ("best endpoint, better settings: TF Serving 337.5 vs TorchServe 150 req/s; "
            "default settings: 337.5 vs 100 req/s | "
            "TF Serving carries more load here; TF Serving more with default settings") in text
    # what was not measured says how to measure it
    assert "*not measured: run `make bench-serving` (writes `artifacts/bench/serving.json`)*" in text
    assert "*not measured: run `make bench-web`" in text and "*not measured: run `make bench TOOL=widths`" in text
    assert "one run on this 2-core machine" in text  # the cores of the machine the inputs name
    for png in ("training", "sizes", "latency", "memory"):
        assert (out.parent / "report" / f"{png}.png").stat().st_size > 1000
    assert not (out.parent / "report" / "widths.png").exists()


def test_report_with_nothing_measured_still_builds(tmp_path):
    out = tmp_path / "REPORT.md"
    (tmp_path / "artifacts" / "bench").mkdir(parents=True)
    (tmp_path / "artifacts" / "bench" / "edge.json").write_text("{truncated")  # unreadable counts as missing
    text = layout.build(tmp_path / "artifacts", out)
    for command in ("make train", "make export", "make bench-edge", "make loadtest-sweep", "make bench TOOL=burst",
                    "make bench TOOL=widths"):
        assert f"not measured: run `{command}`" in text
    assert "| TensorFlow uses less memory |" in text


def test_compilation_training_memory_and_distributed_claims(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    compiled = [("torch-eager", "torch", 200.0, 5e3), ("torch-compile", "torch", 100.0, 30e6),
                ("keras-eager", "tensorflow", 4000.0, 50e3), ("tf-function", "tensorflow", 250.0, 400e3),
                ("tf-xla", "tensorflow", 150.0, 900e3)]
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge", "results": [
        {"name": n, "framework": fw, "precision": "fp32", "bytes": 1000,
         "batch_1": {"p50_us": us, "p99_us": us * 2, "first_call_us": first},
         "batch_32": {"p50_us": us * 4, "p99_us": us * 8, "first_call_us": first / 2}}
        for n, fw, us, first in compiled]})

    def run(framework, mode, width, rss, epoch):
        return {"framework": framework, "mode": mode, "width": width, "params": 9802 * width ** 2,
                "epoch_seconds": [epoch * 5, epoch, epoch], "first_epoch_s": epoch * 5, "steady_epoch_s": epoch,
                "start_rss_mb": rss / 2, "peak_rss_mb": rss, "test_accuracy": 0.9}

    write(root, "bench/training.json", {
        "command": "python -m benchmarks training", "epochs": 3, "batch_size": 32, "threads": 1,
        "train_examples": 6285, "runs": [
            run("torch", "eager", 1, 320.0, 0.4), run("torch", "eager", 8, 400.0, 2.0),
            run("torch", "compiled", 1, 420.0, 1.9), run("tensorflow", "graph", 1, 730.0, 0.6),
            run("tensorflow", "graph", 8, 800.0, 2.5), run("tensorflow", "xla", 1, 735.0, 1.8),
            {"framework": "tensorflow", "mode": "eager", "width": 8, "error": "over 900 s"}]})
    write(root, "bench/distributed.json", {
        "command": "python -m benchmarks distributed", "epochs": 25, "machine": {"cpus": 2},
        "engines": {"torch": "DDP", "tensorflow": "MWMS"}, "caveat": "one 2-core machine",
        "results": {str(w): {"global_batch": 32 * w, **{fw: {
            "steady_epoch_s": s, "samples_per_s": 6285 / s, "first_epoch_s": s, "test_accuracy": acc,
            "scaling_efficiency": round(6285 / s / (w * 6285 / s1), 3)} for fw, s, s1, acc in (
                ("torch", 1.0 if w == 1 else 0.8, 1.0, 0.99), ("tensorflow", 2.0 if w == 1 else 2.5, 2.0, 0.995))}}
            for w in (1, 2)}})
    text = layout.build(root, out)
    assert ("Keras eager 4.000 ms -> tf.function 0.250 ms (16.0x faster), XLA 0.150 ms; PyTorch eager 0.200 ms -> "
            "torch.compile 0.100 ms; best TensorFlow graph (tf-xla) / torch.compile: 1.50x; compile (first call): "
            "tf.function 400 ms, XLA 900 ms, torch.compile 30.0 s | graph mode makes TensorFlow faster here; "
            "compiled paths within 2x of each other | `make bench-edge` |") in text
    assert ("width 1: TensorFlow 730 MiB vs PyTorch 320 MiB (2.28x); width 8: TensorFlow 800 MiB vs PyTorch 400 MiB "
            "(2.00x); what training adds above the imported framework (peak - RSS at start): width 1: TensorFlow +365 "
            "vs PyTorch +160 MiB, width 8: TensorFlow +400 vs PyTorch +200 MiB; compiled training at width 1: torch "
            "compiled 420 MiB, tensorflow xla 735 MiB | does not hold here (PyTorch lower at every width) | "
            "`make bench TOOL=training` |") in text
    assert ("2 workers vs 1 on 2 shared cores: PyTorch DDP efficiency 0.62 (7,856 samples/s), TensorFlow MWMS 0.40 "
            "(2,514 samples/s); test accuracy after 25 epochs at 2 workers: 0.9900 / 0.9950 | not easier here") in text
    assert "PyTorch DDP kept more of its speed on 2 workers | `make bench TOOL=distributed` |" in text
    assert "| tensorflow | eager | 8 | - | - | - | - | over 900 s |" in text
    assert "| torch | 2 | 64 | 0.800 | 7,856.2 | 0.625 | 0.990 |" in text
    assert "| tf-xla | tensorflow | 900 | 0.150 | 450 | 0.600 |" in text
    for png in ("compiled", "training-memory", "training-epoch"):
        assert (out.parent / "report" / f"{png}.png").stat().st_size > 1000
    (root / "bench" / "training.json").unlink()
    (root / "bench" / "distributed.json").unlink()
    text = layout.build(root, out)
    assert "not measured: run `make bench TOOL=training` (writes `artifacts/bench/training.json`)" in text
    assert "| tf.distribute makes it easier to scale training across devices (vs PyTorch DDP) |" in text
    assert "not measured: run `make bench TOOL=distributed`" in text


def edge_row(name, framework, precision, runtime_us, runner_us):
    """An edge.json row as benchmarks/edge_runtimes.py writes it: the runner's figures, its runtime's call, ratio."""
    row = {"name": name, "framework": framework, "precision": precision, "kind": "edge", "bytes": 1000,
           "measures": "runner and runtime"}
    for size, scale in ((1, 1), (32, 10)):
        runner, runtime = runner_us * scale, runtime_us * scale
        row[f"batch_{size}"] = {"n": 5, "p50_us": runner, "p99_us": runner * 2, "first_call_us": runner * 3,
                                "runtime": {"n": 5, "p50_us": runtime, "p99_us": runtime * 2},
                                "runner_over_runtime": round(runner / runtime, 2)}
    return row


def test_edge_section_sets_each_runtime_beside_its_runner(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    eager = {"name": "torch-eager", "framework": "torch", "precision": "fp32", "kind": "reference", "bytes": 5,
             "batch_1": {"p50_us": 40.0, "p99_us": 80.0, "first_call_us": 900.0, "runtime": None,
                         "runner_over_runtime": None},
             "batch_32": {"p50_us": 90.0, "p99_us": 99.0, "first_call_us": 900.0, "runtime": None,
                          "runner_over_runtime": None}}
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge --iterations 5", "batches": [1, 32],
                                    "results": [
        eager, edge_row("onnx-fp32", "torch", "fp32", 10.0, 25.0),
        edge_row("tflite-fp32", "tensorflow", "fp32", 4.0, 8.0),
        edge_row("tflite-int8", "tensorflow", "int8", 2.0, 6.0)]})
    text = layout.build(root, out)
    section = text.split("## Edge runtimes")[1].split("\n## ")[0]
    assert "| b1 runtime p50 us | b1 runner p50 us | b1 runner / runtime | b32 runtime p50 us |" in section
    assert "| onnx-fp32 | torch | fp32 | 1,000 | 10.0 | 25.0 | 2.50x | 100.0 | 250.0 | 2.50x |" in section
    assert "| tflite-int8 | tensorflow | int8 | 1,000 | 2.0 | 6.0 | 3.00x | 20.0 | 60.0 | 3.00x |" in section
    assert "torch-eager" not in section  # one figure, runtime == runner: in the latency section
    assert "batch 1: runner 6.0 vs 8.0 us (0.75x), runtime alone 2.0 vs 4.0 us (0.50x)" in section
    assert "int8 is no slower than fp32 through the runner at any batch size measured" in section
    assert "`python -m benchmarks edge --iterations 5`" in section


def test_edge_section_sets_openvino_int8_after_its_fp32_twin(tmp_path):
    """The OpenVINO rows as the edge benchmark writes them: int8 moved beside fp32, their sizes, one sentence."""
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    int8 = {**edge_row("openvino-int8", "torch", "int8", 50.0, 300.0), "bytes": 36380}
    fp32 = {**edge_row("openvino-fp32", "torch", "fp32", 60.0, 350.0), "bytes": 52505}
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge --targets openvino-fp32 openvino-int8",
                                    "batches": [1, 32], "results": [int8, edge_row("onnx-fp32", "torch", "fp32",
                                                                                   10.0, 25.0), fp32]})
    section = layout.build(root, out).split("## Edge runtimes")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| openvino-")]
    assert rows == ["| openvino-fp32 | torch | fp32 | 52,505 | 60.0 | 350.0 | 5.83x | 600.0 | 3,500.0 | 5.83x |",
                    "| openvino-int8 | torch | int8 | 36,380 | 50.0 | 300.0 | 6.00x | 500.0 | 3,000.0 | 6.00x |"]
    assert ("OpenVINO int8 against fp32 (the int8 IR quantizes its float32 input in a FakeQuantize node and its "
            "softmax runs in float32, so both runners do the same work): batch 1: runner 300.0 vs 350.0 us (0.86x)"
            in section)


def test_edge_section_says_where_int8_is_slower(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge", "batches": [1, 32], "results": [
        edge_row("tflite-fp32", "tensorflow", "fp32", 4.0, 8.0),
        edge_row("tflite-int8", "tensorflow", "int8", 3.0, 9.0)]})
    assert ("int8 is slower than fp32 through the runner at batch 1, 32 while the interpreter alone is not"
            in layout.build(root, out))
    write(root, "bench/edge.json", {"command": "python -m benchmarks edge", "results": [
        {"name": "tflite-fp32", "framework": "tensorflow", "precision": "fp32", "bytes": 1,
         "batch_1": {"p50_us": 8.0, "p99_us": 9.0}}]})  # measured before the runtime-only figures
    assert "holds no runtime-only figures" in layout.build(root, out)


def made_up_search(root):
    def point(name, settings, rest, grpc, error=None):
        targets = {t: {"one_client": {"p50_ms": p50, "p99_ms": p50 * 2}, "capacity_rps": cap}
                   for t, (p50, cap) in (("torchserve-rest", rest), ("torchserve-grpc", grpc))}
        return {"name": name, "knobs": {}, "settings": settings, "targets": {} if error else targets,
                **({"error": error} if error else {})}

    points = [point("default", {}, (8.0, 500.0), (7.0, 1000.0)),
              point("d1", {"torchserve": {"maxBatchDelay": 1}}, (3.0, 600.0), (2.5, 1500.0)),
              point("b1", {"torchserve": {"batchSize": 1}}, (2.0, 450.0), (2.0, 700.0)),
              point("w2", {"torchserve": {"minWorkers": 2}}, (0, 0), (0, 0), error="did not start: port in use")]
    entry = {"framework": "torch", "endpoints": ["torchserve-rest", "torchserve-grpc"], "grid": "small",
             "batches_requests": True, "points": points, "profiles": {"latency": "b1", "throughput": "d1"},
             "in_process": {"target": "torch-eager", "p50_ms": 0.25}}
    write(root, "bench/search.json", {
        "command": "python -m benchmarks search", "seconds": 480.0, "latency_seconds": 1.0, "slo_p99_ms": 50.0,
        "search": {"step_seconds": 1.5, "precision": 0.1}, "tfserving": "the compatible server",
        "rule": {"point": "p", "throughput": "t", "latency": "l"}, "servers": {"torchserve": entry}})


def test_report_shows_the_settings_search_its_profiles_and_goals(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up_search(root)
    text = layout.build(root, out)
    assert "## Settings search: which settings to run (`make tune`)" in text
    assert "then bisected to within 10%" in text
    assert "| default | checked-in | 8.000 | 7.000 | 500 | 1,000 | default |" in text
    assert '| d1 | `{"torchserve": {"maxBatchDelay": 1}}` | 3.000 | 2.500 | 600 | 1,500 | throughput |' in text
    assert "| b1 |" in text and "| 450 | 700 | latency |" in text
    assert "failed: did not start: port in use" in text
    assert ("maxBatchDelay 1: torchserve-rest 8 ms vs 3 ms; torchserve-grpc 7 ms vs 2.5 ms: the wait costs a lone "
            "client 5.00 ms of p50") in text
    # goals: 2.0 / 0.25 = 8x <= 15x; throughput 600/500 = 1.2x < 1.5x on REST, 1500/1000 = 1.5x on gRPC
    assert ("| TorchServe latency profile one-client p50 <= 15x in-process | b1: 2 ms vs torch-eager 0.25 ms = 8.0x "
            "| met |") in text
    assert ("| torchserve-rest throughput capacity >= 1.5x default | d1 600 vs default 500 req/s = 1.20x "
            "| not met: the best grid point carried 1.20x") in text
    assert ("| torchserve-grpc throughput capacity >= 1.5x default | d1 1500 vs default 1000 req/s = 1.50x "
            "| met |") in text
    assert ("Latency profile b1: one-client p50 2 ms vs the default's 8 ms, capacity 450 vs 500 req/s "
            "(weakest endpoint): it trades load for latency here") in text
    assert (out.parent / "report" / "search-torchserve.png").stat().st_size > 1000
    assert "not measured: run `make bench TOOL=search`" not in text


def test_report_without_a_search_says_how_to_run_it(tmp_path):
    text = layout.build(tmp_path / "artifacts", tmp_path / "REPORT.md")
    assert "*not measured: run `make bench TOOL=search` (writes `artifacts/bench/search.json`)*" in text


def made_up_web(cold, p50, p99, **extra):
    return {"cold_start": {"p50_ms": cold}, "warm_model": {"p50_ms": p50, "p99_ms": p99}, **extra}


def test_report_puts_every_page_runtime_in_the_latency_and_cold_start_tables(tmp_path):
    """web.json of `make bench-web`: one row per runtime (TF.js per backend) with its framework and page weight."""
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up(root)
    write(root, "bench/web.json", {"command": "python -m benchmarks web", "shared_page_bytes": 52000, "runtimes": {
        "tfjs-wasm": made_up_web(850.0, 0.4, 1.5, runtime="tfjs", framework="tensorflow",
                                 page_bytes={"runtime_total": 2110000}),
        "tfjs-webgl": {"runtime": "tfjs", "error": "webgl is not available"},
        "onnxruntime-web": made_up_web(1290.0, 0.22, 0.42, runtime="onnxruntime-web", framework="torch",
                                       page_bytes={"runtime_total": 14366000}),
        "litert-torch": made_up_web(870.0, 0.07, 0.25, runtime="litert-torch", framework="torch",
                                    page_bytes={"runtime_total": 9739000})}})
    text = layout.build(root, out)
    latency = text.split("## Latency per target")[1].split("\n## ")[0]
    assert "| chromium-onnxruntime-web | torch | browser (model only) | 0.220 | 0.420 |" in latency
    assert "| chromium-litert-torch | torch | browser (model only) | 0.070 | 0.250 |" in latency
    assert "| chromium-tfjs-wasm | tensorflow | browser (model only) | 0.400 | 1.500 |" in latency
    assert "webgl" not in latency  # a backend that did not start has no figures
    cold = text.split("## Peak memory and cold start")[1].split("\n## ")[0]
    assert "the shared page adds 52,000 bytes" in cold
    assert "| chromium-litert-torch | torch | 870 | 9,739,000 |" in cold
    assert "| chromium-tfjs-wasm | tensorflow | 850 | 2,110,000 |" in cold


def test_report_reads_the_older_web_json_of_tfjs_backends(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up(root)
    write(root, "bench/web.json", {"command": "python -m benchmarks web", "backends": {
        "wasm": made_up_web(600.0, 0.235, 0.72), "webgl": {"error": "no webgl"}}})
    text = layout.build(root, out)
    assert "| chromium-tfjs-wasm | tensorflow | browser (model only) | 0.235 | 0.720 |" in text
    assert "| chromium-tfjs-wasm | tensorflow | 600 | - |" in text


def test_capacity_pinned_and_unpinned_with_a_generator_limited_figure_marked(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"

    def limit(capacity, limited=False):
        return {"capacity_rps": capacity, "generator_limited": limited, "why": "send lag p99 20 ms > 10 ms" if limited
                else "", "stopped_at_rps": capacity * 1.5, "generator_cpu_cores": 0.95, "generator_cpu_share": 0.95,
                "servers_cpu_cores": {"torchserve": 0.8, "tfserving": 0.01},
                "send_lag_p99_ms": 20.0 if limited else 1.0}

    write(root, "bench/load-capacity.json", {
        "command": "python -m benchmarks sweep --pin both", "slo_p99_ms": 50.0, "step_seconds": 2.0,
        "search": {"start_rps": 10.0, "max_rps": 3000.0, "factor": 2.0, "precision": 0.1},
        "machine": {"platform": "Linux-test", "processor": "x86_64", "cpus": 2},
        "pinning": {"modes": ["unpinned", "pinned"], "headline": "unpinned", "generator_cpus": [0], "server_cpus": [1]},
        "generator_limits": {"cpu_share": 0.9, "send_lag_p99_ms": 10.0},
        "endpoints": {"torchserve-grpc": {
            "capacity_rps": 150.0, "setting": "default", "framework": "torch", "by_setting": {"default": 150.0},
            "generator_limited": True, "by_mode": {"unpinned": {"default": limit(150.0, limited=True)},
                                                   "pinned": {"default": limit(100.0)}}}},
        "in_process": {}, "servers": {"default": {}}, "server_settings": {"default": {"name": "default"}}})
    text = layout.build(root, out)
    assert "| endpoint | framework | default req/s | default req/s (pinned) | better |" in text
    assert "| torchserve-grpc | torch | 150 (generator-limited) | 100 | default |" in text
    assert "the load generator on core(s) [0], the servers on [1]" in text
    assert ("the rate doubled until a step failed (p99 > 50 ms or a request not answered), then bisected until the "
            "first failing rate was within 10% of the goodput") in text
    assert ("| torchserve-grpc | unpinned | default | 225 | 0.950 | 0.950 | 20 | "
            "torchserve 0.8, tfserving 0.01 |") in text
    assert "| torchserve-grpc | pinned | default | 150 | 0.950 | 0.950 | 1.000 |" in text


def made_up_handwriting(root):
    def scores(drawn, printed):
        return {kind: {"accuracy": value, "count": 40,
                       "per_digit": {str(d): (0.5 if d == 7 and value < 0.9 else value) for d in range(10)}}
                for kind, value in (("drawn", drawn), ("printed", printed))}

    write(root, "bench/handwriting.json", {
        "command": "python -m benchmarks handwriting --per-style 2", "goal": {"drawn": 0.95, "printed": 0.9},
        "cases": {"drawn": 66, "printed": 90}, "page_framework": "tensorflow",
        "models": {"plain": {"test_accuracy": {"torch": 0.983, "tensorflow": 0.986},
                             "train_seconds": {"torch": 7.0, "tensorflow": 14.5},
                             "frameworks": {"torch": scores(0.61, 0.7), "tensorflow": scores(0.625, 0.675)}},
                   "augmented": {"test_accuracy": {"torch": 0.994, "tensorflow": 0.997},
                                 "train_seconds": {"torch": 9.0, "tensorflow": 18.0},
                                 "frameworks": {"torch": scores(0.97, 1.0), "tensorflow": scores(0.94, 0.95)}}}})


def test_report_shows_drawn_and_printed_digits_before_and_after_augmentation(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up_handwriting(root)
    text = layout.build(root, out)
    section = text.split("## Reading digits people draw and print (augmentation)")[1].split("\n## ")[0]
    assert "66 digits drawn with the mouse on the page's pad, 90 printed in held-out fonts" in section
    assert "`python -m benchmarks handwriting --per-style 2`" in section
    assert "| 7 | 0.500 | 0.940 | 0.500 | 0.950 |" in section  # tensorflow's per-digit figures, before -> after
    assert "| 0 | 0.625 | 0.940 | 0.675 | 0.950 |" in section
    assert "| torch | 0.610 | 0.970 | 0.700 | 1.000 | 0.983 | 0.994 | 7.000 | 9.000 |" in section
    assert "drawn 94.0% (goal 95%: missed); printed 95.0% (goal 90%: met)" in section


def test_report_without_the_handwriting_figures_says_how_to_measure_them(tmp_path):
    text = layout.build(tmp_path / "artifacts", tmp_path / "REPORT.md")
    assert "*not measured: run `make bench TOOL=handwriting` (writes `artifacts/bench/handwriting.json`)*" in text


def test_the_edge_benchmark_and_report_set_int8_beside_fp32():
    """benchmarks/edge_runtimes.py measures every edge target in the registry, and REPORT.md's edge table puts each
    int8 row after its fp32 twin, with one int8-against-fp32 sentence per runtime (both frameworks)."""
    from benchmarks import edge_runtimes
    from benchmarks.report.edge import beside_twins, int8_against_fp32
    from core import registry

    twins = {"tflite-int8": "tflite-fp32", "executorch-xnnpack-int8": "executorch-xnnpack-fp32",
             "onnx-int8": "onnx-fp32", "openvino-int8": "openvino-fp32"}

    assert set(twins) | set(twins.values()) <= set(edge_runtimes.names())

    def row(name, runner):
        figures = {"p50_us": runner, "p99_us": runner, "runtime": {"p50_us": runner / 2}}
        return {"name": name, "batch_1": figures}

    rows = [row(name, 10.0 if name.endswith("fp32") else 8.0) for name in edge_runtimes.names()
            if registry.TARGETS[name].kind == "edge"]
    ordered = [r["name"] for r in beside_twins(rows)]
    for int8, fp32 in twins.items():
        assert ordered.index(int8) == ordered.index(fp32) + 1
    text = int8_against_fp32(rows, [1])
    for title in ("TFLite int8 against fp32", "ExecuTorch XNNPACK int8 against fp32", "ONNX Runtime int8 against fp32",
                  "OpenVINO int8 against fp32"):
        assert title in text
    assert text.count("int8 is no slower than fp32") == len(twins)


def test_servers_side_by_side_breakdown_and_which_server(tmp_path):
    root = tmp_path / "artifacts"
    write(root, "bench/serving.json", {"command": "python -m benchmarks serving", "results": [
        {"target": n, "framework": fw, "p50_ms": p50, "p99_ms": p50 * 2} for n, fw, p50 in (
            ("torchserve-rest", "torch", 2.0), ("kserve-torch-v2-rest", "torch", 1.0),
            ("kserve-torch-v2-grpc", "torch", 0.5), ("tfserving-rest", "tensorflow", 1.5),
            ("kserve-tf-v2-rest", "tensorflow", 3.0), ("torch-eager", "torch", 0.1),
            ("savedmodel", "tensorflow", 0.3))]})
    write(root, "bench/kserve-breakdown.json", {"command": "python -m benchmarks kserve-breakdown", "results": [
        {"framework": "torch", "stage": stage, "p50_ms": p50, "p99_ms": p50 * 2, "x_model": p50 / 0.1}
        for stage, p50 in (("model", 0.1), ("HTTP round trip", 0.5), ("floor", 0.8), ("kserve", 1.2))]})
    text = layout.build(root, tmp_path / "REPORT.md")
    assert "| kserve-torch | V2 REST | torch | 1.000 | 2.000 | 10.0x |" in text
    assert "| torchserve | REST | torch | 2.000 | 4.000 | 20.0x |" in text
    assert "| torch | floor | 0.800 | 1.600 | 8.0x |" in text
    assert "torch: KServe V2 REST 12.0x the model (goal 10x: not met); the bare ASGI floor 8.0x" in text
    assert "PyTorch: KServe V2 REST p50 1.00 ms against torchserve-rest 2.00 ms (2.0x faster)" in text
    assert "TensorFlow: KServe V2 REST p50 3.00 ms against tfserving-rest 1.50 ms (2.0x slower)" in text
    assert "1.00 (V2 REST) / 0.50 (V2 gRPC)" in text and "limited maintenance" in text


def test_server_sections_say_how_to_measure_what_is_missing(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    text = layout.build(root, tmp_path / "REPORT.md")
    assert "## Where KServe's V2 REST latency goes\n\n*not measured: run `make bench TOOL=kserve-breakdown`" in text
    assert "## Every server beside the model in-process\n\n*not measured: run `make bench-serving`" in text
    assert ("## Where TorchServe's REST latency goes, and what can be cut\n\n"
            "*not measured: run `make bench TOOL=torchserve-breakdown`") in text
    assert "## Many requests in flight: default settings against the measured profiles\n\n*not measured: run " \
           "`make bench-serving`" in text


def test_torchserve_breakdown_takes_one_request_apart_and_says_whether_the_goal_is_met(tmp_path):
    root = tmp_path / "artifacts"
    pieces = [("client JSON (the request written, the answer read)", 20.0), ("HTTP and frontend I/O", 980.0),
              ("frontend job queue", 40.0),
              ("frontend <-> Python worker", 2000.0), ("handler: decode (JSON to array, the contract check)", 70.0),
              ("handler: model", 160.0), ("handler: encode (the answers)", 20.0)]
    stage = {"client": "keep-alive", "rounds": 2, "server": {"requests": 900, "frontend_us": 2290.0, "queue_us": 40.0}}
    write(root, "bench/torchserve-breakdown.json", {
        "command": "python -m benchmarks torchserve-breakdown", "rounds": 2, "goal_x": 20,
        "in_process": {"target": "torch-eager", "p50_ms": 0.1, "p99_ms": 0.2},
        "stages": [
            {**stage, "stage": "latency profile", "changes": {}, "p50_ms": 3.0, "p99_ms": 9.0, "x_in_process": 30.0},
            {**stage, "stage": "handler timers", "changes": {"torchserve_env": {"DIGITS_HANDLER_TIMERS": "1"}},
             "p50_ms": 3.2, "p99_ms": 9.5, "x_in_process": 32.0, "mean_us": 3290.0,
             "pieces": [{"piece": p, "mean_us": us, "share": round(us / 3290.0, 3)} for p, us in pieces]},
            {**stage, "stage": "metrics in the log", "changes": {"torchserve_config": {"metrics_mode": "log"}},
             "server": {}, "p50_ms": 1.9, "p99_ms": 5.0, "x_in_process": 19.0}]})
    text = layout.build(root, tmp_path / "REPORT.md")
    assert "## Where TorchServe's REST latency goes, and what can be cut" in text
    assert "| in-process (torch-eager) | - | 0.100 | 0.200 | 1.0x | - | - |" in text
    assert "| latency profile | keep-alive | 3.000 | 9.000 | 30.0x | 2,290 | 40 |" in text
    assert '| metrics in the log | `{"torchserve_config": {"metrics_mode": "log"}}` | 1.900 | 5.000 | 19.0x | - | - |' \
        in text
    assert "| frontend <-> Python worker | 2,000 | 61% |" in text and "| handler: model | 160 | 5% |" in text
    assert "the client's round trip 3,290 us" in text
    assert ("The latency profile's REST p50 is 30.0x the model in-process (goal 20x: not met); the fastest stage, "
            '"metrics in the log", 19.0x.') in text


def test_many_in_flight_rows_with_their_ratio_to_the_default(tmp_path):
    root = tmp_path / "artifacts"
    row = {"target": "tfserving-grpc", "concurrency": 64, "p50_ms": 50.0, "p99_ms": 120.0,
           "generator_cpu": {"cpu_cores": 0.1}, "generator_limited": False}
    write(root, "bench/concurrent.json", {
        "command": "python -m benchmarks concurrent", "generator": "Perf Analyzer Version 2.41.0",
        "window_seconds": 3.0, "tfserving": "the compatible server",
        "rows": [{**row, "setting": "default", "infer_per_s": 1000.0},
                 {**row, "setting": "throughput", "infer_per_s": 2500.0, "generator_cpu": {"cpu_cores": 1.9},
                  "generator_limited": True},
                 {"target": "tfserving-grpc", "concurrency": 16, "setting": "default",
                  "error": "perf_analyzer stopped"}],
        "ratios": [{"target": "tfserving-grpc", "concurrency": 64, "setting": "throughput", "over": "default",
                    "ratio": 2.5}]})
    text = layout.build(root, tmp_path / "REPORT.md")
    assert "| tfserving-grpc | 64 | default | 1,000 | 50 | 120 | 0.10 | - |" in text
    assert "| tfserving-grpc | 64 | throughput | 2,500 | 50 | 120 | 1.90 (limited) | 2.50x |" in text
    assert "| tfserving-grpc | 16 | default | failed | - | - | - | perf_analyzer stopped |" in text
    assert "NVIDIA's perf_analyzer (Perf Analyzer Version 2.41.0)" in text
    assert ("- tfserving-grpc, 64 in flight: the throughput profile 2,500 infer/s, 2.50x the default's 1,000 "
            "(goal >= 2x the default and >= 2,000 infer/s): met.") in text


def test_in_flight_goals_say_when_they_are_not_met_and_name_the_latency_profile():
    from benchmarks.report.servers import in_flight_goals

    rows = [{"target": "tfserving-grpc", "concurrency": 64, "setting": name, "infer_per_s": rate}
            for name, rate in (("default", 1650.0), ("latency", 990.0), ("throughput", 2050.0))]
    rows.append({"target": "torchserve-rest", "concurrency": 64, "setting": "default", "error": "stopped"})
    assert in_flight_goals(rows) == (
        "\n- tfserving-grpc, 64 in flight: the throughput profile 2,050 infer/s, 1.24x the default's 1,650 (goal "
        ">= 2x the default and >= 2,000 infer/s): not met; 2.07x the latency profile's 990.\n")


def test_scale_section_sets_replicas_and_batching_side_by_side():
    from benchmarks.report.scale import section_scale

    def line(server, target, config, replicas, batching, capacity, idle):
        return {"server": server, "target": target, "config": config, "replicas": replicas, "batching": batching,
                "capacity_rps": capacity, "rps_per_core": capacity / 2, "one_client_p50_ms": 3.0, "idle_mb": idle,
                "peak_mb": idle + 50, "error": None}

    scale = {"command": "python -m benchmarks scale", "cores": 2, "slo_p99_ms": 50.0, "table": [
        line("rayserve", "rayserve-v2-rest", "1 replica, batching on", 1, True, 100.0, 900.0),
        line("rayserve", "rayserve-v2-rest", "4 replicas, batching on", 4, True, 150.0, 1800.0),
        line("kserve-torch", "kserve-torch-v2-rest", "default", None, None, 200.0, 340.0)]}
    text = section_scale({"scale": scale})
    assert "| rayserve-v2-rest | 4 replicas, batching on | 150 | 75 |" in text
    assert "150 req/s (4 replicas, batching on)" in text and "4 replicas gave 1.50x" in text
    assert "Each replica added about 300 MB" in text
    assert "make bench TOOL=scale" in section_scale({"scale": None})
