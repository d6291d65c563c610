"""The PyTorch side's int8 files against their fp32 twins, on the digits and on a colour task.

    .venv/bin/python -m pytest tests/parity/test_int8.py -x -q -s     # -s: the measured table

`executorch-xnnpack-int8` (PT2E on XNNPACK, edge/executorch/quantize.py) is held to
`executorch-xnnpack-fp32`, `onnx-int8` (ONNX Runtime static QDQ, edge/onnx/quantize.py) to `onnx-fp32`,
`openvino-int8` (NNCF post-training quantization, edge/openvino/quantize.py) to `openvino-fp32`:
on the WHOLE test split, accuracy against the true labels within 1 percentage point of the twin's and
label agreement with it, probabilities that sum to 1, a smaller file, and the facts the manifest
records (precision, delegation, int8 layers, the float32 input and output). Both tasks are built
through the build graph, by the same exporters: the session's digits model (8x8 grey, 10 classes,
the CNN) and a colour task made here (16x24 RGB, 7 classes, the ResNet with BatchNorm and a residual
add), so nothing may assume the digits' shape, classes or network.
"""
from __future__ import annotations

import numpy as np
import pytest

from core import manifest, paths, registry
from core import spec as specs
from deploy import parity
from tests.conftest import built
from training import data

pytestmark = [pytest.mark.slow, pytest.mark.concerns("int8")]

# int8 -> its fp32 twin: every PyTorch-side int8 edge row and the fp32 row named like it (onnx-int8 -> onnx-fp32).
# TFLite's int8 file has tests of its own (tests/parity/test_edge_parity.py).
TWINS = {name: name.replace("int8", "fp32") for name, target in registry.TARGETS.items()
         if target.kind == "edge" and target.precision == "int8" and target.framework == "torch"}
INT8_STEPS = tuple(dict.fromkeys(registry.TARGETS[name].step.name for pair in TWINS.items() for name in pair))
ACCURACY_POINTS = 0.01  # int8 accuracy within 1 percentage point of its fp32 twin's
COLOUR_CLASSES = ("zero", "one", "two", "three", "four", "five", "six")  # 7 classes, not 10
COLOUR_ARGS = ["--epochs", "3", "--arch", "resnet", "--seed", "0"]


def colour_digits() -> dict:
    """Handwritten digits 0-6 (scikit-learn's, bundled) as (N, 16, 24, 3) uint8 colour pictures: each digit
    stretched 2x down and 3x across, inked in a random bright colour over faint noise. Harder than the
    made-up bars (the fp32 model is not perfect), so 1 point of accuracy is a few images, not nothing."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < len(COLOUR_CLASSES)
    ink = np.repeat(np.repeat(digits.images[keep] / 16, 2, axis=1), 3, axis=2)  # (N, 16, 24) 0..1
    rng = np.random.default_rng(1)
    colour = rng.uniform(0.4, 1.0, (len(ink), 1, 1, 3))
    pictures = np.clip(ink[..., None] * colour + rng.uniform(0, 0.15, (*ink.shape, 3)), 0, 1)
    return {"x": np.round(pictures * 255).astype(np.uint8), "y": digits.target[keep],
            "labels": np.array(COLOUR_CLASSES), "name": np.array("colour")}


@pytest.fixture(scope="module")
def digits(trained_artifacts):
    """The session's trained digits model with both int8 files (and the fp32 files they are held to)."""
    return built(trained_artifacts, *INT8_STEPS)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """A colour task unlike the digits' (16x24 RGB, 7 classes, the ResNet), trained and exported to the fp32
    and int8 edge files."""
    folder = tmp_path_factory.mktemp("int8-colour")
    np.savez(folder / "colour.npz", **colour_digits())
    return built(folder / "artifacts", *INT8_STEPS,
                 args=[*COLOUR_ARGS, "--data", str(folder / "colour.npz")])


@pytest.fixture(scope="module", params=["digits", "colour"])
def task(request):
    """(task name, artifacts folder, its test split, {target: probabilities on the whole split})."""
    root = request.getfixturevalue(request.param)
    test = data.load_split(paths.split_path(root))["test"]
    answers = {name: registry.load(name, root).predict(test.x) for pair in TWINS.items() for name in pair}
    return request.param, root, test, answers


