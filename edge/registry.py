"""Every edge artifact and the Predictor that runs it: the one list tests and benchmarks iterate.

Adding an edge target is one exporter, one runner and one line here.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from training import manifest, paths

# manifest id -> (runner module, Predictor class); the runner modules import their runtime lazily.
EDGE_ARTIFACTS = {
    "tflite_fp32": ("edge.tflite.run", "TFLitePredictor"),
    "tflite_int8": ("edge.tflite.run", "TFLitePredictor"),
    "executorch_xnnpack_fp32": ("edge.executorch.run", "ExecuTorchPredictor"),
    "executorch_portable_fp32": ("edge.executorch.run", "ExecuTorchPredictor"),
    "onnx_fp32": ("edge.onnx.run", "OnnxPredictor"),
}


def artifact_path(artifact_id: str, root: Path | None = None) -> Path:
    root = (root or paths.artifacts_dir()).resolve()
    entry = manifest.load(root).get(artifact_id)
    if entry is None:
        raise manifest.ManifestError(f"{artifact_id!r} is not in {manifest.manifest_path(root)}: run `make export`")
    return root / entry["path"]


def load_predictor(artifact_id: str, root: Path | None = None):
    """The Predictor for one edge artifact (verified against the manifest as it loads)."""
    module, cls = EDGE_ARTIFACTS[artifact_id]
    return getattr(importlib.import_module(module), cls)(artifact_path(artifact_id, root), root=root)
