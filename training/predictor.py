"""The one interface every deployment target implements.

A Predictor takes a batch in the project's input contract, float32 (N, 8, 8) raw values 0..16,
and returns float32 (N, 10) probabilities. In-process models, edge runtimes, server clients and
the browser all look the same through it, so the parity tests, load tests and benchmarks can
iterate over every target with one loop.
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
        """(N, 8, 8) float32 raw values 0..16 -> (N, 10) float32 probabilities."""
        ...
