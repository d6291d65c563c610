"""The Open Inference Protocol (KServe V2) for the spec's model: what every V2 server here says and checks.

    from serving.v2 import protocol
    metadata = protocol.model_metadata(spec, platform="pytorch")      # GET /v2/models/<name>
    batch = protocol.input_batch(spec, name, datatype, shape, data)  # one request input -> float32 batch
    body = protocol.infer_response(spec, probabilities, request_id)   # the answer, as V2 JSON

The servers (serving/kserve/, Ray Serve) parse the wire format and hand the one input here; this
module checks it against the spec (its name, datatype and shape, then `core/contract.py` for the
values) and raises `V2Error` with the HTTP status and gRPC code the protocol's error body takes.
A picture is one BYTES element (PNG/JPEG), read the spec's way by `training/preprocess.py`, as the
other servers read a posted picture. numpy and the project's core only: it runs in every server's
environment.
"""
from __future__ import annotations

import math
import re

import numpy as np

from core import contract
from core.spec import MAX_REQUEST_BYTES, Spec

# V2 tensor datatypes a client may send for the image input, and how numpy reads them. The values
# are checked and converted to float32 by the contract; BOOL is not an image.
NUMERIC = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
           "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
           "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64}
PICTURES = "BYTES"  # one PNG/JPEG per element
# Every datatype as the protocol spells it: anything else ("fp32", "float32") is refused, not guessed at.
DATATYPES = (*NUMERIC, "BOOL", PICTURES)
# An HTTP status and the gRPC status code that says the same (the protocol's mapping).
GRPC_CODES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED",
              429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 500: "INTERNAL", 504: "DEADLINE_EXCEEDED"}


class V2Error(ValueError):
    """A request the protocol refuses: `status` (HTTP) and `grpc_code` (its gRPC twin), and the message."""

    def __init__(self, status: int, message: str):
        super().__init__(without_reprs(message))
        self.status = status
        self.grpc_code = GRPC_CODES[status]

    @property
    def body(self) -> dict:
        """The protocol's error body: {"error": <message>}."""
        return {"error": str(self)}


def input_metadata(spec: Spec) -> dict:
    return {"name": spec.input_name, "datatype": "FP32", "shape": [-1, *spec.item_shape]}


def output_metadata(spec: Spec) -> dict:
    return {"name": spec.output_name, "datatype": "FP32", "shape": [-1, spec.num_classes]}


def model_metadata(spec: Spec, platform: str, versions: list[str] | None = None) -> dict:
    """GET /v2/models/<name>: the spec's input and output (names, shapes, datatypes)."""
    return {"name": spec.model_name, "versions": versions or [], "platform": platform,
            "inputs": [input_metadata(spec)], "outputs": [output_metadata(spec)]}


def check_model(spec: Spec, name: str) -> None:
    """V2Error 404 when `name` is not the model this server serves."""
    if name != spec.model_name:
        raise V2Error(404, f"model {name!r} is not served here (this server serves {spec.model_name!r})")


def check_version(requested: str | None, served: str) -> None:
    """V2Error 404 when a request names a model version other than the one served (none named: the served one)."""
    if requested and requested != served:
        raise V2Error(404, f"version {requested!r} of the model is not served here (it serves version {served!r})")


def element_budget(spec: Spec) -> int:
    """The values one request may declare: the batch limit times the values of one image."""
    return spec.max_batch_size * math.prod(spec.item_shape)


def check_declared(spec: Spec, name: str, datatype, shape) -> list[int]:
    """An input's declared datatype and shape, checked before anything reads its data: the datatype as the
    protocol spells it, the shape a list of integers (400), and what it declares within the request's
    budget (413: values for numbers, pictures for BYTES). Returns the shape."""
    if datatype not in DATATYPES:
        raise V2Error(400, f"input {name!r}: datatype {datatype!r} is not one of the protocol's: "
                           f"{', '.join(DATATYPES)} (spelled exactly so)")
    shape = _shape(shape)
    declared = math.prod(shape)
    if datatype == PICTURES and declared > spec.max_batch_size:
        raise V2Error(413, f"input {name!r}: shape {shape} declares {declared:,} pictures, more than the "
                           f"{spec.max_batch_size} allowed per request: split the batch")
    if datatype != PICTURES and declared > element_budget(spec):
        raise V2Error(413, f"input {name!r}: shape {shape} declares {declared:,} values, more than the request "
                           f"budget of {element_budget(spec):,} ({spec.max_batch_size} images of "
                           f"{spec.describe_item()}): split the batch")
    return shape


def input_batch(spec: Spec, name: str, datatype: str, shape, data) -> np.ndarray:
    """One V2 request input -> float32 (N, *item_shape), checked the project's way; V2Error 400 when bad.

    `data`: the values as the wire delivered them (a nested or flat list from JSON, a numpy array
    from gRPC contents or raw bytes), or for BYTES a list of picture bytes.
    """
    if name != spec.input_name:
        raise V2Error(400, f"unknown input {name!r}: this model takes one input, {spec.input_name!r}")
    shape = check_declared(spec, name, datatype, shape)
    if datatype == PICTURES:
        return _pictures(spec, shape, data)
    if datatype not in NUMERIC:
        raise V2Error(400, f"input {name!r}: datatype {datatype!r} is not an image's: send FP32 "
                           f"(or another numeric type, or BYTES for PNG/JPEG pictures)")
    expected = [-1, *spec.item_shape]
    if len(shape) != len(expected) or list(shape[1:]) != list(spec.item_shape):
        raise V2Error(400, f"input {name!r}: shape {list(shape)} is not {expected} "
                           f"(N images of {spec.describe_item()})")
    values = _values(spec, name, data, datatype)
    if values.size != math.prod(shape):
        raise V2Error(400, f"input {name!r}: shape {list(shape)} needs {math.prod(shape)} values, "
                           f"the data holds {values.size}")
    try:
        return contract.check_batch(values.reshape(shape), spec, f"input {name!r}")
    except contract.ContractError as error:
        raise V2Error(400, str(error)) from None


