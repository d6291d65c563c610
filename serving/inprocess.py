"""The served models run in-process: the reference answers for the servers, and the benchmark's baseline.

`TorchInProcess` is the verified PyTorch checkpoint (what the TorchServe archive was built from);
`SavedModelInProcess` is the newest verified TF Serving version directory, called through its
`serving_default` signature (what TF Serving serves). Both are Predictors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from serving.tfserving import configs
from training import manifest, paths
from training.spec import INPUT_NAME, OUTPUT_NAME


class TorchInProcess:
    name, framework, precision = "torch-inprocess", "torch", "fp32"

    def __init__(self, root: Path | None = None):
        import torch

        from training.model_torch import load_checkpoint

        self.torch = torch
        self.model, _ = load_checkpoint(manifest.verify("torch_checkpoint", root or paths.artifacts_dir()))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(np.asarray(batch, dtype=np.float32))).numpy()


class SavedModelInProcess:
    name, framework, precision = "tensorflow-inprocess", "tensorflow", "fp32"

    def __init__(self, root: Path | None = None):
        import tensorflow as tf

        root = root or paths.artifacts_dir()
        versions = configs.versions(configs.base_path(root))
        if not versions:
            raise FileNotFoundError(f"no SavedModel under {configs.base_path(root)}: run `make export`")
        self.version = versions[-1]
        path = manifest.verify(configs.artifact_id(self.version), root)
        self.tf = tf
        self.loaded = tf.saved_model.load(str(path))  # kept: the signature needs its variables
        self.signature = self.loaded.signatures["serving_default"]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        image = self.tf.constant(np.asarray(batch, dtype=np.float32))
        return self.signature(**{INPUT_NAME: image})[OUTPUT_NAME].numpy()
