"""TorchServe, live: golden answers over REST and gRPC, a picture, errors, token, batching."""
from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import requests

from serving.rest import RestError
from tests.inputs import image, range_text, shape_text, wrong_shape

pytestmark = [pytest.mark.slow, pytest.mark.concerns("torchserve")]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference(served):
    from edge.eager import TorchEagerPredictor

    return TorchEagerPredictor(served.root)


@pytest.fixture(scope="module")
def rest(served):
    from serving.torchserve.client import TorchServeRest

    return TorchServeRest(served.endpoints, root=served.root)


@pytest.fixture(scope="module")
def grpc_client(served):
    from serving.torchserve.client import TorchServeGrpc

    client = TorchServeGrpc(served.endpoints, root=served.root)
    yield client
    client.close()


@pytest.fixture
def still_serving(rest, grpc_client, test_split, reference):
    """After the test (an error case), good requests still get the right answers on both APIs."""
    yield
    expected = reference.predict(test_split.x[:3])
    for client in (rest, grpc_client):
        np.testing.assert_allclose(client.predict(test_split.x[:3]), expected, atol=TOLERANCE)


@pytest.mark.parametrize("api", ["rest", "grpc"])
def test_golden_test_split_matches_in_process_torch(api, rest, grpc_client, test_split, reference, spec):
    client = rest if api == "rest" else grpc_client
    served = client.predict(test_split.x)  # all 360 test images in one request
    expected = reference.predict(test_split.x)
    assert served.shape == (len(test_split), spec.num_classes) and served.dtype == np.float32
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(served, expected, atol=TOLERANCE)
    assert (served.argmax(axis=1) == test_split.y).mean() > 0.8  # a trained model, not noise


def test_answer_carries_label_names_from_the_spec(rest, test_split, spec):
    answer = rest.predict_json({"instances": test_split.x[:4].tolist()})
    for prediction in answer["predictions"]:
        assert prediction["label"] == spec.labels[int(np.argmax(prediction["probabilities"]))]
        assert abs(sum(prediction["probabilities"]) - 1.0) < 1e-5


def _png(values: np.ndarray, spec) -> bytes:
    """A black-on-white PNG drawing of a grey test image, 8 pixels per cell (ink where the value is high)."""
    from PIL import Image

    pixels_per_cell = 8  # each value of the image becomes an 8x8 block of the picture
    ink = np.kron(values >= (spec.value_min + spec.value_max) / 2, np.ones((pixels_per_cell,) * 2, dtype=bool))
    buffer = io.BytesIO()
    Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("api", ["rest", "grpc"])
def test_png_is_reduced_like_the_dataset_and_classified(api, rest, grpc_client, test_split, reference, spec):
    from training.preprocess import picture_to_input

    png = _png(test_split.x[0], spec)
    answer = rest.predict_image(png) if api == "rest" else grpc_client.predict_bytes(png)
    expected = reference.predict(picture_to_input(png, spec)[None])[0]
    (prediction,) = answer["predictions"]
    assert prediction["label"] == spec.labels[int(expected.argmax())]
    np.testing.assert_allclose(prediction["probabilities"], expected, atol=TOLERANCE)


def bad_bodies(spec) -> dict:
    """Bad JSON bodies and the message each must get, for the spec's input."""
    item, top = spec.describe_item(), spec.value_max + 1
    return {
        "wrong shape": ({"instances": [wrong_shape(spec)]},
                        f'"instances": must have shape {shape_text(spec)} (N images of {item}), got '
                        f'{[1, *spec.item_shape[:-1], spec.item_shape[-1] + 1]}'),
        "non-numeric": ({"instances": [np.full(spec.item_shape, "x").tolist()]},
                        '"instances": must hold numbers only, found \'x\''),
        "empty instances": ({"instances": []}, f'"instances" is empty: send at least one {item} image'),
        "out of range": ({"instances": [image(spec, top)]},
                         f'"instances": values must lie in {range_text(spec)}, got [{top:g}, {top:g}]'),
        "no instances key": ({"images": []}, 'the JSON body must be an object with an "instances" list'),
    }


BAD_BODIES = ("wrong shape", "non-numeric", "empty instances", "out of range", "no instances key")


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_json_is_a_400_naming_the_problem_over_rest(case, rest, still_serving, spec):
    body, message = bad_bodies(spec)[case]
    with pytest.raises(RestError) as error:
        rest.predict_json(body)
    assert (error.value.status, error.value.message) == (400, message)


@pytest.mark.parametrize("case", BAD_BODIES)
def test_bad_json_is_invalid_argument_naming_the_problem_over_grpc(case, grpc_client, still_serving, spec):
    body, message = bad_bodies(spec)[case]
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict_bytes(json.dumps(body).encode())
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().splitlines()[0] == message


