"""The source frameworks' compiled paths, as Predictors: held to parity and timed like the eager ones.

    torch-compile  torch.compile (TorchInductor; on CPU it generates C++ and builds it with g++)
    tf-function    the Keras model traced once into a tf.function graph (no Python per layer)
    tf-xla         the same graph compiled by XLA (`jit_compile=True`)

Each loads the same verified file as its eager twin (edge/eager.py) and compiles on its first call,
so `make bench-edge` reports that first call (the compile) apart from the warm latency. The graphs
take any batch size: torch.compile with dynamic shapes, the tf.function with the model's own input
signature (batch dimension None); XLA compiles once per batch size it meets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edge import common
from edge.eager import KerasEagerPredictor, TorchEagerPredictor


class TorchCompilePredictor(TorchEagerPredictor):
    """The PyTorch checkpoint through `torch.compile` (inductor), one graph for every batch size."""

    name = "torch-compile"

    def __init__(self, root: Path | None = None):
        import torch

        super().__init__(root)
        self.compiled = torch.compile(self.model, dynamic=True)  # compiles lazily, at the first call

    def predict(self, batch) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.compiled(torch.from_numpy(common.check_runner_batch(batch, self.spec, self.name))).numpy()


class TfFunctionPredictor(KerasEagerPredictor):
    """The Keras model as one `tf.function` graph, traced at the first call."""

    name = "tf-function"
    jit_compile = False

    def __init__(self, root: Path | None = None):
        import tensorflow as tf

        super().__init__(root)
        model = self.model
        # The model's own input shape, batch dimension None: one trace serves every batch size.
        signature = [tf.TensorSpec(model.inputs[0].shape, tf.float32)]
        self.graph = tf.function(lambda x: model(x, training=False), input_signature=signature,
                                 jit_compile=self.jit_compile)

    def predict(self, batch) -> np.ndarray:
        return np.asarray(self.graph(common.check_runner_batch(batch, self.spec, self.name)), dtype=np.float32)


class TfXlaPredictor(TfFunctionPredictor):
    """The same graph compiled by XLA (`jit_compile=True`)."""

    name = "tf-xla"
    jit_compile = True

