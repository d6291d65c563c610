"""Bad input against both live servers, over REST and gRPC: each gets a client error naming the problem.

The cases the per-server files already hold (wrong shape, strings, empty batch, out of range,
unknown model/version, token) stay there; this file adds the rest of the battery, the same body
sent to every endpoint that takes it: NaN/Inf, too many images, a 20 MB payload, malformed or
absurdly nested JSON, an empty body, bytes that are neither JSON nor a picture, a truncated
picture, a misleading content type, malformed protobuf and TensorProtos that lie about their shape.
After every case a good request on the same endpoint still gets the right answer.

Where a server is not ours to change, the test pins what it does and says so: TorchServe's Java
gRPC front resets the stream of an over-limit message (CANCELLED) and answers a protobuf it cannot
parse with UNKNOWN/INTERNAL; both are still answers, and the server keeps serving.
"""
from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from core.spec import MAX_BATCH_SIZE, MAX_REQUEST_BYTES
from tests.inputs import image, range_text, shape_text

pytestmark = [pytest.mark.slow, pytest.mark.concerns("torchserve", "tfserving")]
TOLERANCE = 1e-5


def _json(body) -> bytes:
    return json.dumps(body).encode()  # NaN and Infinity are written as JSON's common extension


def over_limit(spec) -> bytes:
    """Valid JSON, four times the request limit and more."""
    one = len(_json(image(spec, spec.value_min)))
    return _json({"instances": [image(spec, spec.value_min)] * (4 * MAX_REQUEST_BYTES // one + 2)})


EMPTY = "the request body is empty: send JSON"
NOT_UTF8 = "the request body is not UTF-8 text (byte"


def cases(spec) -> dict:
    """name -> (body bytes, HTTP status, start of the message), the same on every endpoint, for the spec's input.

    Endpoints: ts-rest, ts-grpc (the body as PredictionsRequest input "data"), tf-rest.
    """
    item, values, low = spec.describe_item(), int(np.prod(spec.item_shape)), spec.value_min
    one = image(spec, low)
    huge = _json({"instances": [one]}).decode().replace(json.dumps(low), "1e999", 1)  # one value JSON reads as infinity
    return {
        "NaN": (_json({"instances": [image(spec, float("nan"))]}), 400,
                f'"instances": contains {values} NaN or infinite'),
        "Infinity": (_json({"instances": [image(spec, float("inf"))]}), 400,
                     f'"instances": contains {values} NaN or infinite'),
        "negative values": (_json({"instances": [image(spec, low - 1)]}), 400,
                            f'"instances": values must lie in {range_text(spec)}, got [{low - 1:g}, {low - 1:g}]'),
        "huge number": (huge.encode(), 400, '"instances": contains 1 NaN or infinite values'),
        "integer beyond 64 bits": (_json({"instances": [np.full(spec.item_shape, 10 ** 30, dtype=object).tolist()]}),
                                   400, '"instances": holds a number too large for float32'),
        "too many images": (_json({"instances": [one] * (MAX_BATCH_SIZE + 1)}), 400,
                            f'"instances" holds {MAX_BATCH_SIZE + 1} images, more than the {MAX_BATCH_SIZE} allowed '
                            "per request"),
        "ragged images": (_json({"instances": [one, one[:-1]]}), 400, '"instances": ragged'),
        "instances not a list": (_json({"instances": "seven"}), 400,
                                 f'"instances" must be a list of {item} images, got str'),
        "malformed JSON": (b'{"instances": [', 400,
                           "the request body is not valid JSON (Expecting value at line 1 column 16)"),
        "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, 400,
                              "the request body is nested too deeply to be an image batch"),
        "empty body": (b"", 400, EMPTY),
        "whitespace body": (b"  \n ", 400, EMPTY),
        "non-image bytes": (b"\x00\x01garbage\xff\xfe", 400, NOT_UTF8),
    }


def special(spec) -> dict:
    """Where the servers word it differently (or TorchServe reads a picture): endpoint -> (status, message)."""
    big = over_limit(spec)
    return {
        "JSON not an object": (b"[1, 2, 3]", {
            "ts": (400, 'the JSON body must be an object with an "instances" list'),
            "tf": (400, 'the request body must be a JSON object with "instances" or "inputs"')}),
        "truncated PNG": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {
            "ts": (400, "not a readable PNG/JPEG image"), "tf": (400, NOT_UTF8)}),
        "20 MB payload": (big, {
            "ts": (413, "Request Entity Too Large"),
            "tf": (413, f"the request body has {len(big):,} bytes, more than the {MAX_REQUEST_BYTES:,} allowed")}),
    }


def expected(spec, case: str, server: str) -> tuple:
    common = cases(spec)
    return common[case][1:] if case in common else special(spec)[case][1][server]


def body_of(spec, case: str) -> bytes:
    return (cases(spec).get(case) or special(spec)[case])[0]


ALL_CASES = ["NaN", "Infinity", "negative values", "huge number", "integer beyond 64 bits", "too many images",
             "ragged images", "instances not a list", "malformed JSON", "nested too deeply", "empty body",
             "whitespace body", "non-image bytes", "JSON not an object", "truncated PNG", "20 MB payload"]
GRPC_CODE = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
             413: grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.fixture(scope="module")
def clients(server_clients):
    """The session's clients under this module's short names: ts/tf (server), rest/grpc (API)."""
    return {"ts-rest": server_clients["torchserve-rest"], "ts-grpc": server_clients["torchserve-grpc"],
            "tf-rest": server_clients["tfserving-rest"], "tf-grpc": server_clients["tfserving-grpc"]}


@pytest.fixture(scope="module")
def references(served, test_split):
    """What each framework answers in-process for the first three test images."""
    import keras

    from core import manifest
    from edge.eager import TorchEagerPredictor

    keras_model = keras.models.load_model(manifest.verify("keras_model", served.root))
    return {"ts": TorchEagerPredictor(served.root).predict(test_split.x[:3]),
            "tf": keras_model.predict(test_split.x[:3], verbose=0)}


def still_serving(clients, references, test_split, endpoint: str) -> None:
    """A good request right after a bad one gets the right answer on the same endpoint."""
    np.testing.assert_allclose(clients[endpoint].predict(test_split.x[:3]), references[endpoint[:2]], atol=TOLERANCE)


def post_raw(client, url: str, body: bytes, content_type: str = "application/json"):
    return client.session.post(url, data=body, headers={"Content-Type": content_type}, timeout=60)


def message_of(answer) -> str:
    """The error message of a REST answer: TorchServe's "message", TF Serving's "error", or the
    status line's reason when the body is empty (TorchServe's 413)."""
    body = answer.json() if answer.content else {}
    return body.get("message") or body.get("error") or answer.reason


def rest_url(clients, endpoint: str) -> str:
    client = clients[endpoint]
    return client.url() if endpoint == "ts-rest" else client.model_url() + ":predict"


@pytest.mark.parametrize("endpoint", ["ts-rest", "tf-rest"])
@pytest.mark.parametrize("case", ALL_CASES)
def test_rest_bad_body_is_a_client_error_naming_the_problem(case, endpoint, clients, references, test_split, spec):
    status, message = expected(spec, case, endpoint[:2])
    answer = post_raw(clients[endpoint], rest_url(clients, endpoint), body_of(spec, case))
    assert (answer.status_code, message_of(answer)[: len(message)]) == (status, message)
    still_serving(clients, references, test_split, endpoint)


@pytest.mark.parametrize("case", ALL_CASES)
def test_torchserve_grpc_bad_body_is_a_client_error_naming_the_problem(case, clients, references, test_split, spec):
    status, message = expected(spec, case, "ts")
    with pytest.raises(grpc.RpcError) as error:
        clients["ts-grpc"].predict_bytes(body_of(spec, case))
    if case == "20 MB payload":
        # grpc-java (TorchServe's front) resets the stream of a message over max_request_size.
        assert error.value.code() == grpc.StatusCode.CANCELLED and "RST_STREAM" in error.value.details()
    else:
        assert (error.value.code(), error.value.details()[: len(message)]) == (GRPC_CODE[status], message)
    still_serving(clients, references, test_split, "ts-grpc")


@pytest.mark.parametrize("endpoint", ["ts-rest", "tf-rest"])
@pytest.mark.parametrize("content_type", ["text/plain", "image/png", "application/octet-stream"])
def test_content_type_is_not_trusted_the_body_decides(endpoint, content_type, clients, references, test_split, spec):
    """A good JSON body under a misleading content type is still read as JSON; a bad one still named."""
    url = rest_url(clients, endpoint)
    good = post_raw(clients[endpoint], url, _json({"instances": test_split.x[:3].tolist()}), content_type)
    assert good.status_code == 200
    rows = good.json()["predictions"]
    probabilities = [row["probabilities"] for row in rows] if endpoint == "ts-rest" else rows
    np.testing.assert_allclose(probabilities, references[endpoint[:2]], atol=TOLERANCE)
    bad = post_raw(clients[endpoint], url, _json({"instances": []}), content_type)
    assert (bad.status_code, message_of(bad)) == (
        400, f'"instances" is empty: send at least one {spec.describe_item()} image')


def _tensor(shape, **values):
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]
    return tensor_pb2.TensorProto(dtype=values.pop("dtype", types_pb2.DT_FLOAT),
                                  tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values)


