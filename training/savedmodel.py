"""Export the trained Keras model as a TensorFlow SavedModel with an explicit signature.

The one SavedModel writer of the project: TF Serving serves it, and the TF.js converter reads it.
Its `serving_default` signature is the input contract, named by the spec:

    inputs:  image          float32 [-1, 8, 8]   raw values 0..16
    outputs: probabilities  float32 [-1, 10]
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from training.spec import IMAGE_SIZE, INPUT_NAME, OUTPUT_NAME


def export_saved_model(keras_model, out_dir: Path) -> Path:
    """Write `keras_model` to `out_dir` (which must not exist yet) and return it."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists: a SavedModel is never overwritten in place")

    @tf.function(input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32, name=INPUT_NAME)])
    def serve(image):
        return {OUTPUT_NAME: keras_model(image, training=False)}

    module = tf.Module()
    module.model = keras_model  # tracked, so its variables are saved
    module.serve = serve
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serve})
    return out_dir
