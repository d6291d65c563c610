"""Property-based fuzzing of request bodies against every served endpoint (hypothesis).

Every generated request must get either a valid prediction (one row of K probabilities summing
to 1 per image, K the spec's class count) or a well-formed client error: HTTP 4xx with a message, or
gRPC INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED / FAILED_PRECONDITION with details. Never a
5xx, INTERNAL or UNKNOWN.

`make test` runs DIGITS_FUZZ_EXAMPLES (default 75) cases per endpoint; `make fuzz` runs thousands
and writes the outcome counts to artifacts/bench/fuzz.json (DIGITS_FUZZ_REPORT):

    DIGITS_FUZZ_EXAMPLES=2000 DIGITS_FUZZ_REPORT=artifacts/bench/fuzz.json \
        .venv/bin/python -m pytest tests/integration/test_fuzz.py -q
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import registry
from core.spec import MAX_BATCH_SIZE
from serving.rest import RestError, call

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]
EXAMPLES = int(os.environ.get("DIGITS_FUZZ_EXAMPLES", "75"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED,
                 grpc.StatusCode.FAILED_PRECONDITION}
HEAP_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")  # an object's default repr: no message may carry one
OUTCOMES: Counter = Counter()  # (endpoint, outcome) -> count, for the summary and the report file

# ---- what gets sent (built from the spec: its item shape, value range, names) -------------------

def nested(shape, leaf):
    """Nested lists of `shape` (any rank) with leaves drawn from `leaf`."""
    strategy = leaf
    for size in reversed(shape):
        strategy = st.lists(strategy, min_size=size, max_size=size)
    return strategy


def bodies(spec):
    """Request bodies: valid images most of the time, then every way of getting them wrong."""
    low, high, shape = spec.value_min, spec.value_max, list(spec.item_shape)
    pixel = st.one_of(st.floats(low, high, width=32), st.integers(int(np.ceil(low)), int(high)),  # valid values
                      st.floats(allow_nan=True, allow_infinity=True), st.integers(-2 ** 70, 2 ** 70),
                      st.text(max_size=3), st.none(), st.booleans())
    good_image = nested(shape, st.floats(low, high, width=32))
    ragged = nested(shape[:-1], st.lists(pixel, min_size=shape[-1] - 1, max_size=shape[-1] + 1))
    any_image = st.one_of(good_image, ragged, pixel)
    full = [np.full(shape, low).tolist()]
    instances = st.one_of(st.lists(good_image, min_size=1, max_size=4), st.lists(any_image, max_size=4),
                          st.sampled_from([MAX_BATCH_SIZE, MAX_BATCH_SIZE + 1]).map(lambda n: full * n))
    json_value = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=3),
                              max_leaves=25)
    keys = st.sampled_from(["instances", "inputs", "signature_name", spec.input_name, "x"])
    return st.one_of(
        instances.map(lambda value: json.dumps({"instances": value}).encode()),
        st.dictionaries(keys, st.one_of(instances, json_value), max_size=3).map(lambda body: json.dumps(body).encode()),
        json_value.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=300),
        st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"[" * 5000, b"{", b""]).flatmap(
            lambda head: st.binary(max_size=100).map(lambda tail: head + tail)),
    )


@st.composite
def tensor_requests(draw, spec):
    """(inputs {name: TensorProto}, model name, version) for TF Serving's Predict."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    item = list(spec.item_shape)
    dtype = draw(st.sampled_from([types_pb2.DT_FLOAT] * 4 + [types_pb2.DT_DOUBLE, types_pb2.DT_INT32,
                                                             types_pb2.DT_STRING, types_pb2.DT_HALF, types_pb2.DT_BOOL,
                                                             0, 999]))
    kind = draw(st.sampled_from(["images", "any", "huge batch"]))
    if kind == "images":
        shape = [draw(st.integers(1, 4)), *item]
    elif kind == "any":
        shape = draw(st.lists(st.integers(-2, 2 * MAX_BATCH_SIZE), max_size=4))
    else:
        shape = [draw(st.integers(0, 10 ** 10)), *item]
    proto = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape]))
    how = draw(st.sampled_from(["float_val", "content", "string_val", "none"]))
    if how == "float_val":
        whole = int(np.prod(shape)) if shape and all(0 <= d for d in shape) else -1
        count = whole if 0 <= whole <= 4096 else draw(st.integers(0, 70))
        span = spec.value_max - spec.value_min
        values = st.floats(spec.value_min - span / 16, spec.value_max + span / 4, width=32) | st.floats(width=32)
        proto.float_val.extend(draw(st.lists(values, min_size=min(count, 1), max_size=max(min(count, 300), 1))))
    elif how == "content":
        proto.tensor_content = draw(st.binary(max_size=300))
    elif how == "string_val":
        proto.string_val.extend(draw(st.lists(st.binary(max_size=5), max_size=3)))
    name = draw(st.sampled_from([spec.input_name] * 6 + ["pixels", ""]))
    model = draw(st.sampled_from([spec.model_name] * 6 + ["nope"]))
    version = draw(st.sampled_from([None] * 6 + [1, 999]))
    return {name: proto}, model, version


