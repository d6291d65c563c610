"""Convert the trained Keras model to TFLite: float32, and full-integer int8.

    python -m edge.tflite.convert                       # both, into artifacts/tflite/
    python -m edge.tflite.convert --calibration 200     # fewer representative images (faster)

The Keras model (verified against the manifest) is converted directly (`from_keras_model`: the
int8 calibrator cannot read the resource variables of our SavedModel). The batch dimension stays
dynamic (-1) in the file, but the interpreter allocates batch 1: the runner resizes the input
for other batch sizes.

int8 is full-integer inside: int8 weights and activations, an int8 kernel for every op. Its input and
output stay float32 (`inference_input_type` / `inference_output_type` tf.float32, the
converter's default), so the file begins with a QUANTIZE op and ends with a DEQUANTIZE op and the
interpreter, not the runner, turns the raw values into int8 and the int8 softmax back into
probabilities: both files take the spec's contract as they are. The representative data are images
of the train split; the scale / zero point of the int8 tensors the model quantizes its input to and
dequantizes its output from are recorded in the manifest entry (`quantization`; `io_dtype`: what
the file takes and gives). Writes:

  tflite/<model>_fp32.tflite   manifest id `tflite_fp32` (<model>: the spec's model name, e.g. digits)
  tflite/<model>_int8.tflite   manifest id `tflite_int8` (with `quantization`)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from core.manifest import save_artifact
from edge.common import DEFAULT_CALIBRATION, calibrated_main, calibration_images


def tflite_path(precision: str, root: Path | None = None) -> Path:
    root = root or paths.artifacts_dir()
    return root / "tflite" / f"{specs.load(root).model_name}_{precision}.tflite"


def _converter(keras_model, precision: str, calibration: np.ndarray):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if precision == "int8":
        def representative():  # one image at a time, as a device would see them
            for image in calibration:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Full integer: conversion fails instead of leaving a float op behind.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # float32 in and out (the converter's default, said here on purpose): the model quantizes its own
        # input and dequantizes its own output, one op each inside the interpreter, instead of the caller in numpy.
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    return converter


def quantization_of(model: bytes) -> dict:
    """Scale and zero point of the int8 tensors the model quantizes its float32 input to and dequantizes its
    output from, as the runtime reads the file (ValueError if it does not quantize both itself)."""
    from ai_edge_litert.interpreter import Interpreter  # the runtime's own reading of the file

    interpreter = Interpreter(model_content=model)
    model_input = interpreter.get_input_details()[0]["index"]
    model_output = interpreter.get_output_details()[0]["index"]
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    inner = {}
    # The interpreter's listing of the graph's ops (the Python API offers no public one).
    for op in interpreter._get_ops_details():
        if op["op_name"] == "QUANTIZE" and model_input in op["inputs"]:
            inner["input"] = int(op["outputs"][0])
        elif op["op_name"] == "DEQUANTIZE" and model_output in op["outputs"]:
            inner["output"] = int(op["inputs"][0])
    missing = [side for side in ("input", "output") if side not in inner]
    if missing:
        raise ValueError(f"the int8 model does not quantize its {' and '.join(missing)} itself")

    def params(detail: dict) -> dict:
        scale, zero_point = detail["quantization"]
        return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}

    return {side: params(tensors[index]) for side, index in inner.items()}


def io_dtype(model: bytes) -> str:
    """The dtype the model takes and gives (ValueError unless input and output agree)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    found = {np.dtype(interpreter.get_input_details()[0]["dtype"]).name,
             np.dtype(interpreter.get_output_details()[0]["dtype"]).name}
    if len(found) != 1:
        raise ValueError(f"the model's input and output dtypes differ: {sorted(found)}")
    return found.pop()


def convert(root: Path | None = None, calibration_size: int = DEFAULT_CALIBRATION) -> dict[str, dict]:
    """Write both .tflite files under `root` and record them; returns the manifest entries."""
    import keras

    root = (root or paths.artifacts_dir()).resolve()
    keras_model = keras.models.load_model(manifest.verify("keras_model", root))
    calibration = calibration_images(root, calibration_size)
    entries = {}
    for precision in ("fp32", "int8"):
        print(f"tflite: converting {precision}"
              + (f" ({len(calibration)} calibration images)" if precision == "int8" else ""))
        model = _converter(keras_model, precision, calibration).convert()
        extra = {"source": "keras_model", "batch": "dynamic; allocated at 1, resized by the runner",
                 "io_dtype": io_dtype(model)}
        if precision == "int8":
            extra.update(quantization=quantization_of(model), calibration_images=len(calibration))
        entries[f"tflite_{precision}"] = save_artifact(f"tflite_{precision}", tflite_path(precision, root), model,
                                                       framework="tensorflow", precision=precision, root=root, **extra)
    return entries


def main(argv=None) -> None:
    calibrated_main(__doc__, convert, argv)


if __name__ == "__main__":
    main()