def tensor_cases(spec) -> dict:
    """Bad TensorProtos for TF Serving's Predict: (tensor maker, status code, start of the message)."""
    name, item, low = spec.input_name, list(spec.item_shape), spec.value_min
    top = spec.value_max + 99
    many = 20 * 1024 * 1024 // (4 * int(np.prod(item)))  # 20 MB of float32 images
    return {
        "NaN": (lambda: np.full((1, *item), np.nan, np.float32), grpc.StatusCode.INVALID_ARGUMENT,
                f'input "{name}": contains {int(np.prod(item))} NaN or infinite values'),
        "Infinity": (lambda: np.full((1, *item), -np.inf, np.float32), grpc.StatusCode.INVALID_ARGUMENT,
                     f'input "{name}": contains {int(np.prod(item))} NaN or infinite values'),
        "out of range": (lambda: np.full((2, *item), top, np.float32), grpc.StatusCode.INVALID_ARGUMENT,
                         f'input "{name}": values must lie in {range_text(spec)}, got [{top:g}, {top:g}]'),
        "float64": (lambda: np.full((1, *item), low, np.float64), grpc.StatusCode.INVALID_ARGUMENT,
                    f'input "{name}": expects arg to be float32 but float64 is provided'),
        "too many images": (lambda: np.full((MAX_BATCH_SIZE + 1, *item), low, np.float32),
                            grpc.StatusCode.INVALID_ARGUMENT,
                            f"Task size {MAX_BATCH_SIZE + 1} is larger than maximum input batch size {MAX_BATCH_SIZE}"),
        "a billion images declared, one value sent": (lambda: _tensor([10 ** 9, *item], float_val=[low]),
                                                      grpc.StatusCode.INVALID_ARGUMENT,
                                                      f"Task size {10 ** 9} is larger than maximum input batch size"),
        "negative dimension": (lambda: _tensor([-5, *item]), grpc.StatusCode.INVALID_ARGUMENT,
                               f'input "{name}" has a negative dimension: {[-5, *item]}'),
        "no batch axis": (lambda: _tensor(item, float_val=[low]), grpc.StatusCode.INVALID_ARGUMENT,
                          f'input "{name}" must have shape {shape_text(spec)}, got {item}'),
        "content not a whole number of floats": (lambda: _tensor([1, *item], tensor_content=b"abc"),
                                                 grpc.StatusCode.INVALID_ARGUMENT,
                                                 f'input "{name}" is not a valid tensor'),
        "a shape and no values": (lambda: _tensor([1, *item]), grpc.StatusCode.INVALID_ARGUMENT,
                                  f'input "{name}" is not a valid tensor: its shape {[1, *item]} declares '
                                  f"{int(np.prod(item)):,} values but it carries none"),
        "20 MB payload": (lambda: np.full((many, *item), low, np.float32), grpc.StatusCode.RESOURCE_EXHAUSTED,
                          "SERVER: Received message larger than max"),
    }