def figures(task, int8: str) -> dict:
    _, _, test, answers = task
    labels, twin_labels = answers[int8].argmax(axis=1), answers[TWINS[int8]].argmax(axis=1)
    return {"accuracy": float(np.mean(labels == test.y)), "fp32_accuracy": float(np.mean(twin_labels == test.y)),
            "agreement": float(np.mean(labels == twin_labels)), "images": len(test.y)}


@pytest.mark.parametrize("int8", list(TWINS))
def test_int8_accuracy_is_within_one_point_of_its_fp32_twin(task, int8):
    name, root, _, _ = task
    found = figures(task, int8)
    entries = manifest.load(root)
    sizes = {target: entries[registry.TARGETS[target].artifact]["bytes"] for target in (int8, TWINS[int8])}
    print(f"\n{name}: {int8} accuracy {found['accuracy']:.4f} vs {TWINS[int8]} {found['fp32_accuracy']:.4f}, "
          f"label agreement {found['agreement']:.4f} on {found['images']} images; "
          f"{sizes[int8]:,} vs {sizes[TWINS[int8]]:,} bytes")
    assert found["fp32_accuracy"] > 0.8  # a trained model, not noise
    assert abs(found["accuracy"] - found["fp32_accuracy"]) <= ACCURACY_POINTS + 1e-9
    assert found["agreement"] >= parity.INT8_AGREEMENT


@pytest.mark.parametrize("int8", list(TWINS))
def test_int8_answers_are_probabilities(task, int8):
    """float32 rows that sum to 1: exactly for ExecuTorch and OpenVINO (float32 softmax), within half an output step
    per class for ONNX (its probabilities are dequantized from int8 in steps of the recorded output scale)."""
    _, root, test, answers = task
    spec = specs.load(root)
    got = answers[int8]
    assert got.shape == (len(test.y), spec.num_classes) and got.dtype == np.float32 and got.min() >= 0
    step = parity.output_step(registry.TARGETS[int8].artifact, root)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=spec.num_classes * (step or 0) / 2 + 1e-5)


@pytest.mark.parametrize("int8", list(TWINS))
def test_int8_file_is_smaller_and_gives_the_same_rows_at_any_batch_size(task, int8):
    _, root, test, answers = task
    entries = manifest.load(root)
    int8_entry, fp32_entry = (entries[registry.TARGETS[name].artifact] for name in (int8, TWINS[int8]))
    assert manifest.size_of(manifest.verify(registry.TARGETS[int8].artifact, root)) == int8_entry["bytes"]
    assert int8_entry["bytes"] < 0.8 * fp32_entry["bytes"]
    predictor, start = registry.load(int8, root), 0
    for size in (1, 7, 33):
        np.testing.assert_allclose(predictor.predict(test.x[start : start + size]),
                                   answers[int8][start : start + size], atol=1e-6)
        start += size


def weighted_layers(root) -> int:
    """How many layers with weights (conv, linear) the trained PyTorch network has."""
    import torch

    from training.model_torch import load_checkpoint

    model, _ = load_checkpoint(manifest.verify("torch_checkpoint", root))
    return sum(isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) for module in model.modules())


def test_executorch_int8_manifest_facts(task):
    """Every operator on XNNPACK, every layer with weights int8, float32 in and out, the fp32 file's batch range."""
    _, root, _, _ = task
    entries = manifest.load(root)
    entry, twin = entries["executorch_xnnpack_int8"], entries["executorch_xnnpack_fp32"]
    assert (entry["precision"], entry["framework"], entry["io_dtype"]) == ("int8", "torch", "float32")
    assert entry["path"] == f"executorch/{specs.load(root).model_name}_xnnpack_int8.pte"
    delegation = entry["delegation"]
    assert delegation["share"] == 1.0 and delegation["fallback"] == {} and delegation["not_delegated_ops"] == 0
    assert delegation["delegated_ops"] == delegation["counted_ops"] > twin["delegation"]["delegated_ops"]  # + Q/DQ ops
    assert sum(entry["int8_layers"].values()) == weighted_layers(root)
    assert entry["quantization"]["input"]["dtype"] == "int8"
    assert entry["max_batch"] == twin["max_batch"] and entry["calibration_images"] > 0
    assert entry["input_contract"] == twin["input_contract"] == manifest.input_contract(root)


