"""Convert the trained Keras model to TFLite: float32, and full-integer int8.

    python -m edge.tflite.convert                       # both, into artifacts/tflite/
    python -m edge.tflite.convert --calibration 200     # fewer representative images (faster)

The Keras model (verified against the manifest) is converted directly (`from_keras_model`: the
int8 calibrator cannot read the resource variables of our SavedModel). The batch dimension stays
dynamic (-1) in the file, but the interpreter allocates batch 1: the runner resizes the input
for other batch sizes.

int8 is full-integer: int8 input, weights, activations and output. The representative data are
images of the train split; the input and output scale / zero point are recorded in the manifest
entry, and the runner quantizes the raw 0..16 values with them. Writes:

  tflite/<model>_fp32.tflite   manifest id `tflite_fp32` (<model>: the spec's model name, e.g. digits)
  tflite/<model>_int8.tflite   manifest id `tflite_int8` (with `quantization`)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core import spec as specs
from edge.common import save_artifact
from training import data, manifest, paths

DEFAULT_CALIBRATION = 500  # train images fed to the int8 calibration; more changes nothing measurable


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
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def quantization_of(model: bytes) -> dict:
    """Scale and zero point of the model's input and output tensors, as the runtime reports them."""
    from ai_edge_litert.interpreter import Interpreter  # the runtime's own reading of the file

    interpreter = Interpreter(model_content=model)

    def params(detail: dict) -> dict:
        scale, zero_point = detail["quantization"]
        return {"dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}

    return {"input": params(interpreter.get_input_details()[0]), "output": params(interpreter.get_output_details()[0])}


def convert(root: Path | None = None, calibration_size: int = DEFAULT_CALIBRATION) -> dict[str, dict]:
    """Write both .tflite files under `root` and record them; returns the manifest entries."""
    import keras

    root = (root or paths.artifacts_dir()).resolve()
    keras_model = keras.models.load_model(manifest.verify("keras_model", root))
    train = data.load_split(paths.split_path(root))["train"]
    # A fixed, seeded sample of the train split: the same int8 model on every run.
    pick = np.random.default_rng(0).permutation(len(train))[:calibration_size]
    calibration = train.x[np.sort(pick)]
    entries = {}
    for precision in ("fp32", "int8"):
        print(f"tflite: converting {precision}" + (f" ({len(calibration)} calibration images)" if precision == "int8" else ""))
        model = _converter(keras_model, precision, calibration).convert()
        extra = {"source": "keras_model", "batch": "dynamic; allocated at 1, resized by the runner"}
        if precision == "int8":
            extra.update(quantization=quantization_of(model), calibration_images=len(calibration))
        entries[f"tflite_{precision}"] = save_artifact(f"tflite_{precision}", tflite_path(precision, root), model,
                                                       framework="tensorflow", precision=precision, root=root, **extra)
    return entries


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=DEFAULT_CALIBRATION,
                        help=f"train images used to calibrate int8 (default: {DEFAULT_CALIBRATION})")
    args = parser.parse_args(argv)
    if args.calibration < 1:
        parser.error("--calibration must be at least 1")
    convert(calibration_size=args.calibration)


if __name__ == "__main__":
    main()
