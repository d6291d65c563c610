"""Quantize the fp32 OpenVINO IR to int8 with NNCF's post-training quantization.

    python -m edge.openvino.quantize                    # artifacts/openvino/<model>_int8/ (manifest id `openvino_int8`)
    python -m edge.openvino.quantize --calibration 200  # fewer calibration images (faster)

Reads the fp32 IR the project exports (`openvino_fp32`, edge/openvino/export.py), verified against the
manifest; `nncf.quantize` with its defaults for a CNN (the performance preset: symmetric int8 weights per
output channel; symmetric 8-bit activations per tensor, unsigned where they are never negative (the
normalized input, each ReLU); fast bias correction) but one: activation ranges from the min and max over all
images (MinMax, as the ONNX int8 file), not the mean of each image's. Calibrated one image at a time on a
fixed sample of the train split (edge.common.calibration_images, the images every int8 file of the project
is calibrated on). The IR keeps the fp32 one's float32 input and output: FakeQuantize nodes quantize the
activations, the weights are stored int8 with their scales, the CPU plugin runs the convolutions and fully
connected layers in int8 and the softmax in float32, so the same runner (edge/openvino/run.py) runs both.
The manifest entry records the layers with weights by the dtype their weights are stored in (`int8_layers`);
the export stops if one stayed float32.

NNCF sends usage statistics unless told not to, through the same consent file as OpenVINO's: `make setup`
runs `opt_in_out --opt_out` for this row too, and the export also sets NNCF's own switch.
"""
from __future__ import annotations

import os
from pathlib import Path

from core import manifest, paths
from core.manifest import save_artifact
from edge.common import DEFAULT_CALIBRATION, calibrated_main, calibration_images
from edge.openvino.export import GRAPH, ir_path, save_ir

ARTIFACT = "openvino_int8"
SOURCE = "openvino_fp32"
WEIGHTED = ("Convolution", "GroupConvolution", "MatMul")  # the IR's layers with weights
INT8_TYPES = ("i8", "u8")
WEIGHT_DEPTH = 4  # Constant -> Convert -> (Subtract) -> Multiply: how far back a layer's stored weights lie
SCHEME = ("NNCF post-training quantization, performance preset: int8 weights symmetric per output channel, "
          "8-bit activations symmetric per tensor (u8 where never negative; MinMax), fast bias correction; "
          "softmax float32")


class QuantizationError(RuntimeError):
    """A layer with weights kept float32 weights in the int8 IR."""


def _stores_int8(output, depth: int) -> bool:
    """Whether an int8 constant lies within `depth` nodes above `output` (the weights' dequantization chain)."""
    node = output.get_node()
    if node.get_type_name() == "Constant":
        return node.get_output_element_type(0).get_type_name() in INT8_TYPES
    if depth == 0 or node.get_type_name() == "Parameter":
        return False
    return any(_stores_int8(value, depth - 1) for value in node.input_values())


def int8_layers(model) -> dict:
    """The IR's layers with weights by the dtype their weights are stored in; {"int8": {op: n}, "float32": {op: n}}."""
    found = {"int8": {}, "float32": {}}
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind in WEIGHTED:
            weights = node.input_values()[1:]  # input 0 is the activation
            side = found["int8" if any(_stores_int8(value, WEIGHT_DEPTH) for value in weights) else "float32"]
            side[kind] = side.get(kind, 0) + 1
    return found


def io_dtype(model) -> str:
    """The dtype the IR takes and gives (ValueError unless its inputs and outputs agree)."""
    found = {port.get_element_type().to_dtype().name for port in (*model.inputs, *model.outputs)}
    if len(found) != 1:
        raise ValueError(f"the IR's input and output dtypes differ: {sorted(found)}")
    return found.pop()


def require_int8_layers(layers: dict) -> None:
    if layers["float32"]:
        raise QuantizationError(f"layers with float32 weights after quantization: {layers['float32']}")


def quantize(model, calibration):
    """`model` with int8 weights and FakeQuantize on its activations, calibrated on `calibration` (N, *item_shape)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    images = nncf.Dataset([calibration[index : index + 1] for index in range(len(calibration))])  # (1, *item_shape)
    # Activation ranges from the min and max over every image, as the ONNX int8 file's MinMax: NNCF's default (the
    # mean of each image's min and max) clips the brightest images, and its probabilities drifted 3x further.
    ranges = AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    return nncf.quantize(model, images, subset_size=len(calibration), advanced_parameters=ranges)


def export(root: Path | None = None, calibration_size: int = DEFAULT_CALIBRATION) -> dict[str, dict]:
    """Write the int8 IR folder under `root` and record it; returns the manifest entry by id."""
    # NNCF's own switch for its usage statistics (set before its import), besides the opt-out of `make setup`.
    os.environ.setdefault("NNCF_CI", "1")
    import nncf
    import openvino as ov

    root = (root or paths.artifacts_dir()).resolve()
    source = manifest.verify(SOURCE, root)
    calibration = calibration_images(root, calibration_size)
    print(f"openvino: int8: NNCF quantization of {source.name}, {len(calibration)} calibration images "
          f"(nncf {nncf.__version__})")
    quantized = quantize(ov.Core().read_model(source / GRAPH), calibration)
    layers = int8_layers(quantized)
    require_int8_layers(layers)
    out = ir_path(root, "int8")
    save_ir(quantized, out)
    entry = save_artifact(ARTIFACT, out, None, framework="torch", precision="int8", root=root, source=SOURCE,
                          batch="dynamic", io_dtype=io_dtype(quantized), int8_layers=layers,
                          calibration_images=len(calibration), scheme=SCHEME, nncf=nncf.__version__,
                          openvino=ov.__version__)
    return {ARTIFACT: entry}


def main(argv=None) -> None:
    calibrated_main(__doc__, export, argv)


if __name__ == "__main__":
    main()