TENSOR_CASES = ["NaN", "Infinity", "out of range", "float64", "too many images",
                "a billion images declared, one value sent", "negative dimension", "no batch axis",
                "content not a whole number of floats", "a shape and no values", "20 MB payload"]


@pytest.mark.parametrize("case", TENSOR_CASES)
def test_tfserving_grpc_bad_tensor_is_a_client_error_naming_the_problem(case, clients, references, test_split, spec):
    make, code, message = tensor_cases(spec)[case]
    with pytest.raises(grpc.RpcError) as error:
        clients["tf-grpc"].predict_tensors({spec.input_name: make()})
    assert (error.value.code(), error.value.details()[: len(message)]) == (code, message)
    still_serving(clients, references, test_split, "tf-grpc")


def test_tfserving_grpc_refuses_an_unknown_input_before_reading_its_tensor(clients, references, test_split, spec):
    """Found by `make fuzz`: a billion-image tensor under another input name must not be materialized."""
    with pytest.raises(grpc.RpcError) as error:
        clients["tf-grpc"].predict_tensors({"pixels": _tensor([10 ** 8, *spec.item_shape], float_val=[1.0])})
    assert (error.value.code(), error.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"input names do not match the signature: sent ['pixels'], expected ['{spec.input_name}']")
    still_serving(clients, references, test_split, "tf-grpc")


PREDICT_METHODS = {"ts": "/org.pytorch.serve.grpc.inference.InferenceAPIsService/Predictions",
                   "tf": "/tensorflow.serving.PredictionService/Predict"}


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff\x0f not a protobuf", b"\x0a\x05dig"],
                         ids=["garbage", "truncated"])
@pytest.mark.parametrize("server", ["ts", "tf"])
def test_malformed_protobuf_is_answered_and_the_server_keeps_serving(server, payload, clients, references, test_split):
    client = clients[f"{server}-grpc"]
    raw = client.channel.unary_unary(PREDICT_METHODS[server])  # no serializers: the bytes go out as they are
    metadata = getattr(client, "metadata", ())
    metadata = metadata if isinstance(metadata, tuple) else ()  # TFServingGrpc.metadata is a method
    with pytest.raises(grpc.RpcError) as error:
        raw(payload, metadata=metadata, timeout=30)
    if server == "tf":
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith(f"the request to {PREDICT_METHODS['tf']} "
                                                "is not a valid protobuf message")
    else:  # TorchServe 0.12's Java front: not ours to change; an answer all the same
        assert error.value.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
    still_serving(clients, references, test_split, f"{server}-grpc")
