"""Turn request JSON into a model batch, checking it against the input contract.

Both servers accept a list of images, each an 8x8 nested list of raw values 0..16 (`instances`).
This module checks such a list and returns a float32 (N, 8, 8) array, or raises `ContractError`
with a message naming the problem (empty, ragged, non-numeric, wrong shape, out of range, more
images than the spec's MAX_BATCH_SIZE). `parse_json` decodes a request body the same way for both
servers, turning every decoding failure (bad UTF-8, bad JSON, nesting too deep) into a
ContractError. It is shipped inside the TorchServe archive next to the handler, so it imports
numpy and the spec only.
"""
from __future__ import annotations

import json

import numpy as np

from training.spec import IMAGE_SIZE, MAX_BATCH_SIZE, VALUE_MAX, VALUE_MIN


class ContractError(ValueError):
    """The request does not meet the input contract; the message names the problem."""


def parse_json(body: bytes | str, expect: str = 'JSON {"instances": [...]}'):
    """A JSON request body -> Python value; ContractError naming what is wrong with it.

    `expect` says what to send instead, in the messages.
    """
    what = "the request body"
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ContractError(f"{what} is not UTF-8 text (byte {error.start}): send {expect}") from None
    if not body.strip():
        raise ContractError(f"{what} is empty: send {expect}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ContractError(f"{what} is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:  # [[[[...]]]] thousands deep: refuse it rather than crash a worker
        raise ContractError(f"{what} is nested too deeply to be an image batch") from None


def batch_from_instances(instances, *, field: str = "instances", check_range: bool = True,
                         item_shape: tuple = (IMAGE_SIZE, IMAGE_SIZE),
                         max_batch: int | None = MAX_BATCH_SIZE) -> np.ndarray:
    """A list of 8x8 images -> float32 (N, 8, 8); `field` names the JSON key in error messages.

    `item_shape` is the shape of one image (a server may pass its signature's); `check_range`
    also refuses values outside the spec's 0..16; `max_batch` refuses more images than that
    (None: no limit).
    """
    item = "x".join(str(d) for d in item_shape)
    if not isinstance(instances, list):
        raise ContractError(f'"{field}" must be a list of {item} images, got {type(instances).__name__}')
    if not instances:
        raise ContractError(f'"{field}" is empty: send at least one {item} image')
    if max_batch is not None and len(instances) > max_batch:
        raise ContractError(f'"{field}" holds {len(instances)} images, more than the {max_batch} allowed per request: '
                            "split the batch")
    try:
        values = np.array(instances)
    except (ValueError, TypeError, RecursionError):  # numpy refuses ragged or absurdly deep nesting
        raise ContractError(f'"{field}" is ragged: every image must be a nested list of {item} numbers') from None
    if values.dtype.kind not in "iuf":  # strings, None, booleans, objects (or integers beyond 64 bits)
        found = _first_non_number(instances)
        if found is _ALL_NUMBERS:
            raise ContractError(f'"{field}" holds a number too large for float32')
        raise ContractError(f'"{field}" must hold numbers only, found {found!r}')
    if values.shape[1:] != tuple(item_shape):
        raise ContractError(f'"{field}" must have shape {[-1, *item_shape]} (N images of {item}), got {list(values.shape)}')
    if not np.all(np.isfinite(values)):
        raise ContractError(f'"{field}" contains NaN or infinite values')
    if check_range and (values.min() < VALUE_MIN or values.max() > VALUE_MAX):
        raise ContractError(
            f'"{field}" values must lie in [{VALUE_MIN:g}, {VALUE_MAX:g}], got [{values.min():g}, {values.max():g}]')
    with np.errstate(over="ignore"):
        batch = values.astype(np.float32)
    if not np.all(np.isfinite(batch)):  # finite as float64, infinite as float32 (only without the range check)
        raise ContractError(f'"{field}" holds a number too large for float32')
    return batch


_ALL_NUMBERS = object()  # what _first_non_number answers when every leaf is a number


def _first_non_number(nested):
    """The first leaf of nested lists that is not a number, for the error message (_ALL_NUMBERS if none).

    Walks with an explicit stack: a request nested a thousand deep must not hit the recursion limit.
    """
    stack = [iter(nested)]
    while stack:
        item = next(stack[-1], StopIteration)
        if item is StopIteration:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return item
    return _ALL_NUMBERS