# ---- the property -----------------------------------------------------------------------------

def check_predictions(endpoint: str, rows, classes: int) -> None:
    probabilities = np.asarray([r["probabilities"] if isinstance(r, dict) else r for r in rows], dtype=np.float64)
    assert probabilities.ndim == 2 and probabilities.shape[1] == classes, probabilities.shape
    assert 1 <= len(probabilities) <= MAX_BATCH_SIZE
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    OUTCOMES[(endpoint, "prediction")] += 1


def check_rest(endpoint: str, send, classes: int) -> None:
    try:
        answer = send()
    except RestError as error:
        assert 400 <= error.status < 500, f"{endpoint}: server error {error.status}: {error.message}"
        assert error.message.strip(), f"{endpoint}: HTTP {error.status} without a message"
        assert not HEAP_ADDRESS.search(error.message), f"{endpoint}: an object's repr in {error.message!r}"
        OUTCOMES[(endpoint, f"HTTP {error.status}")] += 1
        return
    check_predictions(endpoint,
                      answer["predictions"] if "predictions" in answer else answer["outputs"],  # row / columnar
                      classes)


def check_grpc(endpoint: str, send, classes: int) -> None:
    try:
        rows = send()
    except ValueError as error:  # TorchServe: a bad request batched with good ones gets OK + {"error": ...}
        assert str(error).strip(), f"{endpoint}: an error body without a message"
        OUTCOMES[(endpoint, "error body")] += 1
        return
    except grpc.RpcError as error:
        assert error.code() in CLIENT_ERRORS, f"{endpoint}: {error.code()} {error.details()}"
        assert error.details().strip(), f"{endpoint}: {error.code()} without details"
        assert not HEAP_ADDRESS.search(error.details()), f"{endpoint}: an object's repr in {error.details()!r}"
        OUTCOMES[(endpoint, error.code().name)] += 1
        return
    check_predictions(endpoint, rows, classes)


@pytest.fixture(scope="module")
def clients(server_clients):
    yield server_clients
    report()  # the outcome counts, once every case of this module ran


def report() -> None:
    """Print the outcome counts; write them as JSON where DIGITS_FUZZ_REPORT names a file."""
    per_endpoint: dict = {}
    for (endpoint, outcome), count in sorted(OUTCOMES.items()):
        per_endpoint.setdefault(endpoint, {})[outcome] = count
    print(f"\nfuzz outcomes ({EXAMPLES} examples per endpoint asked):")
    for endpoint, counts in per_endpoint.items():
        print(f"  {endpoint:<16} {sum(counts.values()):>6} requests  {counts}")
    target = os.environ.get("DIGITS_FUZZ_REPORT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps({
            "examples_per_endpoint": EXAMPLES, "endpoints": per_endpoint,
            "requests": sum(OUTCOMES.values()), "server_errors": 0,  # any would have failed the run
            "command": f"DIGITS_FUZZ_EXAMPLES={EXAMPLES} DIGITS_FUZZ_REPORT={target} "
                       ".venv/bin/python -m pytest tests/integration/test_fuzz.py -q  (or: make fuzz)",
        }, indent=2) + "\n")
        print(f"  wrote {target}")


@FUZZ
@given(data=st.data())
def test_torchserve_rest_answers_any_body_with_a_prediction_or_a_client_error(clients, spec, data):
    client, body = clients["torchserve-rest"], data.draw(bodies(spec))
    check_rest("torchserve-rest", lambda: call(client.session, "POST", client.url(), data=body, timeout=60,
                                               headers={"Content-Type": "application/json"}), spec.num_classes)


@FUZZ
@given(data=st.data())
def test_torchserve_grpc_answers_any_body_with_a_prediction_or_a_client_error(clients, spec, data):
    client, body = clients["torchserve-grpc"], data.draw(bodies(spec))
    check_grpc("torchserve-grpc", lambda: client.predict_bytes(body)["predictions"], spec.num_classes)


@FUZZ
@given(data=st.data())
def test_tfserving_rest_answers_any_body_with_a_prediction_or_a_client_error(clients, spec, data):
    client, body = clients["tfserving-rest"], data.draw(bodies(spec))
    check_rest("tfserving-rest", lambda: call(client.session, "POST", client.model_url() + ":predict", data=body,
                                              timeout=60, headers={"Content-Type": "application/json"}),
               spec.num_classes)


