"""The starter template's promise: another task and another network, and every target follows.

A second task unlike the digits (training/example_data.py: (N, 12, 16, 3) uint8 colour images,
five named classes) is trained a few epochs on the second reference network (`--arch resnet`)
into its own artifacts folder, exported to every target by the same exporters, served by the same
runner on free ports with its web page, and held to the same parity checks as the digits
(deploy/parity.py over core/registry.py). No target's code knows which task or network it runs:
everything it needs comes from the spec training derived from the data.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from core import registry
from core import spec as specs
from deploy import parity
from tests.conftest import SECOND_TASK_NAME, built, edge_steps, free_endpoints, serve_folder

pytestmark = [pytest.mark.slow, pytest.mark.concerns("all")]


@pytest.fixture(scope="module")
def second(second_task):
    """The session's second task (tests/conftest.py) with its page, exported to every other artifact too (the build
    graph)."""
    return built(second_task, "export-web", *edge_steps())


@pytest.fixture(scope="module")
def running(second):
    with serve_folder(second, free_endpoints()) as running:
        yield running


def test_the_spec_is_the_data_s(second):
    from training import example_data

    spec = specs.load(second)
    assert spec.item_shape == (12, 16, 3) and spec.layout == "NHWC"
    assert spec.labels == list(example_data.LABELS) and spec.model_name == SECOND_TASK_NAME
    assert (spec.value_min, spec.value_max) == (0.0, 255.0) and spec.reduction["kind"] == "resize"
    assert spec.model["arch"] == "resnet"
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["torch"]["params"] == metrics["tensorflow"]["params"]
    assert metrics["twin_max_abs_diff"] <= 1e-5
    assert min(metrics["torch"]["test_accuracy"], metrics["tensorflow"]["test_accuracy"]) > 0.8


def test_every_target_answers_the_second_task_like_its_source_framework(second, running):
    rows = parity.run(second, running.endpoints)
    assert [row["target"] for row in rows] == list(registry.TARGETS)
    failed = {row["target"]: row["problems"] for row in rows if not row["passed"]}
    assert not failed, failed
    assert all(row["accuracy"] > 0.8 for row in rows)
    chromium = next(row for row in rows if row["target"] == "tfjs-chromium")
    assert chromium["where"].startswith(f"Chromium: {running.endpoints.url('web_demo')}/")  # the served page
    print("\n" + parity.markdown(rows))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).resize((64, 48), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_picture_is_read_with_the_task_s_labels(second, running):
    """A larger PNG of a test image through TorchServe: resized the spec's way, named by the spec's labels."""
    from core import paths
    from serving.torchserve.client import TorchServeRest
    from training import data

    test = data.load_split(paths.split_path(second))["test"]
    spec = specs.load(second)
    reference = registry.load("torch-eager", second)
    client = TorchServeRest(running.endpoints, root=second)
    right = 0
    for image, label in zip(test.x[:10], test.y[:10], strict=False):
        (prediction,) = client.predict_image(_png(image))["predictions"]
        assert prediction["label"] in spec.labels and len(prediction["probabilities"]) == spec.num_classes
        right += prediction["label"] == spec.labels[label]
    assert right >= 8  # enlarged pictures still read right
    # The page's rows name the same label set: what the spec says, nothing else.
    page_spec = json.loads((second / "web" / "spec.json").read_text())
    assert page_spec["labels"] == spec.labels and reference.spec.labels == spec.labels