def _resaved(png: bytes, fmt: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("api", ["rest", "grpc"])
def test_a_gif_is_named_not_called_invalid_json(api, rest, grpc_client, still_serving, test_split, spec):
    gif = _resaved(_png(test_split.x[0], spec), "GIF")
    if api == "rest":
        with pytest.raises(RestError) as error:
            rest.predict_image(gif, content_type="image/gif")
        assert (error.value.status, error.value.message) == (400, "unsupported picture format GIF: send PNG or JPEG")
    else:
        with pytest.raises(grpc.RpcError) as error:
            grpc_client.predict_bytes(gif)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().splitlines()[0] == "unsupported picture format GIF: send PNG or JPEG"


def test_rescaled_values_are_answered_with_a_warning_header_and_body(rest, grpc_client, test_split, spec):
    """The test images divided by the range's top (0..1 for a 0..16 model): answered, and said so."""
    rescaled = {"instances": (test_split.x[:2] / spec.value_max).tolist()}
    answer = rest.session.post(rest.url(), json=rescaled, timeout=30)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    assert answer.headers["Warning"].startswith('299 - "\'instances\': every value lies in [')
    (warning,) = answer.json()["warnings"]
    assert f"the model's range {spec.value_range()}" in warning
    assert grpc_client.predict_bytes(json.dumps(rescaled).encode())["warnings"] == [warning]
    plain = rest.session.post(rest.url(), json={"instances": test_split.x[:2].tolist()}, timeout=30)
    assert "Warning" not in plain.headers and "warnings" not in plain.json()


def test_unreadable_image_is_a_400(rest, still_serving):
    with pytest.raises(RestError) as error:
        rest.predict_image(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    assert error.value.status == 400 and error.value.message.startswith("not a readable PNG/JPEG image")


UNKNOWN = {
    "unknown model": (dict(model_name="nope"), "Model not found: nope"),
    "unknown version": (dict(version="9.9"), "Model version: 9.9 does not exist for model: {model}"),
}


@pytest.mark.parametrize("case", UNKNOWN)
def test_unknown_model_or_version_is_not_found(case, rest, grpc_client, still_serving, spec):
    where, message = UNKNOWN[case]
    message = message.format(model=spec.model_name)
    with pytest.raises(RestError) as error:
        rest.predict_json({"instances": [image(spec)]}, **where)
    assert (error.value.status, error.value.message) == (404, message)
    with pytest.raises(grpc.RpcError) as error:
        grpc_client.predict_bytes(json.dumps({"instances": [image(spec)]}).encode(), **where)
    # TorchServe 0.12 maps a missing model or version to INTERNAL on gRPC (404 on REST).
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert error.value.details().splitlines()[0] == message


TOKEN_FAILED = "Token Authorization failed. Token either incorrect, expired, or not provided correctly"


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing token", "wrong token"])
def test_requests_without_the_right_token_are_refused(token, served, test_split, still_serving):
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest

    with pytest.raises(RestError) as error:
        TorchServeRest(served.endpoints, token=token).predict(test_split.x[:1])
    assert (error.value.status, error.value.message) == (400, TOKEN_FAILED)
    client = TorchServeGrpc(served.endpoints, token=token)
    with pytest.raises(grpc.RpcError) as error:
        client.predict(test_split.x[:1])
    client.close()
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, TOKEN_FAILED)


def test_concurrent_good_and_bad_requests_each_get_their_own_answer(rest, test_split, reference):
    """Dynamic batching puts concurrent requests in one batch: a bad one must not fail the rest."""
    bodies = [{"instances": test_split.x[i : i + 1].tolist()} if i % 2 == 0 else {"instances": []} for i in range(16)]

    def send(body):
        try:
            return rest.predict_json(body)
        except RestError as error:
            return error

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, bodies))
    for i, answer in enumerate(answers):
        if i % 2 == 0:
            np.testing.assert_allclose(answer["predictions"][0]["probabilities"],
                                       reference.predict(test_split.x[i : i + 1])[0], atol=TOLERANCE)
        else:
            assert isinstance(answer, RestError) and answer.status == 400 and "is empty" in answer.message


def test_metrics_are_prometheus_text_and_registration_needs_the_management_key(served):
    """Registration is on for deploy/local/update.py, on 127.0.0.1 only and behind the management key."""
    from serving.torchserve.client import read_token

    metrics = requests.get(served.endpoints.url("torchserve_metrics") + "/metrics", timeout=10)
    assert metrics.status_code == 200 and "# TYPE Requests2XX counter" in metrics.text
    assert served.endpoints.url("torchserve_management").startswith("http://127.0.0.1:")
    register = served.endpoints.url("torchserve_management") + f"/models?url={served.endpoints.model_name}.mar"
    for headers in ({}, {"Authorization": f"Bearer {read_token(served.root, 'inference')}"}):  # none; the wrong key
        refused = requests.post(register, headers=headers, timeout=10)
        assert (refused.status_code, refused.json()["message"]) == (400, TOKEN_FAILED)
