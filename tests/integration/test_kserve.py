"""KServe's ModelServers (one per framework) and the Ray Serve application over the Open Inference Protocol,
on the session's servers.

Health, readiness and metadata from the spec; every bad request answered with the protocol's
error body (REST) or the gRPC code that says the same, naming the problem, and the server still
serving after it; pictures as BYTES; V1 REST; Prometheus metrics; no listener beyond loopback on
any process the runner started; and a standard V2 client (tritonclient, in .venv-kserve) reading
the same answers. Parity on the whole test split, fuzz, bursts and the soak run these targets
with the others (tests/parity, test_fuzz.py, tests/load, test_soak.py).
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess

import grpc
import numpy as np
import pytest
import requests

from core import registry
from core.spec import MAX_REQUEST_BYTES
from tests.inputs import range_text

pytestmark = [pytest.mark.slow, pytest.mark.concerns("kserve")]
TOLERANCE = 1e-5
HEAP_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")  # an object's default repr: no message may carry one
# Every V2 REST endpoint: KServe's and Ray Serve's answer alike (serving/v2/); V1 and /metrics are KServe's own.
REST = [name for name in registry.served() if name.endswith("-v2-rest")]
KSERVE_REST = [name for name in REST if name.startswith("kserve")]
GRPC = [name for name in registry.served() if name.startswith("kserve") and name.endswith("-grpc")]


@pytest.fixture(scope="module")
def references(served):
    """The framework's own model, in-process, by framework."""
    return {framework: registry.load(name, root=served.root) for framework, name in registry.REFERENCES.items()}


def expected(references, target, batch):
    return references[registry.TARGETS[target].framework].predict(batch)


def v2_input(spec, batch, **changes):
    batch = np.asarray(batch, dtype=np.float32)
    one = {"name": spec.input_name, "shape": list(batch.shape), "datatype": "FP32", "data": batch.ravel().tolist()}
    return {"inputs": [{**one, **changes}]}


# ---- health, metadata, metrics -----------------------------------------------------------------

@pytest.mark.parametrize("target", REST + GRPC)
def test_health_and_metadata_come_from_the_spec(server_clients, spec, target):
    client = server_clients[target]
    assert client.live() and client.ready() and client.model_ready()
    meta = client.metadata()
    assert meta["name"] == spec.model_name
    assert meta["inputs"] == [{"name": spec.input_name, "datatype": "FP32", "shape": [-1, *spec.item_shape]}]
    assert meta["outputs"] == [{"name": spec.output_name, "datatype": "FP32", "shape": [-1, spec.num_classes]}]


