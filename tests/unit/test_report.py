"""The report from small made-up results: figures land in their sections, a missing input is named, charts are drawn."""
from __future__ import annotations

import json

from benchmarks import report


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
    write(root, "bench/edge.json", {"command": "python -m edge.bench", "results": [
        {"name": n, "framework": fw, "precision": "fp32", "bytes": b, "batch_1": {"p50_us": us, "p99_us": us * 2}}
        for n, fw, us, b in rows]})
    write(root, "bench/load-capacity.json", {
        "command": "python -m serving.load.sweep --seconds 3", "slo_p99_ms": 50.0, "step_seconds": 3.0,
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
        "command": "python -m serving.load.burst", "requests_per_connection": 5,
        "runs": [run("tfserving-rest", 64, 320, p99=12.0), run("tfserving-rest", 1000, 4019, timed_out=981),
                 run("torchserve-rest", 64, 320), run("torchserve-rest", 1000, 588, refused=4412, p99=1246.1)],
        "endpoints": {"tfserving-rest": {"largest_held": 64, "p99_ms_at_largest_held": 12.0,
                                         "largest_answered_in_full": 64, "largest_tried": 1000},
                      "torchserve-rest": {"largest_held": 1000, "p99_ms_at_largest_held": 1246.1,
                                          "largest_answered_in_full": 64, "largest_tried": 1000}}})


def test_report_shows_the_crowd_each_endpoint_holds(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "REPORT.md"
    made_up_burst(root)
    text = report.build(root, out)
    assert "| tfserving-rest | 64 | 12 | 64 | 1,000 |" in text
    assert "| torchserve-rest | 1,000 | 1,246.1 | 64 | 1,000 |" in text
    assert "| tfserving-rest | 320/320 | 4,019/5,000, **981 dropped** |" in text
    assert "| torchserve-rest | 320/320 | 588/5,000, 4,412 refused |" in text


def test_report_from_made_up_results_names_the_missing_ones(tmp_path):
    root, out = tmp_path / "artifacts", tmp_path / "site" / "REPORT.md"
    made_up(root)
    text = report.build(root, out)
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
    assert "*not measured: run `make bench-web`" in text and "*not measured: run `make bench-widths`" in text
    assert "one run on this 2-core machine" in text  # the cores of the machine the inputs name
    for png in ("training", "sizes", "latency", "memory"):
        assert (out.parent / "report" / f"{png}.png").stat().st_size > 1000
    assert not (out.parent / "report" / "widths.png").exists()


def test_report_with_nothing_measured_still_builds(tmp_path):
    out = tmp_path / "REPORT.md"
    (tmp_path / "artifacts" / "bench").mkdir(parents=True)
    (tmp_path / "artifacts" / "bench" / "edge.json").write_text("{truncated")  # unreadable counts as missing
    text = report.build(tmp_path / "artifacts", out)
    for command in ("make train", "make export", "make bench-edge", "make loadtest-sweep", "make loadtest-burst",
                    "make bench-widths"):
        assert f"not measured: run `{command}`" in text
    assert "| TensorFlow uses less memory |" in text
