"""Every edge artifact gives its source framework's answers on the whole saved test split.

fp32 (TFLite, ExecuTorch XNNPACK and portable, ONNX): identical labels and probabilities within
1e-5 of the eager model it came from (Keras for TFLite, PyTorch for the others). int8 TFLite:
accuracy within 1 point of the fp32 file, and the same label on at least 98% of the images.
"""
from __future__ import annotations

import numpy as np
import pytest

from edge import eager, registry
from training import data, manifest, paths
from training.predictor import Predictor

FP32_TOLERANCE = 1e-5
INT8_ACCURACY_DROP = 0.01  # at most 1 percentage point below fp32
INT8_AGREEMENT = 0.98
FP32_IDS = [artifact_id for artifact_id in registry.EDGE_ARTIFACTS if artifact_id.endswith("_fp32")]


@pytest.fixture(scope="module")
def test_split(edge_artifacts):
    return data.load_split(paths.split_path(edge_artifacts))["test"]


@pytest.fixture(scope="module")
def eager_probabilities(edge_artifacts, test_split):
    """The source frameworks' probabilities on the test split, by framework."""
    return {framework: cls(edge_artifacts).predict(test_split.x) for framework, cls in eager.BASELINES.items()}


@pytest.fixture(scope="module")
def predictions(edge_artifacts, test_split):
    """Each edge artifact's probabilities on the whole test split, in one batch."""
    out = {}
    for artifact_id in registry.EDGE_ARTIFACTS:
        predictor = registry.load_predictor(artifact_id, edge_artifacts)
        out[artifact_id] = (predictor, predictor.predict(test_split.x))
    return out


def test_every_edge_artifact_is_recorded_and_verifies(edge_artifacts):
    entries = manifest.load(edge_artifacts)
    for artifact_id in registry.EDGE_ARTIFACTS:
        entry = entries[artifact_id]
        assert manifest.verify(artifact_id, edge_artifacts).stat().st_size == entry["bytes"] > 0
        assert entry["framework"] == ("tensorflow" if artifact_id.startswith("tflite") else "torch")
        assert entry["precision"] == artifact_id.rsplit("_", 1)[1]
        assert entry["input_contract"] == manifest.INPUT_CONTRACT
        assert len(entry["sha256"]) == 64


@pytest.mark.parametrize("artifact_id", FP32_IDS)
def test_fp32_artifact_matches_its_source_framework(artifact_id, predictions, eager_probabilities, test_split):
    predictor, got = predictions[artifact_id]
    assert isinstance(predictor, Predictor)
    expected = eager_probabilities[predictor.framework]
    assert got.shape == (len(test_split), 10) and got.dtype == np.float32
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(got - expected).max() <= FP32_TOLERANCE


def test_int8_tflite_keeps_fp32_accuracy_and_labels(predictions, test_split):
    fp32 = predictions["tflite_fp32"][1].argmax(axis=1)
    int8_probabilities = predictions["tflite_int8"][1]
    int8 = int8_probabilities.argmax(axis=1)
    accuracy_fp32, accuracy_int8 = np.mean(fp32 == test_split.y), np.mean(int8 == test_split.y)
    assert accuracy_int8 >= accuracy_fp32 - INT8_ACCURACY_DROP, (accuracy_int8, accuracy_fp32)
    assert np.mean(int8 == fp32) >= INT8_AGREEMENT
    # Dequantized int8 outputs are still probabilities (steps of the output scale, 1/256).
    assert int8_probabilities.dtype == np.float32 and int8_probabilities.min() >= 0
    np.testing.assert_allclose(int8_probabilities.sum(axis=1), 1.0, atol=0.05)


def test_int8_quantization_parameters_are_recorded(edge_artifacts):
    quantization = manifest.load(edge_artifacts)["tflite_int8"]["quantization"]
    assert quantization["input"]["dtype"] == quantization["output"]["dtype"] == "int8"
    # The input covers the raw range 0..16 in 256 steps; softmax output is 0..1 in steps of 1/256.
    assert quantization["input"]["scale"] == pytest.approx(16 / 255, rel=1e-3)
    assert quantization["input"]["zero_point"] == -128
    assert quantization["output"] == {"dtype": "int8", "scale": 1 / 256, "zero_point": -128}


@pytest.mark.parametrize("artifact_id", list(registry.EDGE_ARTIFACTS))
def test_any_batch_size_gives_the_same_rows(artifact_id, predictions, test_split):
    """Batch 1, odd sizes and a size past the first allocation: resized (TFLite) / dynamic (the others)."""
    predictor, whole = predictions[artifact_id]
    start = 0
    for size in (1, 7, 33, 1):
        part = predictor.predict(test_split.x[start : start + size])
        np.testing.assert_allclose(part, whole[start : start + size], atol=1e-6)
        start += size


def test_executorch_runs_entirely_on_xnnpack(edge_artifacts):
    delegation = manifest.load(edge_artifacts)["executorch_xnnpack_fp32"]["delegation"]
    assert delegation["share"] == 1.0 and delegation["fallback"] == {}
    assert delegation["delegated_ops"] == delegation["counted_ops"] > 0
    assert "executorch_portable_fp32" in manifest.load(edge_artifacts)


def test_executorch_export_fails_loudly_when_an_operator_falls_back():
    """The delegation check can fail: cumsum has no XNNPACK kernel and stays on the portable ones."""
    import torch

    from edge.executorch.export import DelegationError, delegation_report, lower, require_full_delegation

    class WithCumsum(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x).cumsum(dim=1)

    exported = torch.export.export(WithCumsum(), (torch.rand(2, 8),))
    report = delegation_report(lower(exported, "xnnpack", max_batch=2))
    assert report["share"] < 1.0 and any("cumsum" in op for op in report["fallback"])
    with pytest.raises(DelegationError, match="cumsum"):
        require_full_delegation(report)
