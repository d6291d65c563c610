"""TF Serving (real or compatible), live: golden answers over gRPC and REST through the official
API, metadata, status and TF Serving's error codes, on the session's (read-only) servers. New
versions on disk: test_tfserving_versions.py, on servers of its own."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests

from serving.rest import RestError
from tests.conftest import wait_for
from tests.inputs import batch, image, shape_text, wrong_shape

pytestmark = [pytest.mark.slow, pytest.mark.concerns("tfserving")]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras_probabilities(served, test_split):
    """The source framework's answers: the trained Keras model, in-process."""
    import keras

    from core import manifest

    model = keras.models.load_model(manifest.verify("keras_model", served.root))
    return model.predict(test_split.x, verbose=0)


@pytest.fixture(scope="module")
def grpc_client(served):
    from serving.tfserving.client import TFServingGrpc

    client = TFServingGrpc(served.endpoints, root=served.root)
    yield client
    client.close()


@pytest.fixture(scope="module")
def rest(served):
    from serving.tfserving.client import TFServingRest

    return TFServingRest(served.endpoints, root=served.root)


@pytest.fixture
def still_serving(grpc_client, rest, test_split, keras_probabilities):
    yield
    for client in (grpc_client, rest):
        np.testing.assert_allclose(client.predict(test_split.x[:3]), keras_probabilities[:3], atol=TOLERANCE)


def _check_golden(served, expected, test_split):
    assert served.shape == (len(test_split), expected.shape[1])
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    assert (served.argmax(axis=1) == test_split.y).mean() > 0.8


@pytest.mark.parametrize("api", ["grpc", "rest"])
def test_golden_test_split_matches_in_process_keras(api, grpc_client, rest, test_split, keras_probabilities):
    client = grpc_client if api == "grpc" else rest
    _check_golden(client.predict(test_split.x), keras_probabilities, test_split)


def test_rest_columnar_inputs_and_named_instances(rest, test_split, keras_probabilities, spec):
    columnar = rest.predict_json({"inputs": {spec.input_name: test_split.x.tolist()}})["outputs"]
    _check_golden(np.asarray(columnar, dtype=np.float32), keras_probabilities, test_split)
    rows = rest.predict_json({"instances": [{spec.input_name: one} for one in test_split.x[:5].tolist()],
                              "signature_name": "serving_default"})["predictions"]
    np.testing.assert_allclose(rows, keras_probabilities[:5], atol=TOLERANCE)


@pytest.fixture
def compatible_server():
    """Skip where the real tensorflow_model_server answers: the test is about the compatible server's own messages."""
    from deploy.local import servers

    if servers.tfserving_binary():
        pytest.skip("the real tensorflow_model_server runs here; pictures and warnings are the compatible server's")


def _b64_png(values: np.ndarray, spec) -> dict:
    """TF Serving's binary convention for one picture: {"b64": base64 PNG} of a test image (a grey
    picture of it, 8 pixels per cell, its range mapped onto 0..255)."""
    import base64
    import io

    from PIL import Image

    grey = ((values.reshape(spec.item_shape[:2] + (-1,)).mean(axis=2) - spec.value_min)
            / (spec.value_max - spec.value_min))
    buffer = io.BytesIO()
    Image.fromarray(np.kron(255 - grey * 255, np.ones((8, 8))).astype(np.uint8)).save(buffer, format="PNG")
    return {"b64": base64.b64encode(buffer.getvalue()).decode()}


def test_rest_b64_pictures_are_read_like_torchserve_reads_a_posted_one(compatible_server, rest, test_split, spec,
                                                                       served):
    """{"b64": ...} in "instances" and in "inputs" (named or not) becomes the input training.preprocess makes."""
    import base64

    import keras

    from core import manifest
    from training.preprocess import picture_to_input

    pictures = [_b64_png(x, spec) for x in test_split.x[:2]]
    inputs = np.stack([picture_to_input(base64.b64decode(p["b64"]), spec) for p in pictures])
    expected = keras.models.load_model(manifest.verify("keras_model", served.root)).predict(inputs, verbose=0)
    for body, key in [({"instances": pictures}, "predictions"), ({"instances": [{spec.input_name: pictures[0]},
                       {spec.input_name: pictures[1]}]}, "predictions"),
                      ({"inputs": {spec.input_name: pictures}}, "outputs"), ({"inputs": pictures}, "outputs")]:
        np.testing.assert_allclose(rest.predict_json(body)[key], expected, atol=TOLERANCE)
    np.testing.assert_allclose(rest.predict_json({"inputs": pictures[0]})["outputs"], expected[:1], atol=TOLERANCE)