@pytest.mark.parametrize("target", REST)
def test_raw_v2_json_as_the_protocol_writes_it(server_clients, references, test_split, spec, target):
    """The request exactly as the spec's examples write it (a flat row-major "data" list), and its answer."""
    client, images = server_clients[target], test_split.x[:3]
    body = {"id": "request-7", **v2_input(spec, images)}
    answer = requests.post(f"{client.model_url}/infer", json=body, timeout=30).json()
    assert answer["model_name"] == spec.model_name and answer["id"] == "request-7"
    (output,) = answer["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == (spec.output_name, "FP32", [3, spec.num_classes])
    np.testing.assert_allclose(np.reshape(output["data"], (3, -1)), expected(references, target, images),
                               atol=TOLERANCE)


@pytest.mark.parametrize("target", KSERVE_REST)
def test_v1_rest_and_metrics(server_clients, references, test_split, spec, target):
    client, images = server_clients[target], test_split.x[:2]
    answer = requests.post(f"{client.base}/v1/models/{spec.model_name}:predict",
                           json={"instances": images.tolist()}, timeout=30).json()
    np.testing.assert_allclose(answer["predictions"], expected(references, target, images), atol=TOLERANCE)
    metrics = requests.get(f"{client.base}/metrics", timeout=10)
    assert metrics.status_code == 200 and "request_predict_seconds" in metrics.text


@pytest.mark.parametrize("target", REST + GRPC)
def test_rescaled_values_are_answered_with_a_warning(server_clients, test_split, spec, target):
    """0..1 values for a wider range: the answer carries the warning in V2 `parameters` (and V1's body)."""
    client = server_clients[target]
    rescaled = (test_split.x[:2] / spec.value_max).astype(np.float32)
    if target in GRPC:
        reply, plain = client.infer(client.request(rescaled)), client.infer(client.request(test_split.x[:2]))
        warning, unwarned = reply.parameters["warning"].string_param, "warning" not in plain.parameters
    else:
        reply = client.infer_json(client.request_body(rescaled))
        plain = client.infer_json(client.request_body(test_split.x[:2]))
        warning, unwarned = reply["parameters"]["warning"], "warning" not in (plain.get("parameters") or {})
        if target in KSERVE_REST:  # V1 REST too
            v1 = requests.post(f"{client.base}/v1/models/{spec.model_name}:predict",
                               json={"instances": rescaled.tolist()}, timeout=30).json()
            assert v1["warning"].startswith('"instances": every value lies in [') and len(v1["predictions"]) == 2
    assert warning.startswith(f"input '{spec.input_name}': every value lies in [")
    assert f"the model's range {spec.value_range()}" in warning
    assert unwarned


# ---- bad input -----------------------------------------------------------------------------------

def rest_cases(spec) -> dict:
    """name -> (body bytes, HTTP status, what the message says)."""
    item, values, low = spec.describe_item(), int(np.prod(spec.item_shape)), spec.value_min
    one = np.full((1, *spec.item_shape), low, np.float32)
    def as_json(body):
        return json.dumps(body).encode()
    return {
        "wrong shape": (as_json(v2_input(spec, one[:, :-1])), 400, f"shape {list(one[:, :-1].shape)} is not"),
        "shape and data disagree": (as_json(v2_input(spec, one, shape=[2, *spec.item_shape])), 400,
                                    f"needs {2 * values} values, the data holds {values}"),
        "wrong datatype": (as_json(v2_input(spec, one, datatype="BOOL", data=[True] * values)), 400,
                           "datatype 'BOOL' is not an image's"),
        "NaN": (as_json(v2_input(spec, np.full_like(one, np.nan))), 400, f"contains {values} NaN or infinite values"),
        "out of range": (as_json(v2_input(spec, one - 1)), 400,
                         f"values must lie in {range_text(spec)}, got [{low - 1:g}, {low - 1:g}]"),
        "empty batch": (as_json(v2_input(spec, one[:0])), 400, f"empty batch: send at least one {item} image"),
        "strings": (as_json(v2_input(spec, one, data=["a"] * values)), 400, "must hold numbers only, found 'a'"),
        "unknown input": (as_json(v2_input(spec, one, name="pixels")), 400, "unknown input 'pixels'"),
        "no inputs": (as_json({"inputs": []}), 400, "holds 0 inputs"),
        "malformed JSON": (b'{"inputs": [', 400, "the request body is not valid JSON"),
        "empty body": (b"", 400, "the request body is empty"),
        "not JSON": (b"\x00\x01garbage\xff\xfe", 400, "the request body is not UTF-8 text (byte"),
        "nested too deeply": (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply to be an image batch"),
        "oversized": (b'{"inputs": [' + b" " * (MAX_REQUEST_BYTES + 10) + b"]}", 413,
                      f"more than the {MAX_REQUEST_BYTES:,} allowed"),
        # What kserve's schema would coerce (8.0 -> 8, "fp32" -> "FP32"): the raw JSON is read first.
        "fractional size in shape": (as_json(v2_input(spec, one, shape=[1, *spec.item_shape[:-1], 8.0])), 400,
                                     '"shape" must be a list of sizes (non-negative integers)'),
        "datatype misspelled": (as_json(v2_input(spec, one, datatype="fp32")), 400,
                                "datatype 'fp32' is not one of the protocol's"),
        "shape over the budget": (as_json(v2_input(spec, one, shape=[65_000, *spec.item_shape])), 413,
                                  f"more than the request budget of {spec.max_batch_size * values:,}"),
        "truncated picture": (as_json({"inputs": [{"name": spec.input_name, "shape": [1], "datatype": "BYTES",
                                                   "data": [base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()]}]}),
                              400, "picture 0: not a readable PNG/JPEG image"),
    }


REST_CASES = ["wrong shape", "shape and data disagree", "wrong datatype", "NaN", "out of range", "empty batch",
              "strings", "unknown input", "no inputs", "malformed JSON", "empty body", "not JSON", "nested too deeply",
              "oversized", "fractional size in shape", "datatype misspelled", "shape over the budget",
              "truncated picture"]


@pytest.mark.parametrize("case", REST_CASES)
@pytest.mark.parametrize("target", REST)
def test_rest_refuses_bad_input_naming_the_problem(server_clients, references, test_split, spec, target, case):
    client = server_clients[target]
    body, status, message = rest_cases(spec)[case]
    answer = requests.post(f"{client.model_url}/infer", data=body, headers={"Content-Type": "application/json"},
                           timeout=30)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"] and not HEAP_ADDRESS.search(answer.json()["error"])
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)  # still serving


def binary_cases(spec) -> dict:
    """name -> (datatype, shape, binary_data_size, the bytes after the JSON header, HTTP status, message):
    the binary extension's sizes, which kserve's parser slices by before any check (it answered 500)."""
    item, values = list(spec.item_shape), int(np.prod(spec.item_shape))
    one = bytes(values)  # one image of zeros, as UINT8
    many = (MAX_REQUEST_BYTES - 1024) // values  # as many images as the body limit lets through: 65,000 here
    huge = (10 ** 9).to_bytes(4, "little") + b"x" * 10  # a BYTES element claiming a gigabyte
    not_integer = "binary_data_size must be a non-negative integer, got"
    return {
        "size not a number": ("UINT8", [1, *item], "abc", one, 400, f"{not_integer} 'abc'"),
        "size negative": ("UINT8", [1, *item], -100, one, 400, f"{not_integer} -100"),
        "size as text": ("UINT8", [1, *item], str(values), one, 400, f"{not_integer} '{values}'"),
        "size zero": ("UINT8", [1, *item], 0, one, 400, f"binary_data_size 0 is not the {values} bytes"),
        "size past the end": ("UINT8", [1, *item], 10 ** 9, one, 400, "runs past the body's end"),
        "BYTES length past the end": ("BYTES", [1], len(huge), huge, 400, "BYTES element 0 runs past"),
        "images over the budget": ("UINT8", [many, *item], many * values, bytes(many * values), 413,
                                   f"declares {many * values:,} values, more than the request budget of "
                                   f"{spec.max_batch_size * values:,}"),
    }


def binary_request(spec, datatype, shape, size, raw) -> tuple[bytes, dict]:
    """A binary-extension body (the JSON header, then the raw bytes) and its headers."""
    header = json.dumps({"inputs": [{"name": spec.input_name, "shape": shape, "datatype": datatype,
                                     "parameters": {"binary_data_size": size}}]}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header)),
                          "Content-Type": "application/octet-stream"}


