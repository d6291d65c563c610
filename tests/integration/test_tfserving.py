"""TF Serving (real or compatible), live: golden answers over gRPC and REST through the official
API, metadata, status and TF Serving's error codes, on the session's (read-only) servers. New
versions on disk: test_tfserving_versions.py, on servers of its own."""
from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests

from serving.rest import RestError
from training.spec import LABELS

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras_probabilities(served, test_split):
    """The source framework's answers: the trained Keras model, in-process."""
    import keras

    from training import manifest

    model = keras.models.load_model(manifest.verify("keras_model", served.root))
    return model.predict(test_split.x, verbose=0)


@pytest.fixture(scope="module")
def grpc_client(served):
    from serving.tfserving.client import TFServingGrpc

    client = TFServingGrpc(served.endpoints)
    yield client
    client.close()


@pytest.fixture(scope="module")
def rest(served):
    from serving.tfserving.client import TFServingRest

    return TFServingRest(served.endpoints)


@pytest.fixture
def still_serving(grpc_client, rest, test_split, keras_probabilities):
    yield
    for client in (grpc_client, rest):
        np.testing.assert_allclose(client.predict(test_split.x[:3]), keras_probabilities[:3], atol=TOLERANCE)


def _check_golden(served, expected, test_split):
    assert served.shape == (len(test_split), len(LABELS))
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    assert (served.argmax(axis=1) == test_split.y).mean() > 0.8


@pytest.mark.parametrize("api", ["grpc", "rest"])
def test_golden_test_split_matches_in_process_keras(api, grpc_client, rest, test_split, keras_probabilities):
    client = grpc_client if api == "grpc" else rest
    _check_golden(client.predict(test_split.x), keras_probabilities, test_split)


def test_rest_columnar_inputs_and_named_instances(rest, test_split, keras_probabilities):
    columnar = rest.predict_json({"inputs": {"image": test_split.x.tolist()}})["outputs"]
    _check_golden(np.asarray(columnar, dtype=np.float32), keras_probabilities, test_split)
    rows = rest.predict_json({"instances": [{"image": image} for image in test_split.x[:5].tolist()],
                              "signature_name": "serving_default"})["predictions"]
    np.testing.assert_allclose(rows, keras_probabilities[:5], atol=TOLERANCE)


def test_predict_names_the_version_and_signature(grpc_client, test_split):
    response = grpc_client.predict_tensors({"image": test_split.x[:2]})
    assert response.model_spec.name == "digits" and response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value >= 1


def test_metadata_describes_the_spec_signature(grpc_client, rest):
    from tensorflow.core.framework import types_pb2

    signatures, version = grpc_client.metadata()
    signature = signatures.signature_def["serving_default"]
    assert [d.size for d in signature.inputs["image"].tensor_shape.dim] == [-1, 8, 8]
    assert signature.inputs["image"].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in signature.outputs["probabilities"].tensor_shape.dim] == [-1, 10]
    over_rest = rest.metadata()
    assert over_rest["model_spec"] == {"name": "digits", "signature_name": "", "version": str(version)}
    rest_signature = over_rest["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert rest_signature["inputs"]["image"]["dtype"] == "DT_FLOAT"


def test_status_reports_the_served_version_available(grpc_client, rest):
    ((version, state),) = grpc_client.status()
    assert state == "AVAILABLE"
    assert rest.status() == {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


GRPC_ERRORS = {
    "wrong shape": (dict(inputs={"image": np.zeros((2, 8, 7), np.float32)}), grpc.StatusCode.INVALID_ARGUMENT,
                    'input "image" must have shape [-1, 8, 8], got [2, 8, 7]'),
    "non-numeric": (dict(inputs={"image": np.full((1, 8, 8), "x")}), grpc.StatusCode.INVALID_ARGUMENT,
                    'input "image": expects arg to be float32 but string is provided'),
    "empty batch": (dict(inputs={"image": np.zeros((0, 8, 8), np.float32)}), grpc.StatusCode.INVALID_ARGUMENT,
                    'input "image" holds no examples (shape [0, 8, 8])'),
    "wrong input name": (dict(inputs={"pixels": np.zeros((1, 8, 8), np.float32)}), grpc.StatusCode.INVALID_ARGUMENT,
                         "input names do not match the signature: sent ['pixels'], expected ['image']"),
    "unknown model": (dict(inputs={"image": np.zeros((1, 8, 8), np.float32)}, model_name="nope"),
                      grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    "unknown version": (dict(inputs={"image": np.zeros((1, 8, 8), np.float32)}, version=999),
                        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(digits, 999)"),
    "unknown signature": (dict(inputs={"image": np.zeros((1, 8, 8), np.float32)}, signature_name="nope"),
                          grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature name: "nope" not found in signature def'),
}


@pytest.mark.parametrize("case", GRPC_ERRORS)
def test_grpc_errors_use_tf_serving_status_codes(case, grpc_client, still_serving):
    kwargs, code, message = GRPC_ERRORS[case]
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict_tensors(**kwargs)
    assert (error.value.code(), error.value.details()) == (code, message)


REST_ERRORS = {
    "wrong shape": ({"instances": [[[1.0] * 8] * 7]}, {}, 400,
                    '"instances" must have shape [-1, 8, 8] (N images of 8x8), got [1, 7, 8]'),
    "non-numeric": ({"instances": [[["x"] * 8] * 8]}, {}, 400, '"instances" must hold numbers only, found \'x\''),
    "empty instances": ({"instances": []}, {}, 400, '"instances" is empty: send at least one 8x8 image'),
    "neither instances nor inputs": ({"images": []}, {}, 400, 'the request must have exactly one of "instances" or "inputs"'),
    "unknown model": ({"instances": [[[0.0] * 8] * 8]}, {"model_name": "nope"}, 404,
                      "Servable not found for request: Latest(nope)"),
    "unknown version": ({"instances": [[[0.0] * 8] * 8]}, {"version": 999}, 404,
                        "Servable not found for request: Specific(digits, 999)"),
}


@pytest.mark.parametrize("case", REST_ERRORS)
def test_rest_errors_use_tf_serving_status_codes(case, rest, still_serving):
    body, where, status, message = REST_ERRORS[case]
    with pytest.raises(RestError) as error:
        rest.predict_json(body, **where)
    assert (error.value.status, error.value.message) == (status, message)


def test_unknown_model_status_is_not_found(grpc_client, rest):
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.status(model_name="nope")
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.NOT_FOUND, "Could not find any versions of model nope")
    with pytest.raises(RestError) as error:
        rest.status(version=999)
    assert (error.value.status, error.value.message) == (404, "Could not find version 999 of model digits")


def test_monitoring_endpoint_serves_prometheus_text(served, rest, test_split):
    from serving.tfserving import configs

    rest.predict(test_split.x[:1])
    metrics = requests.get(served.endpoints.url("tfserving_rest") + configs.metrics_path(), timeout=10)
    assert metrics.status_code == 200 and 'request_count{model_name="digits",status="OK"}' in metrics.text