def test_rest_b64_gif_is_named(compatible_server, rest, still_serving, spec):
    import base64

    gif = base64.b64encode(b"GIF89a" + bytes(20)).decode()
    with pytest.raises(RestError) as error:
        rest.predict_json({"instances": [{"b64": gif}]})
    assert (error.value.status, error.value.message) == (
        400, '"instances"[0]: unsupported picture format GIF: send PNG or JPEG')


def test_rescaled_values_are_answered_with_a_warning(compatible_server, rest, grpc_client, test_split, spec):
    """0..1 values for a wider range: REST answers with a `Warning` header, gRPC with trailing metadata."""
    rescaled = (test_split.x[:2] / spec.value_max).astype(np.float32)
    answer = rest.session.post(rest.model_url() + ":predict", json={"instances": rescaled.tolist()}, timeout=30)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    assert answer.headers["Warning"].startswith('299 - "\'instances\': every value lies in [')
    assert f"the model's range {spec.value_range()}" in answer.headers["Warning"]
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    message = predict_pb2.PredictRequest()
    grpc_client._spec(message.model_spec, None, None, "serving_default")
    message.inputs[spec.input_name].CopyFrom(tf.make_tensor_proto(rescaled))
    _, call = grpc_client.predictions.Predict.with_call(message, timeout=30)
    (warning,) = [value for key, value in call.trailing_metadata() if key == "warning"]
    assert warning.startswith(f'input "{spec.input_name}": every value lies in [')
    plain = rest.session.post(rest.model_url() + ":predict", json={"instances": test_split.x[:2].tolist()}, timeout=30)
    assert "Warning" not in plain.headers


def test_predict_names_the_version_and_signature(grpc_client, test_split, spec):
    response = grpc_client.predict_tensors({spec.input_name: test_split.x[:2]})
    assert response.model_spec.name == spec.model_name and response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value >= 1


