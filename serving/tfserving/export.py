"""Export the trained Keras model as the next TF Serving version of the spec's model.

    python -m serving.tfserving.export     # -> artifacts/tfserving/<model name>/<next int version>/

Verifies the Keras model against the manifest, writes a SavedModel with the spec's
`serving_default` signature (input named by the spec, float32 [-1, *item_shape], e.g. `image`
[-1, 8, 8] for the digits; output `probabilities` [-1, K]; training/savedmodel.py), checks it
against the Keras model on the test split, and records it as `tfserving_v<N>`. Each run adds a
version; a running server picks it up.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from serving.tfserving import configs
from training import data

TOLERANCE = 1e-5


def export(root: Path) -> Path:
    import keras
    import tensorflow as tf

    from training.savedmodel import export_saved_model

    model = keras.models.load_model(manifest.verify("keras_model", root))
    version = max(configs.versions(configs.base_path(root)), default=0) + 1
    out = configs.base_path(root) / str(version)
    # Written beside the base path first, then renamed into place: a polling server never sees a
    # half-written version directory.
    staging = configs.base_path(root).parent / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    task = specs.load(root)
    export_saved_model(model, staging, task)
    test_x = data.load_split(paths.split_path(root))["test"].x
    served = tf.saved_model.load(str(staging)).signatures["serving_default"](**{task.input_name: tf.constant(test_x)})
    diff = float(np.abs(served[task.output_name].numpy() - model.predict(test_x, verbose=0)).max())
    if diff > TOLERANCE:
        shutil.rmtree(staging)
        raise SystemExit(f"SavedModel differs from the Keras model by {diff:g} (> {TOLERANCE}): not exported")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Recorded before the rename: the server checks a version against the manifest as soon as it
    # sees the folder.
    entry = manifest.record(configs.artifact_id(version), out, framework="tensorflow", precision="fp32", root=root,
                            staged_at=staging, format="saved_model", version=version, signature="serving_default")
    staging.rename(out)
    print(f"savedmodel: {out} (version {version}, {entry['bytes']:,} bytes, max abs diff to Keras {diff:.1e})")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    try:
        export((args.artifacts or paths.artifacts_dir()).resolve())
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
