"""What a V2 REST inference request declares, checked from its raw bytes before KServe's parser reads them.

    from serving.v2 import declared
    declared.check_body(spec, body, request.headers.get("inference-header-content-length"))

KServe's parser believes what a request says: a binary-extension input of shape [65000, 8, 8] is
turned into a Python list of 4 million numbers on the event loop before any check of ours runs,
and a `binary_data_size` of "abc", -100 or 10**9 ends in a TypeError or struct.error answered 500.
Its schema also coerces: a shape of 8.0 becomes 8, a datatype "fp32" becomes "FP32". So the raw
JSON (for the binary extension: its JSON header) is read here first, each input's datatype and
shape checked as the protocol spells them and against the request's budget (serving/v2/protocol.py,
`check_declared`: 400 / 413), and each `binary_data_size` checked to be a non-negative integer that
fits in the body and matches the shape (400). What is not JSON at all is left to the parser, whose
refusal the app words (serving/v2/rest_app.py).
"""
from __future__ import annotations

import math

import numpy as np

from core.spec import Spec
from serving.v2 import protocol

SIZE = "binary_data_size"


def check_body(spec: Spec, body: bytes, json_length: str | None) -> None:
    """V2Error (400 / 413) for a request body whose declared inputs the protocol refuses; None when it may be read."""
    binary = None
    if json_length is None:
        request = _json(body)
        if not isinstance(request, dict):
            return  # not JSON, or not an object: the parser's refusal says so
    else:
        if not json_length.isdigit() or int(json_length) > len(body):
            raise protocol.V2Error(400, f"Inference-Header-Content-Length {json_length!r} is not the length of "
                                        f"the JSON header within the body's {len(body):,} bytes")
        request = _json(body[:int(json_length)])
        if not isinstance(request, dict):
            raise protocol.V2Error(400, f"the first {json_length} bytes of the body (Inference-Header-Content-"
                                        "Length) are not a JSON inference request object")
        binary = memoryview(body)[int(json_length):]
    inputs = request.get("inputs")
    if not isinstance(inputs, list):
        return  # the schema's refusal names it
    at = 0
    for one in inputs:
        if not isinstance(one, dict):
            raise protocol.V2Error(400, 'each input must be an object with "name", "datatype" and "shape"')
        name, datatype = one.get("name"), one.get("datatype")
        shape = protocol.check_declared(spec, name, datatype, one.get("shape"))
        parameters = one.get("parameters")
        if binary is None or "data" in one or not isinstance(parameters, dict) or SIZE not in parameters:
            continue
        size = _size(name, parameters[SIZE], len(binary) - at)
        _check_contents(name, datatype, shape, binary[at:at + size])
        at += size
    if binary is not None and at != len(binary):
        raise protocol.V2Error(400, f"the body holds {len(binary):,} bytes after the JSON header, but the inputs' "
                                    f"{SIZE} add up to {at:,}")


def _json(text: bytes):
    """The JSON value of `text`, or None when it is not JSON (the parser's refusal words that)."""
    try:
        from orjson import loads  # KServe's own parser: several times faster than json's on a 4 MiB body
    except ImportError:
        from json import loads
    try:
        return loads(text)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
        return None


def _size(name, size, left: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise protocol.V2Error(400, f"input {name!r}: {SIZE} must be a non-negative integer, got {size!r}")
    if size > left:
        raise protocol.V2Error(400, f"input {name!r}: {SIZE} {size:,} runs past the body's end ({left:,} bytes left)")
    return size


def _check_contents(name, datatype: str, shape: list[int], raw: memoryview) -> None:
    """The binary data of one input against its shape: whole values, or for BYTES elements whose lengths fit."""
    count = math.prod(shape)
    if datatype != protocol.PICTURES:
        width = 1 if datatype == "BOOL" else np.dtype(protocol.NUMERIC[datatype]).itemsize
        if len(raw) != count * width:
            raise protocol.V2Error(400, f"input {name!r}: {SIZE} {len(raw):,} is not the {count * width:,} bytes "
                                        f"of shape {shape} in {datatype}")
        return
    at, elements = 0, 0
    while at < len(raw):  # each element: a 4-byte little-endian length, then that many bytes
        if at + 4 > len(raw):
            raise protocol.V2Error(400, f"input {name!r}: the binary BYTES data ends inside an element's length")
        at += 4 + int.from_bytes(raw[at:at + 4], "little")
        elements += 1
        if at > len(raw):
            raise protocol.V2Error(400, f"input {name!r}: BYTES element {elements - 1} runs past its {SIZE}")
    if elements != count:
        raise protocol.V2Error(400, f"input {name!r}: shape {shape} needs {count} BYTES elements, "
                                    f"the binary data holds {elements}")
