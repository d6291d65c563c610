"""Quantize the fp32 ONNX file to int8 with ONNX Runtime's static quantization (QDQ format).

    python -m edge.onnx.quantize                     # into artifacts/onnx/<model>_int8.onnx (manifest id `onnx_int8`)
    python -m edge.onnx.quantize --calibration 200   # fewer calibration images (faster)

Reads the fp32 file the project exports (`onnx_fp32`, edge/onnx/export.py), verified against the
manifest; `quant_pre_process` (shape inference and graph optimization, what ONNX Runtime asks for
before quantizing) -> `quantize_static` in QDQ format: int8 weights (symmetric) and activations,
ranges from MinMax calibration on a fixed sample of the train split (edge.common.calibration_images,
the same images the TFLite and ExecuTorch int8 files are calibrated on). Input and output keep the
fp32 file's float32 names (the spec's): the file quantizes its own input and dequantizes its
probabilities (QuantizeLinear / DequantizeLinear nodes), so the same runner (edge/onnx/run.py) runs
both. The manifest entry records the scale / zero point of both (`quantization`; the output's scale
is the step its probabilities move in) and how many nodes run in int8 (`qdq_nodes`).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from core.manifest import save_artifact
from edge.common import DEFAULT_CALIBRATION, calibrated_main, calibration_images

ARTIFACT = "onnx_int8"
SOURCE = "onnx_fp32"
CALIBRATION_CHUNK = 100  # images per calibration batch (the file's batch is dynamic)
# Per-tensor weights: ONNX Runtime's default and its fastest on CPU; per-channel measured no better here.
PER_CHANNEL = False


def int8_path(root: Path | None = None) -> Path:
    root = root or paths.artifacts_dir()
    return root / "onnx" / f"{specs.load(root).model_name}_int8.onnx"


def reader(images: np.ndarray, input_name: str):
    """A CalibrationDataReader over `images` (N, *item_shape) float32, fed in chunks."""
    from onnxruntime.quantization import CalibrationDataReader

    class Images(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{input_name: images[first : first + CALIBRATION_CHUNK]}
                               for first in range(0, len(images), CALIBRATION_CHUNK)])

        def get_next(self):
            return next(self.feeds, None)

    return Images()


def quantization_of(model, input_name: str, output_name: str) -> dict:
    """Scale and zero point of the int8 tensors the file quantizes its input to and dequantizes its output from
    (ValueError if it does not do both itself)."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    found = {}
    for node in model.graph.node:
        side = ("input" if node.op_type == "QuantizeLinear" and node.input[0] == input_name else
                "output" if node.op_type == "DequantizeLinear" and node.output[0] == output_name else None)
        if side:
            zero_point = constants[node.input[2]]
            found[side] = {"dtype": zero_point.dtype.name, "scale": float(constants[node.input[1]]),
                           "zero_point": int(zero_point)}
    missing = [side for side in ("input", "output") if side not in found]
    if missing:
        raise ValueError(f"the int8 model does not quantize its {' and '.join(missing)} itself")
    return found


def qdq_nodes(model) -> dict:
    """The graph's computing nodes by whether every computed input comes from a DequantizeLinear (the QDQ
    pattern ONNX Runtime runs as an int8 kernel, or as a plain move of int8 data) or not; {"int8": {op: n},
    "float32": {op: n}}. The Q/DQ nodes themselves are not counted."""
    made_by = {output: node.op_type for node in model.graph.node for output in node.output}
    found = {"int8": {}, "float32": {}}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        inputs = [name for name in node.input if name and name in made_by]  # computed inputs, not weights
        kind = found["int8" if inputs and all(made_by[name] == "DequantizeLinear" for name in inputs) else "float32"]
        kind[node.op_type] = kind.get(node.op_type, 0) + 1
    return found


def io_dtype(model) -> str:
    """The dtype the file takes and gives (ValueError unless its input and output agree)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    found = {tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type).name
             for value in (*model.graph.input, *model.graph.output)}
    if len(found) != 1:
        raise ValueError(f"the file's input and output dtypes differ: {sorted(found)}")
    return found.pop()


def export(root: Path | None = None, calibration_size: int = DEFAULT_CALIBRATION) -> dict[str, dict]:
    """Write the int8 .onnx file under `root` and record it; returns the manifest entry by id."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    root = (root or paths.artifacts_dir()).resolve()
    spec = specs.load(root)
    source = manifest.verify(SOURCE, root)
    calibration = calibration_images(root, calibration_size)
    out = int8_path(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"onnx: int8: static QDQ quantization of {source.name}, {len(calibration)} calibration images")
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        quantize_static(str(prepared), str(out), reader(calibration, spec.input_name), quant_format=QuantFormat.QDQ,
                        per_channel=PER_CHANNEL, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    model = onnx.load(str(out))
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    if names != ([spec.input_name], [spec.output_name]):
        raise ValueError(f"the int8 file's (inputs, outputs) are {names}, not the spec's "
                         f"([{spec.input_name!r}], [{spec.output_name!r}])")
    weights = "per channel" if PER_CHANNEL else "per tensor"
    entry = save_artifact(ARTIFACT, out, None, framework="torch", precision="int8", root=root, source=SOURCE,
                          batch="dynamic", io_dtype=io_dtype(model), qdq_nodes=qdq_nodes(model),
                          quantization=quantization_of(model, spec.input_name, spec.output_name),
                          calibration_images=len(calibration),
                          scheme=f"QDQ, int8 activations and weights ({weights}), MinMax calibration")
    return {ARTIFACT: entry}


def main(argv=None) -> None:
    calibrated_main(__doc__, export, argv)


if __name__ == "__main__":
    main()