def test_onnx_int8_manifest_facts(task):
    """QDQ around every computing node, the fp32 file's float32 input and output names, the quantization recorded."""
    import onnxruntime as ort

    _, root, _, _ = task
    spec = specs.load(root)
    entries = manifest.load(root)
    entry = entries["onnx_int8"]
    assert (entry["precision"], entry["framework"], entry["io_dtype"], entry["source"]) == (
        "int8", "torch", "float32", "onnx_fp32")
    assert entry["path"] == f"onnx/{spec.model_name}_int8.onnx"
    assert entry["qdq_nodes"]["float32"] == {}
    int8 = entry["qdq_nodes"]["int8"]
    assert int8.get("Conv", 0) + int8.get("Gemm", 0) + int8.get("MatMul", 0) == weighted_layers(root)
    session = ort.InferenceSession(str(manifest.verify("onnx_int8", root)), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [spec.input_name]
    assert [o.name for o in session.get_outputs()] == [spec.output_name]
    assert {i.type for i in (*session.get_inputs(), *session.get_outputs())} == {"tensor(float)"}
    quantization = entry["quantization"]
    assert quantization["input"]["scale"] == pytest.approx((spec.value_max - spec.value_min) / 255, rel=0.05)
    assert quantization["output"]["dtype"] == "int8" and 0 < quantization["output"]["scale"] <= 1 / 127


def test_openvino_int8_manifest_facts(task):
    """Every layer with weights stored int8, float32 in and out, and the CPU plugin running those layers in 8 bits."""
    import openvino as ov

    from edge.openvino.export import GRAPH

    _, root, _, _ = task
    entry = manifest.load(root)["openvino_int8"]
    assert (entry["precision"], entry["framework"], entry["io_dtype"], entry["source"]) == (
        "int8", "torch", "float32", "openvino_fp32")
    assert entry["path"] == f"openvino/{specs.load(root).model_name}_int8"
    assert entry["int8_layers"]["float32"] == {} and entry["calibration_images"] > 0
    assert sum(entry["int8_layers"]["int8"].values()) == weighted_layers(root)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(manifest.verify("openvino_int8", root) / GRAPH), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})  # as the runner compiles it
    ran = {}
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        if info["layerType"].astype(str) in ("Convolution", "FullyConnected"):
            precision = info["runtimePrecision"].astype(str)
            ran[precision] = ran.get(precision, 0) + 1
    assert set(ran) <= {"u8", "i8"} and sum(ran.values()) == weighted_layers(root), ran


def test_the_openvino_export_stops_when_a_layer_keeps_float32_weights(digits):
    """The int8 check can fail: the fp32 IR's layers are all found float32, and refused naming them."""
    import openvino as ov

    from edge.openvino.export import GRAPH
    from edge.openvino.quantize import QuantizationError, int8_layers, require_int8_layers

    layers = int8_layers(ov.Core().read_model(manifest.verify("openvino_fp32", digits) / GRAPH))
    assert layers["int8"] == {} and sum(layers["float32"].values()) == weighted_layers(digits)
    with pytest.raises(QuantizationError, match="Convolution"):
        require_int8_layers(layers)


@pytest.mark.parametrize("int8", list(TWINS))
def test_the_runner_s_command_line_runs_the_int8_file(task, int8, tmp_path, capsys):
    """`python -m <command> --model FILE images.npz`, the registry's command for the target, unchanged."""
    import importlib

    _, root, test, answers = task
    images = tmp_path / "images.npz"
    np.savez(images, x=test.x[:5])
    path = registry.artifact_path(registry.TARGETS[int8].artifact, root)
    got = importlib.import_module(registry.TARGETS[int8].command).main(["--model", str(path), str(images)])
    np.testing.assert_allclose(got, answers[int8][:5], atol=1e-6)
    assert "int8" in capsys.readouterr().out


def test_the_export_stops_when_a_layer_stays_float32():
    """The int8 check can fail: a graph whose linear layer takes float32 weights is refused, naming it."""
    import torch

    from edge.executorch.quantize import QuantizationError, int8_layers, require_int8_layers

    captured = torch.export.export(torch.nn.Sequential(torch.nn.Linear(4, 3)), (torch.rand(2, 4),)).module()
    layers = int8_layers(captured)
    assert layers == {"int8": {}, "float32": {"linear": 1}}
    with pytest.raises(QuantizationError, match="linear"):
        require_int8_layers(layers)

