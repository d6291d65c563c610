"""Inputs built from a spec, so no test spells the digits' shape, range or class count.

    from tests.inputs import image, batch, wrong_shape
    image(spec)                 # one valid image as nested lists, at the top of the spec's range
    batch(spec, 3, value)       # a float32 (3, *item_shape) batch filled with `value`
    wrong_shape(spec)           # one image with its last axis one longer
"""
from __future__ import annotations

import numpy as np


def batch(spec, count: int = 1, value: float | None = None) -> np.ndarray:
    """A float32 (count, *item_shape) batch filled with `value` (default: the spec's largest value)."""
    return np.full((count, *spec.item_shape), spec.value_max if value is None else value, np.float32)


def image(spec, value: float | None = None) -> list:
    """One valid image as nested lists (what a JSON request carries)."""
    return batch(spec, 1, value)[0].tolist()


def wrong_shape(spec) -> list:
    """One image whose last axis is one longer than the spec's (nested lists)."""
    shape = [*spec.item_shape[:-1], spec.item_shape[-1] + 1]
    return np.full(shape, spec.value_min, np.float32).tolist()


def shape_text(spec, count: int | None = None) -> str:
    """The shape as the contract's messages print it: [-1, 8, 8], or [count, 8, 8]."""
    return "[" + ", ".join(str(d) for d in (-1 if count is None else count, *spec.item_shape)) + "]"


def range_text(spec) -> str:
    return f"[{spec.value_min:g}, {spec.value_max:g}]"