@FUZZ
@given(data=st.data())
def test_tfserving_grpc_answers_any_tensor_with_a_prediction_or_a_client_error(clients, spec, data):
    import tensorflow as tf

    client = clients["tfserving-grpc"]
    inputs, model, version = data.draw(tensor_requests(spec))

    def send():
        response = client.predict_tensors(inputs, model_name=model or None, version=version)
        return tf.make_ndarray(response.outputs[spec.output_name]).tolist()

    check_grpc("tfserving-grpc", send, spec.num_classes)


# ---- the Open Inference Protocol (V2) servers -------------------------------------------------

V2_REST = [name for name in registry.served() if name.endswith("-v2-rest")]
V2_GRPC = [name for name in registry.served() if name.endswith("-v2-grpc")]
V2_DATATYPES = ["FP32"] * 6 + ["FP64", "INT32", "UINT8", "FP16", "BOOL", "BYTES", "STRING", ""]


@st.composite
def v2_inputs(draw, spec):
    """One V2 input as JSON: mostly well-formed images, then wrong names, datatypes, shapes and data."""
    item = list(spec.item_shape)
    count = draw(st.integers(0, 3))
    shape = draw(st.sampled_from([[count, *item]] * 4 + [[count], item, [count, *item[::-1]], [-1, *item]]))
    flat = int(np.prod(shape)) if all(d >= 0 for d in shape) else 0
    span = spec.value_max - spec.value_min
    value = st.floats(spec.value_min, spec.value_max, width=32) \
        | st.floats(spec.value_min - span, spec.value_max + span) \
        | st.floats() | st.integers(-2 ** 70, 2 ** 70) | st.text(max_size=3) | st.none()
    good = st.lists(st.floats(spec.value_min, spec.value_max, width=32), min_size=flat, max_size=flat)
    data = draw(st.one_of(good, good, st.lists(value, max_size=min(flat + 2, 300)), st.text(max_size=8),
                          st.lists(st.binary(max_size=8).map(lambda b: b.hex()), max_size=3)))
    return {"name": draw(st.sampled_from([spec.input_name] * 6 + ["pixels"])),
            "datatype": draw(st.sampled_from(V2_DATATYPES)), "shape": shape, "data": data}


def v2_bodies(spec):
    requests_ = st.lists(v2_inputs(spec), min_size=0, max_size=2).map(lambda inputs: {"inputs": inputs})
    return st.one_of(requests_.map(lambda body: json.dumps(body).encode()), bodies(spec))


@pytest.mark.parametrize("target", V2_REST)
@FUZZ
@given(data=st.data())
def test_v2_rest_answers_any_body_with_a_prediction_or_a_client_error(clients, spec, target, data):
    client, body = clients[target], data.draw(v2_bodies(spec))
    model = data.draw(st.sampled_from([client.model] * 8 + ["nope"]))
    url = f"{client.base}/v2/models/{model}/infer"

    def send():
        answer = call(client.session, "POST", url, data=body, timeout=60, headers={"Content-Type": "application/json"})
        return {"outputs": client.rows(answer).tolist()}

    check_rest(target, send, spec.num_classes)


@st.composite
def v2_tensor_requests(draw, spec, pb2):
    """A ModelInferRequest: the batch as raw bytes or typed contents, any datatype, shape and name."""
    item = list(spec.item_shape)
    shape = draw(st.one_of(st.integers(1, 4).map(lambda n: [n, *item]),
                           st.lists(st.integers(0, 2 * MAX_BATCH_SIZE), max_size=4)))
    datatype = draw(st.sampled_from(V2_DATATYPES))
    tensor = pb2.ModelInferRequest.InferInputTensor(name=draw(st.sampled_from([spec.input_name] * 6 + ["x", ""])),
                                                    datatype=datatype, shape=shape)
    request = pb2.ModelInferRequest(model_name=draw(st.sampled_from([spec.model_name] * 6 + ["nope"])),
                                    inputs=[tensor])
    whole = int(np.prod(shape)) if shape else 0
    how = draw(st.sampled_from(["raw", "raw", "fp32_contents", "bytes_contents", "garbage raw", "none"]))
    if how == "raw":
        values = np.asarray(draw(st.lists(st.floats(spec.value_min, spec.value_max, width=32),
                                          min_size=min(whole, 4096), max_size=min(whole, 4096))), dtype="<f4")
        request.raw_input_contents.append(values.tobytes())
    elif how == "fp32_contents":
        tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=min(whole + 2, 300))))
    elif how == "bytes_contents":
        tensor.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=20), max_size=3)))
    elif how == "garbage raw":
        request.raw_input_contents.append(draw(st.binary(max_size=300)))
    return request


@pytest.mark.parametrize("target", V2_GRPC)
@FUZZ
@given(data=st.data())
def test_v2_grpc_answers_any_tensor_with_a_prediction_or_a_client_error(clients, spec, target, data):
    client = clients[target]
    request = data.draw(v2_tensor_requests(spec, client.pb2))
    check_grpc(target, lambda: client.rows(client.stub.ModelInfer(request, timeout=60)).tolist(), spec.num_classes)
