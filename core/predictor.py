"""The one interface every deployment target implements.

A Predictor takes a batch in the spec's input contract, float32 (N, *item_shape) raw values in the
spec's range (the digits: (N, 8, 8), 0..16), and returns float32 (N, K) probabilities, one column
per label. In-process models, edge runtimes, server clients and the browser all look the same
through it, so the parity matrix, the deploy-all table, load tests and benchmarks iterate over
every target (core/registry.py) with one loop.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Predictor(Protocol):
    name: str  # unique target id, e.g. "torchserve-grpc", "tflite-int8"
    framework: str  # the framework whose training produced the weights: "torch" or "tensorflow"
    precision: str  # "fp32" or "int8"

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, *item_shape) float32 raw values -> (N, K) float32 probabilities."""
        ...