def request_inputs(spec: Spec, body) -> np.ndarray:
    """A V2 JSON inference request (the decoded body) -> the checked batch of its one input."""
    if not isinstance(body, dict):
        raise V2Error(400, 'the request must be a JSON object with an "inputs" list')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise V2Error(400, f'"inputs" must be a list holding one input, {spec.input_name!r}')
    if len(inputs) != 1:
        raise V2Error(400, f'"inputs" holds {len(inputs)} inputs: this model takes one, {spec.input_name!r}')
    (one,) = inputs
    if not isinstance(one, dict) or not all(key in one for key in ("name", "datatype", "shape", "data")):
        raise V2Error(400, 'each input must be an object with "name", "datatype", "shape" and "data"')
    return input_batch(spec, one["name"], one["datatype"], one["shape"], one["data"])


def infer_response(spec: Spec, probabilities: np.ndarray, request_id: str | None = None,
                   version: str | None = None) -> dict:
    """The V2 JSON answer: the output tensor (flat, row-major) and the labels as a parameter."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    body = {"model_name": spec.model_name, "outputs": [{
        **output_metadata(spec), "shape": list(probabilities.shape), "data": probabilities.ravel().tolist()}]}
    if version is not None:
        body["model_version"] = version
    if request_id is not None:
        body["id"] = request_id
    return body


def labels_of(spec: Spec, probabilities: np.ndarray) -> list[str]:
    """The spec's label of each row."""
    return [spec.labels[int(i)] for i in np.asarray(probabilities).argmax(axis=1)]


def check_size(size: int | None) -> None:
    """V2Error 413 for a body over the request limit (the same limit every server keeps)."""
    if size is not None and size > MAX_REQUEST_BYTES:
        raise V2Error(413, f"the request body has {size:,} bytes, more than the {MAX_REQUEST_BYTES:,} allowed")


# ---- the pieces ------------------------------------------------------------------------------

_REPR = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")  # Python's default repr, e.g. <_io.BytesIO object at 0x7f...>


def without_reprs(message: str) -> str:
    """`message` with any object's default repr replaced: heap addresses are nobody's business."""
    return _REPR.sub("the data", message)


def _shape(shape) -> list[int]:
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                        for d in shape):
        raise V2Error(400, f'"shape" must be a list of sizes (non-negative integers), got {shape!r}')
    return [int(d) for d in shape]


def _values(spec: Spec, name: str, data, datatype: str) -> np.ndarray:
    """The input's values as a flat numpy array (the protocol allows nested or flat JSON lists)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1)
    if not isinstance(data, list):
        raise V2Error(400, f'input {name!r}: "data" must be a list of numbers, got {type(data).__name__}')
    try:
        values = np.asarray(data)
    except (ValueError, TypeError, RecursionError):
        raise V2Error(400, f"input {name!r}: ragged data: the values must form the declared shape") from None
    if values.dtype.kind not in "iuf":
        try:  # the contract names the first value that is not a number
            contract.check_batch(data, spec, f"input {name!r}")
        except contract.ContractError as error:
            raise V2Error(400, str(error)) from None
        raise V2Error(400, f"input {name!r}: must hold numbers only")
    if datatype.startswith(("INT", "UINT")) and values.dtype.kind == "f":
        raise V2Error(400, f"input {name!r}: datatype {datatype} but the data holds fractions")
    return values.reshape(-1)


def _pictures(spec: Spec, shape: list[int], data) -> np.ndarray:
    """The pictures of a BYTES input: every header read first, the request's pixel budget checked (413),
    only then decoded."""
    from training.preprocess import MAX_REQUEST_PIXELS, ImageError, image_to_input, load, open_picture

    items = list(data) if isinstance(data, (list, tuple, np.ndarray)) else [data]
    if not items:
        raise V2Error(400, "BYTES input holds no picture: send one PNG/JPEG per element")
    if math.prod(shape) != len(items):
        raise V2Error(400, f"BYTES input: shape {shape} needs {math.prod(shape)} pictures, the data holds {len(items)}")
    images = []  # how many: within the batch limit already (check_declared)
    for index, item in enumerate(items):
        try:
            images.append(open_picture(_picture_bytes(item)))  # the header only
        except ImageError as error:
            raise V2Error(400, f"picture {index}: {error}") from None
    pixels = sum(image.width * image.height for image in images)
    if pixels > MAX_REQUEST_PIXELS:
        raise V2Error(413, f"the pictures hold {pixels:,} pixels, more than the request budget of "
                           f"{MAX_REQUEST_PIXELS:,}: send smaller pictures or fewer per request")
    batch = []
    for index, image in enumerate(images):
        try:
            batch.append(image_to_input(load(image), spec))
        except ImageError as error:
            raise V2Error(400, f"picture {index}: {error}") from None
    return np.stack(batch).astype(np.float32)


def _picture_bytes(item) -> bytes:
    """A BYTES element: raw bytes (gRPC) or, in JSON, base64 text (a string, or {"b64": ...} as TF
    Serving writes binary values) -> the picture's bytes."""
    import base64
    import binascii

    if isinstance(item, (bytes, bytearray, np.bytes_)):
        return bytes(item)
    text = item.get("b64") if isinstance(item, dict) else item
    if not isinstance(text, str):
        raise V2Error(400, 'a BYTES element must be base64 text (or {"b64": "..."}) of a PNG/JPEG picture')
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise V2Error(400, "a BYTES element is not valid base64: send the picture's bytes base64-encoded") from None
