"""TF Serving's model run in-process: the `savedmodel` target, and the serving benchmarks' baseline.

`SavedModelInProcess` is the newest verified TF Serving version directory, called through its
`serving_default` signature (what TF Serving serves), as a Predictor. TorchServe's in-process
twin is the `torch-eager` target (edge/eager.py): the checkpoint its archive was built from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from serving.tfserving import configs


class SavedModelInProcess:
    name, framework, precision = "savedmodel", "tensorflow", "fp32"

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
        self.spec = specs.load(root)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        image = self.tf.constant(np.asarray(batch, dtype=np.float32))
        return self.signature(**{self.spec.input_name: image})[self.spec.output_name].numpy()


class ArchiveInProcess:
    """What TorchServe would serve, without TorchServe: the TorchScript inside the verified archive
    (.mar), loaded with torch.jit and called here (`make check-network` judges the server rows by it)."""
    framework, precision = "torch", "fp32"

    def __init__(self, root: Path | None = None):
        import io
        import zipfile

        import torch

        from serving.torchserve import archive

        root = root or paths.artifacts_dir()
        path = manifest.verify(archive.artifact_id(), root)
        self.name, self.torch, self.spec = "torchserve-archive", torch, specs.load(root)
        with zipfile.ZipFile(path) as mar:
            serialized = next(name for name in mar.namelist() if name.endswith(".pt"))
            self.model = torch.jit.load(io.BytesIO(mar.read(serialized)), map_location="cpu").eval()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()