BINARY_CASES = ["size not a number", "size negative", "size as text", "size zero", "size past the end",
                "BYTES length past the end", "images over the budget"]


@pytest.mark.parametrize("case", BINARY_CASES)
@pytest.mark.parametrize("target", REST)
def test_rest_binary_extension_sizes_are_checked_before_reading(server_clients, references, test_split, spec, target,
                                                                case):
    client = server_clients[target]
    datatype, shape, size, raw, status, message = binary_cases(spec)[case]
    body, headers = binary_request(spec, datatype, shape, size, raw)
    answer = requests.post(f"{client.model_url}/infer", data=body, headers=headers, timeout=30)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"] and not HEAP_ADDRESS.search(answer.text)
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)  # still serving


@pytest.mark.parametrize("target", REST)
def test_rest_binary_extension_answers_a_good_request(server_clients, references, spec, target):
    client = server_clients[target]
    images = np.full((2, *spec.item_shape), spec.value_min, np.float32)
    body, headers = binary_request(spec, "FP32", list(images.shape), images.nbytes, images.astype("<f4").tobytes())
    answer = requests.post(f"{client.model_url}/infer", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(client.rows(answer.json()), expected(references, target, images), atol=TOLERANCE)


@pytest.mark.parametrize("target", REST + GRPC)
def test_only_the_served_model_version_is_answered(server_clients, test_split, spec, target):
    """A path or message naming the served version answers as one naming none; any other version is 404 /
    NOT_FOUND on both protocols (kserve answered 501 on REST and ignored it on gRPC)."""
    client, images = server_clients[target], test_split.x[:2]
    if target in GRPC:
        served = client.infer(client.request(images)).model_version
        for version, code in ((served, None), ("999", grpc.StatusCode.NOT_FOUND)):
            request = client.request(images)
            request.model_version = version
            if code is None:
                assert client.infer(request).model_version == served
                continue
            with pytest.raises(grpc.RpcError) as raised:
                client.stub.ModelInfer(request, timeout=30)
            assert raised.value.code() == code and "version '999'" in raised.value.details()
        return
    served = client.infer_json(client.request_body(images))["model_version"]
    answer = requests.post(f"{client.model_url}/versions/{served}/infer", json=client.request_body(images), timeout=30)
    assert answer.status_code == 200 and answer.json()["model_version"] == served, answer.text
    for url in (f"{client.model_url}/versions/999/infer", f"{client.model_url}/versions/999/ready"):
        answer = requests.request("POST" if url.endswith("infer") else "GET", url, json=client.request_body(images),
                                  timeout=30)
        assert answer.status_code == 404 and "version '999'" in answer.json()["error"], answer.text


@pytest.mark.parametrize("target", REST)
def test_rest_unknown_model_is_404(server_clients, spec, target):
    client = server_clients[target]
    answer = requests.post(f"{client.base}/v2/models/nope/infer", json=v2_input(spec, np.zeros((1, *spec.item_shape))),
                           timeout=30)
    assert answer.status_code == 404 and "nope" in answer.json()["error"]


@pytest.mark.parametrize("action", ["unload", "load"])
@pytest.mark.parametrize("target", REST)
def test_rest_repository_api_is_refused_and_the_model_stays(server_clients, references, test_split, spec, target,
                                                            action):
    """kserve answers the V2 repository extension to anyone: an unload would take the model down."""
    client = server_clients[target]
    answer = requests.post(f"{client.base}/v2/repository/models/{spec.model_name}/{action}", timeout=30)
    assert answer.status_code == 403 and "repository API is off" in answer.json()["error"]
    assert client.model_ready()
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)


