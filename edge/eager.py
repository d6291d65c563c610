"""The source frameworks run eagerly, as Predictors: the reference for parity and benchmarks.

Every edge artifact is compared with the framework it came from: TFLite with the Keras model,
ExecuTorch and ONNX with the PyTorch checkpoint. Both are verified against the manifest first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import manifest
from core import spec as specs
from edge import common


class TorchEagerPredictor:
    """The PyTorch checkpoint in eager mode (`torch.no_grad`)."""

    name, framework, precision = "torch-eager", "torch", "fp32"
    artifact_id = "torch_checkpoint"

    def __init__(self, root: Path | None = None):
        from training.model_torch import load_checkpoint

        self.model, self.spec = load_checkpoint(manifest.verify(self.artifact_id, root))

    def predict(self, batch) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(common.check_runner_batch(batch, self.spec, self.name))).numpy()


class KerasEagerPredictor:
    """The Keras model called eagerly (`model(x, training=False)`, not the batched `predict`)."""

    name, framework, precision = "keras-eager", "tensorflow", "fp32"
    artifact_id = "keras_model"

    def __init__(self, root: Path | None = None):
        import keras

        self.model = keras.models.load_model(manifest.verify(self.artifact_id, root))
        self.spec = specs.load(root)

    def predict(self, batch) -> np.ndarray:
        batch = common.check_runner_batch(batch, self.spec, self.name)
        return np.asarray(self.model(batch, training=False), dtype=np.float32)

