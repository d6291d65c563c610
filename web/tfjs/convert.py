"""Convert the trained Keras model into a TF.js graph model.

The route (see PLATFORM.md): Keras model -> SavedModel (training/savedmodel.py, the project's one
SavedModel writer) -> `tensorflowjs_converter --output_format=tfjs_graph_model`, run from the
converter's own environment `.venv-tfjs` (its dependencies would downgrade TensorFlow here). The
layers-model route does not load Keras 3 models in tfjs 4.22.

Run by `python -m web.tfjs.export`; `convert(keras_model, out_dir)` is the entry point.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from core import paths

DEFAULT_CONVERTER = paths.REPO_ROOT / ".venv-tfjs" / "bin" / "tensorflowjs_converter"


class ConversionError(RuntimeError):
    """The converter is missing or failed; the message carries its output."""


def convert(keras_model, out_dir: Path, spec, converter: Path = DEFAULT_CONVERTER) -> Path:
    """Write `out_dir/model.json` and its weight shards; returns `out_dir/model.json`."""
    from training.savedmodel import export_saved_model  # imported here: it loads TensorFlow

    converter = Path(converter)
    if not converter.exists():
        raise ConversionError(f"{converter} not found: run `make setup` (it builds .venv-tfjs)")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="digits-savedmodel-") as tmp:
        saved_model = export_saved_model(keras_model, Path(tmp) / "saved_model", spec)
        command = [
            str(converter), "--input_format=tf_saved_model", "--output_format=tfjs_graph_model",
            "--signature_name=serving_default", "--saved_model_tags=serve", str(saved_model), str(out_dir),
        ]
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConversionError(f"tensorflowjs_converter failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    model_json = out_dir / "model.json"
    if not model_json.exists():
        raise ConversionError(f"tensorflowjs_converter wrote no {model_json}:\n{done.stdout}{done.stderr}")
    return model_json
