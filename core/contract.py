"""The one input check: a batch against the spec, for every server, runner, client and page driver.

    from core import contract, spec
    batch = contract.check_batch(array, spec.load())          # -> float32 (N, *item_shape)
    batch = contract.check_instances(json_list, task)          # nested lists from a JSON request

Both raise `ContractError` (a ValueError) with a message naming the problem: not an array, empty,
ragged, non-numeric, wrong shape, NaN or infinite, out of the spec's value range, more images than
the spec allows per request. `parse_json` decodes a request body the same way for both servers.
`range_warning` names a batch that passes but sits in a sliver of the range (data scaled for
another model), for the servers' and runners' warnings.
numpy and the standard library only: the edge runtime and the TorchServe archive ship it. The page
keeps one JavaScript twin (web/tfjs/page/contract.js), checked against the same vectors.
"""
from __future__ import annotations

import json

import numpy as np

from core.spec import Spec


class ContractError(ValueError):
    """The input does not meet the spec's contract; the message names the problem."""


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
        raise ContractError(f"{what} is not valid JSON ({error.msg} at line {error.lineno} "
                            f"column {error.colno})") from None
    except RecursionError:  # [[[[...]]]] thousands deep: refuse it rather than crash a worker
        raise ContractError(f"{what} is nested too deeply to be an image batch") from None


def check_batch(batch, spec: Spec, source: str = "input", *, check_range: bool = True,
                max_batch: int | None = -1) -> np.ndarray:
    """Any array-like meeting the contract -> float32 (N, *spec.item_shape).

    `source` names the input in messages. `check_range` refuses values outside the spec's range;
    `max_batch` refuses more images than that (-1: the spec's limit, None: no limit). A batch that
    already is a writable C-contiguous float32 array is returned as it is (no copy); any other is
    converted into a new float32 array.
    """
    try:
        values = np.asarray(batch)
    except (ValueError, TypeError, RecursionError):  # ragged nested lists and the like
        raise ContractError(f"{source}: ragged: every image must be {spec.describe_item()} numbers") from None
    if values.dtype.kind not in "iuf":  # strings, None, booleans, objects (or integers beyond 64 bits)
        if values.dtype == object or isinstance(batch, list):  # a JSON request: name the offending value
            found = _first_non_number(batch if isinstance(batch, list) else values.tolist())
            if found is _ALL_NUMBERS:
                raise ContractError(f"{source}: holds a number too large for float32")
            raise ContractError(f"{source}: must hold numbers only, found {found!r}")
        raise ContractError(f"{source}: must be numeric, got dtype {values.dtype}")
    item_shape = spec.item_shape
    if values.ndim != len(item_shape) + 1 or values.shape[1:] != item_shape:
        raise ContractError(f"{source}: must have shape {[-1, *item_shape]} (N images of {spec.describe_item()}), "
                            f"got {list(values.shape)}")
    if len(values) == 0:
        raise ContractError(f"{source}: empty batch: send at least one {spec.describe_item()} image")
    limit = spec.max_batch_size if max_batch == -1 else max_batch
    if limit is not None and len(values) > limit:
        raise ContractError(f"{source}: holds {len(values)} images, more than the {limit} allowed per request: "
                            "split the batch")
    # Two passes over the data instead of five: min and max propagate NaN and show any infinity, so
    # both finite means every value is finite, and they are the range check's figures too.
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ContractError(f"{source}: contains {int(np.sum(~np.isfinite(values)))} NaN or infinite values")
    value_min, value_max = spec.value_min, spec.value_max
    if check_range and (low < value_min or high > value_max):
        raise ContractError(f"{source}: values must lie in {spec.value_range()}, got [{low:g}, {high:g}]")
    if values.dtype == np.float32 and values.flags.c_contiguous and values.flags.writeable:
        return values  # already what the runtimes take: no copy
    with np.errstate(over="ignore"):
        checked = values.astype(np.float32)
    # Finite as float64, infinite as float32: only a wider float can overflow (integers up to 2**64
    # and float32/float16 cannot), and not one held inside a range float32 can hold.
    may_overflow = values.dtype.kind == "f" and values.dtype.itemsize > 4 and not (
        check_range and max(abs(value_min), abs(value_max)) <= np.finfo(np.float32).max)
    if may_overflow and not (np.isfinite(checked.min()) and np.isfinite(checked.max())):
        raise ContractError(f"{source}: holds a number too large for float32")
    return checked


def check_instances(instances, spec: Spec, field: str = "instances", **options) -> np.ndarray:
    """A JSON list of images (nested lists) -> float32 (N, *item_shape); `field` names the key in messages.

    The list-level problems (not a list, empty, too many) are named before numpy sees the data,
    so a huge or deeply nested request is refused without materializing it.
    """
    item = spec.describe_item()
    if not isinstance(instances, list):
        raise ContractError(f'"{field}" must be a list of {item} images, got {type(instances).__name__}')
    if not instances:
        raise ContractError(f'"{field}" is empty: send at least one {item} image')
    limit = spec.max_batch_size if options.get("max_batch", -1) == -1 else options["max_batch"]
    if limit is not None and len(instances) > limit:
        raise ContractError(f'"{field}" holds {len(instances)} images, more than the {limit} allowed per request: '
                            "split the batch")
    return check_batch(instances, spec, f'"{field}"', **{**options, "max_batch": None})  # the limit: checked above


# A batch whose every value lies in the bottom 1/16 of the spec's range (0..1 sent to a 0..16 or
# 0..255 model) meets the contract, but the model sees near-blank images: answered, with a warning.
SLIVER = 1 / 16


def range_warning(batch: np.ndarray, spec: Spec, source: str = "input") -> str | None:
    """Words for a checked batch far from the spec's range in distribution, or None.

    A constant batch (blank images) is not warned about: the lower edge of the range is valid ink-free input.
    """
    value_min, value_max = spec.value_min, spec.value_max
    if not (np.isfinite(value_min) and np.isfinite(value_max)):  # a foreign model: no range to compare with
        return None
    batch = np.asarray(batch)
    low, high = float(batch.min()), float(batch.max())  # the methods: np.min's dispatch costs more than a small batch
    if not low < high <= value_min + (value_max - value_min) * SLIVER:
        return None
    return (f"{source}: every value lies in [{low:g}, {high:g}], the bottom 1/{round(1 / SLIVER)} of the model's "
            f"range {spec.value_range()}: scaled for another range? send raw values in {spec.value_range()}")


def warning_header(text: str) -> str:
    """An HTTP `Warning` header carrying `text` (RFC 7234: code 299, agent "-", the text quoted)."""
    return '299 - "' + text.replace("\\", "/").replace('"', "'") + '"'


_ALL_NUMBERS = object()  # what _first_non_number answers when every leaf is a number


def _first_non_number(nested):
    """The first leaf of nested lists that is not a number, for the error message (_ALL_NUMBERS if none).

    Walks with an explicit stack: a request nested a thousand deep must not hit the recursion limit.
    """
    stack = [iter(nested if isinstance(nested, list) else [nested])]
    while stack:
        item = next(stack[-1], StopIteration)
        if item is StopIteration:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return item
    return _ALL_NUMBERS
