"""What is particular to the edge artifacts: manifest entries, int8 quantization, batch sizes, delegation.

Their answers on the test split, against their source framework, are checked with every other
target's in tests/parity/test_every_target.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from core import manifest, paths, registry
from tests.conftest import runner_rows, target_param
from training import data

pytestmark = pytest.mark.concerns("edge")

RUNNERS = runner_rows()  # every row an edge runner runs over its file (or folder)


@pytest.fixture(scope="module")
def test_split(edge_artifacts):
    return data.load_split(paths.split_path(edge_artifacts))["test"]


@pytest.fixture(scope="module")
def predictions(edge_artifacts, test_split):
    """Each built runner row's predictor and its probabilities on the whole test split, in one batch."""
    out = {}
    built = manifest.load(edge_artifacts)
    for name in RUNNERS:
        if registry.TARGETS[name].artifact not in built:
            continue  # litert-torch's without .venv-litert-torch: its tests skip, naming why (target_param)
        predictor = registry.load(name, edge_artifacts)
        out[name] = (predictor, predictor.predict(test_split.x))
    return out


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_every_runner_artifact_is_recorded_and_verifies(name, edge_artifacts):
    target = registry.TARGETS[name]
    entry = manifest.load(edge_artifacts)[target.artifact]
    assert manifest.verify(target.artifact, edge_artifacts).exists() and entry["bytes"] > 0  # a file or a folder
    assert manifest.size_of(edge_artifacts / entry["path"]) == entry["bytes"]
    assert entry["framework"] == target.framework  # litert-torch's .tflite: torch
    assert entry["precision"] == target.precision
    assert entry["input_contract"] == manifest.input_contract(edge_artifacts)
    assert len(entry["sha256"]) == 64


def test_int8_tflite_answers_are_probabilities(predictions, test_split, spec):
    # Dequantized int8 outputs are still probabilities (steps of the output scale, 1/256).
    int8_probabilities = predictions["tflite-int8"][1]
    assert int8_probabilities.shape == (len(test_split), spec.num_classes)
    assert int8_probabilities.dtype == np.float32 and int8_probabilities.min() >= 0
    np.testing.assert_allclose(int8_probabilities.sum(axis=1), 1.0, atol=0.05)


def test_int8_quantization_parameters_are_recorded(edge_artifacts, spec):
    """The int8 file takes and gives float32; the manifest records the int8 tensors it quantizes to inside."""
    entries = manifest.load(edge_artifacts)
    assert entries["tflite_int8"]["io_dtype"] == entries["tflite_fp32"]["io_dtype"] == "float32"
    predictor = registry.load("tflite-int8", edge_artifacts)
    assert {np.dtype(predictor.input["dtype"]).name, np.dtype(predictor.output["dtype"]).name} == {"float32"}
    quantization = entries["tflite_int8"]["quantization"]
    assert quantization["input"]["dtype"] == quantization["output"]["dtype"] == "int8"
    # The input covers the raw range (0..16 for the digits) in 256 steps; softmax output 0..1 in steps of 1/256.
    assert quantization["input"]["scale"] == pytest.approx((spec.value_max - spec.value_min) / 255, rel=1e-3)
    assert quantization["input"]["zero_point"] == -128
    assert quantization["output"] == {"dtype": "int8", "scale": 1 / 256, "zero_point": -128}


@pytest.mark.parametrize("name", [target_param(name) for name in RUNNERS])
def test_any_batch_size_gives_the_same_rows(name, predictions, test_split):
    """Batch 1, odd sizes and a size past the first allocation: resized (TFLite) / dynamic (the others)."""
    predictor, whole = predictions[name]
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
