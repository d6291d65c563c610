"""The starter template's promise: change the network and every target follows, untouched.

A second architecture (width 2: twice the channels and hidden units) is trained for one epoch into
its own artifacts folder, exported to every target by the same exporters, served by the same
runner on free ports, its web page built, and held to the same parity checks as the reference
model (deploy/parity.py over deploy/targets.py). No target's code knows which network it runs.
"""
from __future__ import annotations

import json

import pytest

from deploy import parity, targets
from tests.conftest import built, free_endpoints, serve_folder

pytestmark = pytest.mark.slow
WIDTH = 2


@pytest.fixture(scope="module")
def second(tmp_path_factory):
    """A width-2 model trained (1 epoch) and exported to every artifact, in its own folder (the build graph)."""
    return built(tmp_path_factory.mktemp("width2"), "export-edge", "export-web",
                 args=["--epochs", "1", "--width", str(WIDTH), "--seed", "0"])


def test_a_wider_network_runs_through_every_target(second):
    from training.model_torch import DigitsCNN, count_params
    from training.spec import ModelConfig

    spec = json.loads((second / "spec.json").read_text())
    assert spec["model"]["width"] == WIDTH
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["torch"]["params"] == count_params(DigitsCNN(ModelConfig(width=WIDTH)))
    assert metrics["torch"]["params"] > count_params(DigitsCNN(ModelConfig(width=1)))  # really another network
    with serve_folder(second, free_endpoints()) as running:
        rows = parity.run(second, running.endpoints)
    assert [row["target"] for row in rows] == list(targets.TARGETS)
    failed = {row["target"]: row["problems"] for row in rows if not row["passed"]}
    assert not failed, failed
    # The web page served the new model too: its graph model is what Chromium ran.
    chromium = next(row for row in rows if row["target"] == "tfjs-chromium")
    assert chromium["where"].startswith(f"Chromium: {running.endpoints.url('web_demo')}/")
