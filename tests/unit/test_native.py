"""The native load generator's plumbing without servers: its command line, input file, CSV and export
reading, the ratios of settings, and what it says when it is not installed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import concurrent, native

# The header and a row exactly as perf_analyzer 2.41.0 writes them for a TF Serving target (-f).
CSV = ("Concurrency,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
       "64,1139.33,2,0,51405,79764,92802,164598\n")


def test_the_csv_report_gives_infer_per_second_and_client_percentiles_in_ms(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text(CSV)
    assert native.parse_csv(path) == {"concurrency": 64, "infer_per_s": 1139.3, "p50_ms": 51.405, "p90_ms": 79.764,
                                      "p95_ms": 92.802, "p99_ms": 164.598}
    path.write_text(CSV.splitlines()[0] + "\n")
    with pytest.raises(native.NativeError, match="wrote no measurement"):
        native.parse_csv(path)


def test_the_profile_export_counts_every_timed_request(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"experiments": [
        {"experiment": {"mode": "concurrency", "value": 64},
         "requests": [{"timestamp": 1, "response_timestamps": [2]}] * 5},
        {"experiment": {"mode": "concurrency", "value": 64},
         "requests": [{"timestamp": 3, "response_timestamps": [4]}]},
    ]}))
    assert native.count_requests(path) == 6


def test_the_input_files_hold_real_images_as_batches_of_one(tmp_path):
    images = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    # TF Serving: a folder with the first image's raw float32 bytes under the input's name, and its shape.
    flags = native.input_data("tfserving-grpc", images, "image", tmp_path / "tf")
    assert flags[0] == "--input-data" and flags[2:] == ["--shape", "image:1,8,8"]
    sent = np.frombuffer((Path(flags[1]) / "image").read_bytes(), dtype="<f4")
    assert sent.tolist() == images[0].ravel().tolist()
    # TorchServe: each step names a file holding the request body the project's REST client sends.
    flags = native.input_data("torchserve-rest", images, "image", tmp_path / "ts")
    data = json.loads(Path(flags[1]).read_text())
    (path,) = data["data"][1]["TORCHSERVE_INPUT"]
    assert json.loads(open(path).read()) == {"instances": [images[1].tolist()]}


def test_the_command_line_names_the_service_the_address_and_the_load(tmp_path):
    argv = native.command("tfserving-grpc", "127.0.0.1:9305", "digits", 64, 2.5, ["--input-data", "in"],
                          tmp_path / "r.csv", tmp_path / "e.json")
    assert argv[0] == str(native.BINARY)
    text = " ".join(argv)
    for part in ("--service-kind=tfserving", "-i grpc", "-u 127.0.0.1:9305", "-m digits", "--concurrency-range 64",
                 "--measurement-interval 2500", "--input-data in", f"--stability-percentage {native.STABILITY_PERCENT}",
                 f"-f {tmp_path / 'r.csv'}", f"--profile-export-file {tmp_path / 'e.json'}"):
        assert part in text
    argv = native.command("torchserve-rest", "127.0.0.1:9300", "digits", 8, 1, [], tmp_path, tmp_path,
                          headers={"Authorization": "Bearer k1"})
    assert "--service-kind=torchserve -i http -u 127.0.0.1:9300" in " ".join(argv)
    assert argv[-2:] == ["-H", "Authorization: Bearer k1"]
    with pytest.raises(native.NativeError, match="does not speak kserve-torch-v2-grpc; it speaks tfserving-grpc"):
        native.command("kserve-torch-v2-grpc", "127.0.0.1:1", "digits", 1, 1, [], tmp_path, tmp_path)


def test_a_missing_generator_names_the_make_target(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "VENV", tmp_path / ".venv-perf")
    monkeypatch.setattr(native, "BINARY", tmp_path / ".venv-perf" / "bin" / "perf_analyzer")
    monkeypatch.setattr(native.paths, "REPO_ROOT", tmp_path)
    with pytest.raises(native.NativeError,
                       match=r"\.venv-perf/bin/perf_analyzer is not installed: run `make setup`"):
        native.version()


@pytest.mark.concerns(*native.SERVICES)
@pytest.mark.skipif(not native.BINARY.exists(), reason="perf_analyzer is not installed: `make setup` "
                                                        "(for the servers) installs it; make test-fast does not")
def test_the_installed_generator_runs_here():
    assert native.version().startswith("Perf Analyzer Version 2.41.0")
    assert "cuda_runtime" in native.environment()["LD_LIBRARY_PATH"]


def test_each_setting_is_compared_with_the_first_in_the_same_run():
    rows = [{"target": "tfserving-grpc", "concurrency": 64, "setting": "default", "infer_per_s": 800.0},
            {"target": "tfserving-grpc", "concurrency": 64, "setting": "throughput", "infer_per_s": 2000.0},
            {"target": "tfserving-grpc", "concurrency": 16, "setting": "default", "infer_per_s": 700.0},
            {"target": "tfserving-grpc", "concurrency": 16, "setting": "throughput", "error": "stopped"}]
    assert concurrent.ratios(rows) == [{"target": "tfserving-grpc", "concurrency": 64, "setting": "throughput",
                                        "over": "default", "ratio": 2.5}]