@pytest.mark.parametrize("target", GRPC)
def test_grpc_repository_api_is_refused_and_the_model_stays(server_clients, references, test_split, spec, target):
    client = server_clients[target]
    with pytest.raises(grpc.RpcError) as raised:
        client.stub.RepositoryModelUnload(client.pb2.RepositoryModelUnloadRequest(model_name=spec.model_name),
                                          timeout=30)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "repository API is off" in raised.value.details()
    assert client.model_ready()
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)


def grpc_cases(spec, pb2) -> dict:
    """name -> (ModelInferRequest, gRPC code, what the details say)."""
    item = list(spec.item_shape)
    values = int(np.prod(item))

    def request(shape=(1, *item), datatype="FP32", raw=None, name=spec.input_name, model=spec.model_name, **contents):
        tensor = pb2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=list(shape))
        for key, value in contents.items():
            getattr(tensor.contents, key).extend(value)
        out = pb2.ModelInferRequest(model_name=model, inputs=[tensor])
        if raw is not None:
            out.raw_input_contents.append(raw)
        return out

    low = np.full(values, spec.value_min, "<f4")
    return {
        "wrong shape": (request(shape=(1, *item[:-1]), raw=low[:-item[-1]].tobytes()), "INVALID_ARGUMENT", "is not"),
        "raw bytes short": (request(raw=low[:-1].tobytes()), "INVALID_ARGUMENT", f"needs {values} values"),
        "raw bytes ragged": (request(raw=low.tobytes()[:-1]), "INVALID_ARGUMENT", "not a whole number of FP32"),
        "NaN": (request(raw=np.full(values, np.nan, "<f4").tobytes()), "INVALID_ARGUMENT", "NaN or infinite"),
        "out of range": (request(raw=(low - 1).tobytes()), "INVALID_ARGUMENT", "values must lie in"),
        "typed contents": (request(fp32_contents=[spec.value_max + 1] * values), "INVALID_ARGUMENT", "must lie in"),
        "wrong datatype": (request(datatype="BOOL", bool_contents=[True] * values), "INVALID_ARGUMENT", "'BOOL'"),
        "unknown input": (request(name="pixels", raw=low.tobytes()), "INVALID_ARGUMENT", "unknown input 'pixels'"),
        "unknown model": (request(model="nope", raw=low.tobytes()), "NOT_FOUND", "nope"),
        "oversized": (request(raw=b"\0" * (MAX_REQUEST_BYTES + 10)), "RESOURCE_EXHAUSTED", "larger than max"),
        "not a picture": (request(shape=(1,), datatype="BYTES", bytes_contents=[b"GIF89a garbage"]),
                          "INVALID_ARGUMENT", "picture 0:"),
        "truncated picture": (request(shape=(1,), datatype="BYTES", bytes_contents=[b"\x89PNG\r\n\x1a\n"]),
                              "INVALID_ARGUMENT", "picture 0: not a readable PNG/JPEG image"),
        "datatype misspelled": (request(datatype="fp32", raw=low.tobytes()), "INVALID_ARGUMENT",
                                "datatype 'fp32' is not one of the protocol's"),
        "shape over the budget": (request(shape=(65_000, *item), raw=low.tobytes()), "RESOURCE_EXHAUSTED",
                                  f"more than the request budget of {spec.max_batch_size * values:,}"),
    }