def test_metadata_describes_the_spec_signature(grpc_client, rest, spec):
    from tensorflow.core.framework import types_pb2

    signatures, version = grpc_client.metadata()
    signature = signatures.signature_def["serving_default"]
    assert [d.size for d in signature.inputs[spec.input_name].tensor_shape.dim] == [-1, *spec.item_shape]
    assert signature.inputs[spec.input_name].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in signature.outputs[spec.output_name].tensor_shape.dim] == [-1, spec.num_classes]
    over_rest = rest.metadata()
    assert over_rest["model_spec"] == {"name": spec.model_name, "signature_name": "", "version": str(version)}
    rest_signature = over_rest["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert rest_signature["inputs"][spec.input_name]["dtype"] == "DT_FLOAT"


def test_status_reports_the_served_version_available(grpc_client, rest):
    ((version, state),) = grpc_client.status()
    assert state == "AVAILABLE"
    assert rest.status() == {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def grpc_errors(spec) -> dict:
    """Bad Predict requests, the status code and the message each must get, for the spec's input."""
    name, good = spec.input_name, batch(spec, 1, spec.value_min)
    short = np.zeros((2, *spec.item_shape[:-1], spec.item_shape[-1] - 1), np.float32)
    return {
        "wrong shape": (dict(inputs={name: short}), grpc.StatusCode.INVALID_ARGUMENT,
                        f'input "{name}" must have shape {shape_text(spec)}, got {list(short.shape)}'),
        "non-numeric": (dict(inputs={name: np.full(good.shape, "x")}), grpc.StatusCode.INVALID_ARGUMENT,
                        f'input "{name}": expects arg to be float32 but string is provided'),
        "empty batch": (dict(inputs={name: good[:0]}), grpc.StatusCode.INVALID_ARGUMENT,
                        f'input "{name}" holds no examples (shape {shape_text(spec, 0)})'),
        "wrong input name": (dict(inputs={"pixels": good}), grpc.StatusCode.INVALID_ARGUMENT,
                             f"input names do not match the signature: sent ['pixels'], expected ['{name}']"),
        "unknown model": (dict(inputs={name: good}, model_name="nope"),
                          grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        "unknown version": (dict(inputs={name: good}, version=999),
                            grpc.StatusCode.NOT_FOUND,
                            f"Servable not found for request: Specific({spec.model_name}, 999)"),
        "unknown signature": (dict(inputs={name: good}, signature_name="nope"),
                              grpc.StatusCode.FAILED_PRECONDITION,
                              'Serving signature name: "nope" not found in signature def'),
    }


GRPC_ERRORS = ("wrong shape", "non-numeric", "empty batch", "wrong input name", "unknown model", "unknown version",
               "unknown signature")


@pytest.mark.parametrize("case", GRPC_ERRORS)
def test_grpc_errors_use_tf_serving_status_codes(case, grpc_client, still_serving, spec):
    kwargs, code, message = grpc_errors(spec)[case]
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict_tensors(**kwargs)
    assert (error.value.code(), error.value.details()) == (code, message)


def rest_errors(spec) -> dict:
    """Bad :predict bodies, the HTTP status and the message each must get, for the spec's input."""
    item = spec.describe_item()
    return {
        "wrong shape": ({"instances": [wrong_shape(spec)]}, {}, 400,
                        f'"instances": must have shape {shape_text(spec)} (N images of {item}), got '
                        f'{[1, *spec.item_shape[:-1], spec.item_shape[-1] + 1]}'),
        "non-numeric": ({"instances": [np.full(spec.item_shape, "x").tolist()]}, {}, 400,
                        '"instances": must hold numbers only, found \'x\''),
        "empty instances": ({"instances": []}, {}, 400, f'"instances" is empty: send at least one {item} image'),
        "neither instances nor inputs": ({"images": []}, {}, 400,
                                         'the request must have exactly one of "instances" or "inputs"'),
        "unknown model": ({"instances": [image(spec)]}, {"model_name": "nope"}, 404,
                          "Servable not found for request: Latest(nope)"),
        "unknown version": ({"instances": [image(spec)]}, {"version": 999}, 404,
                            f"Servable not found for request: Specific({spec.model_name}, 999)"),
    }


REST_ERRORS = ("wrong shape", "non-numeric", "empty instances", "neither instances nor inputs", "unknown model",
               "unknown version")


@pytest.mark.parametrize("case", REST_ERRORS)
def test_rest_errors_use_tf_serving_status_codes(case, rest, still_serving, spec):
    body, where, status, message = rest_errors(spec)[case]
    with pytest.raises(RestError) as error:
        rest.predict_json(body, **where)
    assert (error.value.status, error.value.message) == (status, message)


def test_unknown_model_status_is_not_found(grpc_client, rest, spec):
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.status(model_name="nope")
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                           "Could not find any versions of model nope")
    with pytest.raises(RestError) as error:
        rest.status(version=999)
    assert (error.value.status, error.value.message) == (404, f"Could not find version 999 of model {spec.model_name}")


def test_monitoring_endpoint_serves_prometheus_text(served, rest, test_split, spec):
    from serving.tfserving import configs

    rest.predict(test_split.x[:1])
    metrics = requests.get(served.endpoints.url("tfserving_rest") + configs.metrics_path(), timeout=10)
    assert metrics.status_code == 200 and f'request_count{{model_name="{spec.model_name}",status="OK"}}' in metrics.text




@pytest.fixture
def crowded_server(served):
    """A compatible server of this test's own over the session's model, with one model thread and no
    queue, so that a crowd overflows it; its endpoints. Stopped after the test."""
    import dataclasses
    import subprocess
    import sys

    from core.ports import free_ports
    from deploy.local import servers

    if servers.tfserving_binary():
        pytest.skip("the real tensorflow_model_server runs here; the queue flags are the compatible server's")
    grpc_port, rest_port = free_ports(2)
    endpoints = dataclasses.replace(served.endpoints, ports={**served.endpoints.ports, "tfserving_grpc": grpc_port,
                                                              "tfserving_rest": rest_port})
    config = served.root / "run" / "tfserving" / "models.config"
    process = subprocess.Popen([sys.executable, "-m", "serving.tfserving.compat_server", f"--port={grpc_port}",
                                f"--rest_api_port={rest_port}", f"--model_config_file={config}", "--host=127.0.0.1",
                                "--rest_model_threads=1", "--rest_queue=0"], cwd=servers.REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"{endpoints.url('tfserving_rest')}/v1/models/{endpoints.model_name}"
        ready = wait_for(lambda: process.poll() is not None or _answers(lambda: requests.get(url, timeout=2).ok))
        assert ready and process.poll() is None, "the compatible server did not come up"
        yield endpoints
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(check):
    try:
        return check()
    except requests.ConnectionError:
        return False


def test_rest_overload_is_refused_with_503_and_retry_after_and_clients_retry_through_it(crowded_server, served,
                                                                                         test_split, spec):
    """Full queue: each request is answered (a prediction, or 503 + Retry-After), none dropped; the
    project's client, which honours Retry-After, gets every prediction through."""
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks import burst
    from serving.tfserving.client import TFServingRest

    run = burst.burst("tfserving-rest", crowded_server, served.root, connections=64, requests=3, timeout=60)
    assert (run["reset"], run["timed_out"], run["errors"]) == (0, 0, 0), run["examples"]
    assert run["answered"] > 0 and run["refused"] > 0, run["kinds"]
    assert set(run["kinds"]) == {"refused: HTTP 503, Retry-After 1"}, run["kinds"]
    clients = [TFServingRest(crowded_server) for _ in range(16)]  # 16 at once on one model thread, no queue
    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(lambda client: [client.predict(test_split.x[:1]) for _ in range(3)], clients))
    assert [answer.shape for per_client in answers for answer in per_client] == [(1, spec.num_classes)] * 48
