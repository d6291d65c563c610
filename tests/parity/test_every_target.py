"""Every registered target gives its source framework's answers on the saved test split.

The golden cases are the whole test split; each target (core/registry.py) predicts it in one
batch and is held to the eager model of the framework that trained its weights: fp32 targets to
identical labels and probabilities within 1e-4, int8 to 98% label agreement and accuracy within
1 point. The checks are deploy/parity.py's, the same `make parity` runs. The servers and the demo
page are the session's (tests/conftest.py `served`); the edge files are exported once per session.
"""
from __future__ import annotations

import numpy as np
import pytest

from core import registry
from core.predictor import Predictor
from deploy import parity

pytestmark = [pytest.mark.slow, pytest.mark.concerns("all")]


@pytest.fixture(scope="module")
def deployed(served, edge_artifacts):
    """Everything built and running over one folder: the state `make deploy-all` leaves."""
    return served


@pytest.fixture(scope="module")
def split(deployed):
    return parity.test_split(deployed.root)


@pytest.fixture(scope="module")
def expected(deployed, split):
    return parity.references(deployed.root, split.x)


def test_every_kind_of_target_is_registered():
    kinds = {target.kind for target in registry.TARGETS.values()}
    assert kinds == set(registry.KINDS)
    assert {"tfjs-node", "tfjs-chromium", "torchserve-grpc", "tfserving-rest", "tflite-int8", "torch-compile",
            "tf-function", "tf-xla"} <= set(registry.TARGETS)
    for name, target in registry.TARGETS.items():
        assert registry.reference_for(name) == registry.REFERENCES[target.framework]
    # Every row of the page is a browser target held to its source framework, the litert-torch file too.
    assert {name: registry.reference_for(name) for name in registry.names("browser")} == {
        "onnxruntime-web-chromium": "torch-eager", "onnxruntime-web-int8-chromium": "torch-eager",
        "litert-torch-chromium": "torch-eager", "tfjs-node": "keras-eager",
        "tfjs-chromium": "keras-eager", "litert-chromium": "keras-eager"}
    assert registry.TARGETS["litert-torch-fp32"].kind == "edge"
    assert registry.reference_for("litert-torch-fp32") == "torch-eager"


@pytest.mark.parametrize("name", list(registry.TARGETS))
def test_target_matches_its_source_framework(name, deployed, split, expected):
    row = parity.evaluate(name, deployed.root, deployed.endpoints, split, expected)
    assert row["passed"], f"{name}: {'; '.join(row['problems'])}"
    assert row["accuracy"] > 0.8  # a trained model, not noise
    if row["precision"] == "fp32":
        assert row["label_agreement"] == 1.0 and row["max_abs_diff"] <= parity.FP32_TOLERANCE
    else:
        assert row["judged_rows"] > 0.9 * len(split.y)  # a confident model: nearly every row is judged
        assert row["judged_label_agreement"] >= parity.INT8_AGREEMENT
    if registry.TARGETS[name].kind != "reference":
        assert row["artifact_bytes"] > 0  # its file is in the manifest


def test_the_browser_target_runs_the_served_page_in_chromium(deployed, split, spec):
    predictor = registry.load("tfjs-chromium", root=deployed.root, endpoints=deployed.endpoints)
    assert isinstance(predictor, Predictor)
    # The session runs the demo server, so the target uses that page, where `make serve` puts it.
    assert predictor.url == f"{deployed.endpoints.url('web_demo')}/"
    assert registry.where("tfjs-chromium", deployed.root, deployed.endpoints).startswith(f"Chromium: {predictor.url}")
    probabilities = predictor.predict(split.x[:3])
    assert predictor.backend == "wasm"  # the page's first choice starts in headless Chromium
    assert probabilities.shape == (3, spec.num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="lie in"):
        predictor.predict(split.x[:1] + 100)


def test_a_failing_target_is_reported_not_hidden():
    """The checks can fail: a wrong label, a drift past 1e-4, and int8 past its limits."""
    y = np.array([0, 1, 2, 3])
    reference = np.eye(10, dtype=np.float32)[y]
    assert parity.judge("fp32", reference, reference, y)["passed"]
    drifted = reference.copy()
    drifted[0, 0] -= 2e-4
    assert "max abs diff" in parity.judge("fp32", drifted, reference, y)["problems"][0]
    wrong = np.eye(10, dtype=np.float32)[[0, 1, 2, 4]]
    problems = parity.judge("fp32", wrong, reference, y)["problems"]
    assert problems[0] == "1 labels differ from the reference"
    int8 = parity.judge("int8", wrong, reference, y)
    assert not int8["passed"] and int8["label_agreement"] == 0.75
    assert any("accuracy" in problem for problem in int8["problems"])
    assert "answered float64" in parity.judge("fp32", reference.astype(np.float64), reference, y)["problems"][0]


def test_labels_are_judged_only_where_the_reference_can_tell_them_apart():
    """A low-confidence model: near-ties may swap labels within the tolerance (fp32) or one int8 step."""
    y = np.array([0, 1, 2, 3])
    flat = np.full((4, 5), 0.2, np.float32)
    flat[:, 0] += 1e-3  # class 0 ahead by less than one int8 step (1/256) on every row
    flat[3, 1] += 0.1  # row 3: class 1 clearly ahead
    flat /= flat.sum(axis=1, keepdims=True)
    swapped = flat.copy()
    swapped[:3, [0, 1]] = swapped[:3, [1, 0]]  # the close rows flip
    int8 = parity.judge("int8", swapped, flat, y, step=1 / 256)
    assert int8["passed"] and int8["judged_rows"] == 1 and int8["judged_label_agreement"] == 1.0
    flipped = swapped.copy()
    flipped[3, [1, 2]] = flipped[3, [2, 1]]  # the confident row flips too: that is a failure
    problems = parity.judge("int8", flipped, flat, y, step=1 / 256)["problems"]
    assert "label agreement 0.0000 < 0.98 on the 1 rows" in problems[0]
    near = np.array([[0.50001, 0.49999], [0.9, 0.1]], np.float32)  # row 0: a near-tie in fp32
    swap = np.array([[0.49999, 0.50001], [0.9, 0.1]], np.float32)  # within the tolerance, its label swaps
    fp32 = parity.judge("fp32", swap, near, np.array([0, 0]))
    assert fp32["passed"] and fp32["judged_rows"] == 1


def test_make_parity_writes_the_matrix(deployed, capsys):
    """`make parity`'s entry point on the session's deployment, restricted to a few targets for time."""
    import json

    chosen = ["torch-eager", "onnx-fp32", "tfserving-grpc", "tflite-int8"]  # in the table's order, as parity runs them
    env = deployed.endpoints.as_environment()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        parity.main(["--artifacts", str(deployed.root), "--targets", " ".join(chosen)])
    out = capsys.readouterr().out
    report = json.loads((deployed.root / "parity.json").read_text())
    assert report["passed"] and [row["target"] for row in report["targets"]] == chosen
    markdown = (deployed.root / "parity.md").read_text()
    assert markdown.splitlines()[0].startswith("| target | framework | precision | answers at |")
    assert len(markdown.splitlines()) == 2 + len(chosen) and markdown in out
    assert f"grpc://127.0.0.1:{deployed.endpoints.ports['tfserving_grpc']}" in markdown