GRPC_CASES = ["wrong shape", "raw bytes short", "raw bytes ragged", "NaN", "out of range", "typed contents",
              "wrong datatype", "unknown input", "unknown model", "oversized", "not a picture", "truncated picture",
              "datatype misspelled", "shape over the budget"]


@pytest.mark.parametrize("case", GRPC_CASES)
@pytest.mark.parametrize("target", GRPC)
def test_grpc_refuses_bad_input_with_the_protocol_s_code(server_clients, references, test_split, spec, target, case):
    client = server_clients[target]
    request, code, message = grpc_cases(spec, client.pb2)[case]
    with pytest.raises(grpc.RpcError) as raised:
        client.stub.ModelInfer(request, timeout=30)
    assert raised.value.code().name == code, raised.value.details()
    assert message in raised.value.details() and not HEAP_ADDRESS.search(raised.value.details())
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)  # still serving


@pytest.mark.parametrize("target", GRPC)
def test_grpc_bytes_that_are_not_a_protobuf_are_invalid_argument(server_clients, references, test_split, target):
    client = server_clients[target]
    send = client.channel.unary_unary(f"/{client.SERVICE}/ModelInfer")
    with pytest.raises(grpc.RpcError) as raised:
        send(b"\xff\xff\xff not a protobuf", timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid protobuf message" in raised.value.details()
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)  # still serving


# ---- pictures --------------------------------------------------------------------------------

def png_of(image: np.ndarray, spec) -> bytes:
    """A test image as a grey PNG (dark ink on white, as a drawing is), bigger than the spec's input."""
    from PIL import Image

    span = spec.value_max - spec.value_min
    grey = (255 - (np.asarray(image, np.float64).reshape(spec.item_shape[:2]) - spec.value_min) / span * 255)
    picture = Image.fromarray(grey.astype(np.uint8), "L").resize((64, 64), Image.NEAREST)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("target", REST + GRPC)
def test_pictures_as_bytes_are_read_the_spec_s_way(server_clients, references, test_split, spec, target):
    from training.preprocess import picture_to_input

    pictures = [png_of(image, spec) for image in test_split.x[:3]]
    got = server_clients[target].predict_pictures(pictures)
    want = expected(references, target, np.stack([picture_to_input(p, spec) for p in pictures]))
    np.testing.assert_allclose(got, want, atol=TOLERANCE)


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A 4000x3000 PNG: one picture the per-picture limit allows, a few together over the request's budget."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (4000, 3000), 255).save(out, format="PNG", compress_level=9)
    return out.getvalue()


