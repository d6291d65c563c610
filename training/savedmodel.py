"""Export the trained Keras model as a TensorFlow SavedModel with an explicit signature.

The one SavedModel writer of the project: TF Serving serves it, and the TF.js converter reads it.
Its `serving_default` signature is the input contract, named by the spec:

    inputs:  image          float32 [-1, *item_shape]   raw values in the spec's range ([-1, 8, 8], 0..16: the digits)
    outputs: probabilities  float32 [-1, K]
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from core.spec import Spec


def export_saved_model(keras_model, out_dir: Path, spec: Spec) -> Path:
    """Write `keras_model` to `out_dir` (which must not exist yet) and return it."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists: a SavedModel is never overwritten in place")

    @tf.function(input_signature=[tf.TensorSpec([None, *spec.item_shape], tf.float32, name=spec.input_name)])
    def serve(image):
        return {spec.output_name: keras_model(image, training=False)}

    module = tf.Module()
    module.model = keras_model  # tracked, so its variables are saved
    module.serve = serve
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serve})
    return out_dir
