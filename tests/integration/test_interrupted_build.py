"""Ctrl-C during a build (SIGINT to the build's process group, as a terminal sends it): the artifacts
folder is left as it was or marked unfinished, the next build rebuilds exactly what is needed, and
the rebuilt target agrees with its reference (deploy/parity.py). The build graph's own rules on
small steps: tests/unit/test_build_interrupted.py."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core import manifest, paths
from core import spec as specs
from deploy import parity
from deploy.local import build
from serving.endpoints import free_endpoints
from tests.conftest import built, copy_trained, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def exported(trained_artifacts, tmp_path):
    """A copy of the session's trained digits with its ONNX export built: the state before the Ctrl-C."""
    return built(copy_trained(trained_artifacts, tmp_path / "artifacts"), "export-onnx")


@pytest.fixture
def bars(tmp_path):
    """A small second task (training/example_data.py: colour pictures of five named classes)."""
    from training import example_data

    data = tmp_path / "bars.npz"
    np.savez(data, **example_data.make(count=250))
    return data


def interrupt_build(root, arguments: list, under_way) -> str:
    """Run `python -m deploy.local.build` in a process group of its own, SIGINT the group once
    `under_way()` holds, and return what it printed."""
    log = root.parent / "build.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "deploy.local.build", "--artifacts", str(root), *arguments],
                                   cwd=paths.REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "DIGITS_ARTIFACTS": str(root)}, start_new_session=True)
        try:
            assert wait_for(lambda: under_way() or process.poll() is not None, seconds=300)
            assert process.poll() is None, f"the build ended before it could be interrupted:\n{log.read_text()}"
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert process.returncode != 0
    return log.read_text(errors="replace")


def onnx_agrees(root) -> None:
    (row,) = parity.run(root, free_endpoints(), names=["onnx-fp32"], progress=lambda line: None)
    assert row["passed"], row.get("problems")
    assert row["images"] == len(parity.test_split(root).y)


def test_ctrl_c_during_training_on_new_data_leaves_the_trained_model_whole(exported, bars):
    """`make train DATA=bars.npz`, Ctrl-C mid-epoch: it once left the new spec and split beside every
    old model, and the next build said "everything up to date" (the ONNX runner: "Invalid rank")."""
    root = exported
    before = {name: manifest.sha256_of(root / name) for name in ("spec.json", "data/split.npz", "torch", "tensorflow")}
    staged_spec = build.staging_path(root, "train") / "spec.json"
    output = interrupt_build(root, ["--force", "train", f"--train-args=--epochs 300 --seed 0 --data {bars}"],
                             lambda: staged_spec.exists() and time.sleep(2) is None)  # training is under way
    assert "build: [1/1] train: building (forced)" in output
    assert {name: manifest.sha256_of(root / name) for name in before} == before  # the digits, whole
    assert specs.load(root).model_name == "digits" and not build.unfinished_path(root, "train").exists()
    lines = []
    assert build.ensure(root, only=("export-onnx",), progress=lines.append) == {"train": "reused",
                                                                                "export-onnx": "reused"}
    onnx_agrees(root)
    # The new data again, to the end this time: trained, exported, and the ONNX file agrees on its split.
    results = build.ensure(root, only=("export-onnx",), args=["--epochs", "2", "--seed", "0", "--data", str(bars)],
                           progress=lines.append)
    assert results == {"train": "built", "export-onnx": "built"}
    assert specs.load(root).model_name == "bars" and not build.staging_path(root, "train").exists()
    onnx_agrees(root)


def test_ctrl_c_during_an_export_rebuilds_that_export_only(exported):
    root = exported
    mark = build.unfinished_path(root, "export-onnx")
    output = interrupt_build(root, ["--force", "export-onnx"], lambda: mark.exists() and time.sleep(1) is None)
    assert "export-onnx: building (forced)" in output and mark.exists()
    step = next(step for step in build.STEPS if step.name == "export-onnx")
    assert "never finished" in build.stale(step, root, [])
    lines = []
    assert build.ensure(root, only=("export-onnx",), progress=lines.append) == {"train": "reused",
                                                                                "export-onnx": "built"}
    assert any("export-onnx: building (it started" in line for line in lines) and not mark.exists()
    onnx_agrees(root)