@pytest.mark.parametrize("target", REST + GRPC)
def test_pictures_over_the_request_s_pixel_budget_are_413_before_decoding(server_clients, references, test_split,
                                                                        spec, photo, target):
    from training.preprocess import MAX_REQUEST_PIXELS

    client = server_clients[target]
    pictures = [photo] * (MAX_REQUEST_PIXELS // (4000 * 3000) + 1)
    message = f"more than the request budget of {MAX_REQUEST_PIXELS:,}"
    if target in GRPC:
        tensor = client.pb2.ModelInferRequest.InferInputTensor(name=spec.input_name, datatype="BYTES",
                                                               shape=[len(pictures)])
        tensor.contents.bytes_contents.extend(pictures)
        with pytest.raises(grpc.RpcError) as raised:
            client.stub.ModelInfer(client.pb2.ModelInferRequest(model_name=spec.model_name, inputs=[tensor]),
                                   timeout=30)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and message in raised.value.details()
    else:
        body = {"inputs": [{"name": spec.input_name, "shape": [len(pictures)], "datatype": "BYTES",
                            "data": [base64.b64encode(p).decode() for p in pictures]}]}
        answer = requests.post(f"{client.model_url}/infer", json=body, timeout=30)
        assert answer.status_code == 413 and message in answer.json()["error"], answer.text
    np.testing.assert_allclose(client.predict(test_split.x[:2]), expected(references, target, test_split.x[:2]),
                               atol=TOLERANCE)  # still serving


# ---- loopback only -----------------------------------------------------------------------------

def test_no_process_the_runner_started_listens_beyond_loopback(served):
    """Every listening socket of every server process (and its children) is on 127.0.0.1 / ::1."""
    import ipaddress

    import psutil

    from core import servers as table
    from deploy.local import runner

    seen = {}
    for name in table.SERVERS:
        recorded = runner.read_pid(runner.run_dir(name, served.root))
        if recorded is None:
            continue
        parent = psutil.Process(recorded.pid)
        for process in [parent, *parent.children(recursive=True)]:
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    seen.setdefault(name, []).append(connection.laddr)
    assert set(seen) >= set(table.model_servers()), seen  # every model server of core/servers.py
    for name, addresses in seen.items():
        for address in addresses:
            ip = ipaddress.ip_address(address.ip)
            ip = ip.ipv4_mapped or ip if ip.version == 6 else ip
            assert ip.is_loopback, f"{name} listens on {address.ip}:{address.port}"


# ---- a standard V2 client ------------------------------------------------------------------------

@pytest.mark.parametrize("target", REST + GRPC)
def test_tritonclient_reads_the_same_answers(served, references, test_split, spec, target):
    """tritonclient (the standard V2 client; it needs protobuf<7, so it runs in .venv-kserve)."""
    from core import paths
    from deploy.local.servers import KSERVE_PYTHON

    images = test_split.x[:4]
    target_row = registry.TARGETS[target]
    address = registry.where(target, served.root, served.endpoints)
    url = address.split()[1].split("/v2/")[0].removeprefix("http://") if target.endswith("rest") \
        else address.split()[0].removeprefix("grpc://")
    run = subprocess.run([str(KSERVE_PYTHON), "-m", "tests.integration.triton_v2",
                          "--protocol", target.rsplit("-", 1)[1],
                          "--url", url, "--model", spec.model_name, "--input", spec.input_name,
                          "--output", spec.output_name, "--batch", json.dumps(images.tolist())],
                         cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["live"] and answer["ready"] and answer["model_ready"]
    assert answer["metadata_inputs"] == [[spec.input_name, "FP32", [-1, *spec.item_shape]]]
    np.testing.assert_allclose(answer["probabilities"], expected(references, target_row.name, images), atol=TOLERANCE)


def test_the_breakdown_with_tiny_counts_writes_what_the_report_reads(served):
    """make bench TOOL=kserve-breakdown: every stage started on its own free ports, answered, timed, stopped."""
    from benchmarks.report import servers as report_servers
    from benchmarks.report.figures import load_inputs
    from core import paths

    command = [str(paths.REPO_ROOT / ".venv-kserve" / "bin" / "python"), "-m", "benchmarks", "kserve-breakdown",
               "--seconds", "0.2", "--warmup", "2", "--frameworks", "torch"]
    done = subprocess.run(command, cwd=paths.REPO_ROOT, env={**os.environ, "DIGITS_ARTIFACTS": str(served.root)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = json.loads((served.root / "bench" / "kserve-breakdown.json").read_text())["results"]
    assert [r["stage"] for r in rows] == ["model", "model + V2 JSON", "HTTP round trip", "floor", "kserve",
                                          "kserve V1 REST", "kserve + logging", "kserve, 1 torch thread"]
    assert rows[0]["x_model"] == 1.0 and all(r["n"] > 0 and r["p50_ms"] > 0 for r in rows)
    assert "torch: KServe V2 REST" in report_servers.breakdown(load_inputs(served.root))
