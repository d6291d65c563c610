"""`make train-distributed`: both frameworks' own data-parallel engines, as local processes.

One short run of each framework (2 workers, `training.distributed`) ends in a normal trained model:
the same files, manifest entries, twin check and metrics.json fields as `make train`, and the
exports and targets work on it. Bad set-ups get a clear error instead of a hang: WORKERS < 1, a
port in use, a worker killed mid-run (the others stop, the rank is named).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from core import manifest, paths
from training import distributed, train

pytestmark = pytest.mark.slow

# The short run: 2 workers, 5 epochs (measured on the 2-core machine: test accuracy 0.972 torch,
# 0.981 TensorFlow; 10 epochs gave 0.989 / 0.992 in twice the time, the full 25 epochs 0.992 / 0.994).
SHORT_EPOCHS = 5
ACCURACY = 0.95


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    metrics = distributed.main(["--workers", "2", "--epochs", str(SHORT_EPOCHS), "--artifacts", str(root)])
    return root, metrics


def test_a_distributed_run_is_a_normal_trained_model(distributed_run, trained_artifacts):
    root, metrics = distributed_run
    ordinary = json.loads(paths.metrics_path(trained_artifacts).read_text())
    written = json.loads(paths.metrics_path(root).read_text())
    assert set(written) == set(ordinary) | {"distributed"}  # the same fields, plus how it was trained
    for framework in ("torch", "tensorflow"):
        assert set(written[framework]) == set(ordinary[framework])
        assert written[framework]["epochs"] == SHORT_EPOCHS and len(written[framework]["epoch_seconds"]) == SHORT_EPOCHS
        assert written[framework]["test_accuracy"] >= ACCURACY, written[framework]
    assert written["distributed"]["workers"] == 2 and written["distributed"]["global_batch"] == 64
    assert written["twin_max_abs_diff"] <= train.TWIN_TOLERANCE
    for artifact in ("torch_checkpoint", "keras_model"):
        assert manifest.verify(artifact, root).exists()
    assert json.loads(paths.spec_path(root).read_text())["model"]["width"] == 1


def test_exports_and_targets_work_on_it(distributed_run):
    from deploy import parity
    from edge.export import export_all

    root, _ = distributed_run
    export_all(root, targets=("tflite", "onnx"))
    split = parity.test_split(root)
    expected = parity.references(root, split.x)
    for name in ("torch-eager", "keras-eager", "onnx-fp32", "tflite-fp32"):
        row = parity.evaluate(name, root, None, split, expected)
        assert row["passed"] and row["accuracy"] >= ACCURACY, row


def test_fewer_than_one_worker_is_refused(capsys):
    with pytest.raises(SystemExit) as stopped:
        distributed.parse_args(["--workers", "0"])
    assert stopped.value.code == 2
    assert "WORKERS (--workers) must be at least 1, got 0" in capsys.readouterr().err


def test_a_port_in_use_is_named_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind((distributed.HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(SystemExit) as stopped:
            distributed.main(["--workers", "2", "--port", str(port), "--artifacts", str(tmp_path)])
    assert f"port 127.0.0.1:{port} is in use" in str(stopped.value)
    assert time.monotonic() - began < 30
    assert not list((tmp_path / "run" / "distributed").glob("*.pid"))  # no worker was started


@pytest.mark.parametrize("framework", ["torch", "tensorflow"])
def test_a_dead_worker_stops_the_others_and_is_named(framework, tmp_path):
    """Rank 1 is killed (SIGKILL) mid-run: the launcher stops rank 0 and names rank 1, within the grace period."""
    command = [sys.executable, "-m", "training.distributed", "--workers", "2", "--frameworks", framework,
               "--epochs", "500", "--artifacts", str(tmp_path), "--grace", "10"]
    launcher = subprocess.Popen(command, cwd=paths.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    stage = distributed.stage_dir(tmp_path)
    try:
        deadline = time.monotonic() + 180
        while not (pids := {r: stage / f"{framework}-rank{r}.pid" for r in (0, 1)}) or not all(
                p.exists() and p.read_text() for p in pids.values()):
            assert launcher.poll() is None, launcher.communicate()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.5)
        time.sleep(3)  # into training
        os.kill(int(pids[1].read_text()), signal.SIGKILL)
        killed = time.monotonic()
        out, err = launcher.communicate(timeout=120)
        stopped_after = time.monotonic() - killed
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {framework}: ") and "rank 1 of 2" in last, last
    assert stopped_after < 60, f"the launcher took {stopped_after:.0f} s to stop"
    rank0 = int(pids[0].read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(rank0, 0)  # the surviving rank was stopped too
