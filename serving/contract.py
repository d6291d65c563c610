"""Turn request JSON into a model batch, checking it against the input contract.

Both servers accept a list of images, each an 8x8 nested list of raw values 0..16 (`instances`).
This module checks such a list and returns a float32 (N, 8, 8) array, or raises `ContractError`
with a message naming the problem (empty, ragged, non-numeric, wrong shape, out of range). It is
shipped inside the TorchServe archive next to the handler, so it imports numpy and the spec only.
"""
from __future__ import annotations

import numpy as np

from training.spec import IMAGE_SIZE, VALUE_MAX, VALUE_MIN


class ContractError(ValueError):
    """The request does not meet the input contract; the message names the problem."""


def batch_from_instances(instances, *, field: str = "instances", check_range: bool = True,
                         item_shape: tuple = (IMAGE_SIZE, IMAGE_SIZE)) -> np.ndarray:
    """A list of 8x8 images -> float32 (N, 8, 8); `field` names the JSON key in error messages.

    `item_shape` is the shape of one image (a server may pass its signature's); `check_range`
    also refuses values outside the spec's 0..16.
    """
    item = "x".join(str(d) for d in item_shape)
    if not isinstance(instances, list):
        raise ContractError(f'"{field}" must be a list of {item} images, got {type(instances).__name__}')
    if not instances:
        raise ContractError(f'"{field}" is empty: send at least one {item} image')
    try:
        values = np.array(instances)
    except ValueError:  # numpy refuses ragged nesting
        raise ContractError(f'"{field}" is ragged: every image must be a nested list of {item} numbers') from None
    if values.dtype.kind not in "iuf":  # strings, None, booleans, objects
        raise ContractError(f'"{field}" must hold numbers only, found {_first_non_number(instances)!r}')
    if values.shape[1:] != tuple(item_shape):
        raise ContractError(f'"{field}" must have shape {[-1, *item_shape]} (N images of {item}), got {list(values.shape)}')
    if not np.all(np.isfinite(values)):
        raise ContractError(f'"{field}" contains NaN or infinite values')
    if check_range and (values.min() < VALUE_MIN or values.max() > VALUE_MAX):
        raise ContractError(
            f'"{field}" values must lie in [{VALUE_MIN:g}, {VALUE_MAX:g}], got [{values.min():g}, {values.max():g}]')
    return values.astype(np.float32)


def _first_non_number(nested):
    """The first leaf of nested lists that is not a number, for the error message."""
    for item in nested:
        if isinstance(item, list):
            found = _first_non_number(item)
            if found is not None:
                return found
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return item
    return None
