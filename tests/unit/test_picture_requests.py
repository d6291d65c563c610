"""Pictures in requests, without a server process or a trained model: TorchServe's handler (a posted
body: JSON, a picture, another picture format; the warnings of an answer) and the TF-Serving-compatible
server's REST pictures (TF Serving's binary convention, {"b64": ...}), and the edge runners' INPUT."""
import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from ts.utils.util import PredictionException

from core.spec import Spec
from training.spec import digits_spec


class Uniform(torch.nn.Module):
    """Stands in for the network: the same probability for every label."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, x):
        return torch.full((len(x), self.classes), 1.0 / self.classes)


class Context:
    """What the handler sets on TorchServe's context: per-request status and response headers."""

    def __init__(self):
        self.status, self.headers = {}, {}

    def set_response_status(self, code, phrase, idx):
        self.status[idx] = (code, phrase)

    def set_response_header(self, idx, key, value):
        self.headers.setdefault(idx, {})[key] = value


@pytest.fixture
def handler():
    from serving.torchserve.handler import DigitsHandler

    handler = DigitsHandler()
    handler.spec = Spec(digits_spec())
    handler.labels, handler.device = handler.spec.labels, torch.device("cpu")
    handler.model = Uniform(handler.spec.num_classes)
    return handler


def picture(fmt: str) -> bytearray:
    buffer = io.BytesIO()
    pixels = np.full((24, 24), 255, np.uint8)
    pixels[4:20, 10:14] = 0
    Image.fromarray(pixels).convert("RGB").save(buffer, format=fmt)
    return bytearray(buffer.getvalue())  # as TorchServe hands a body over


def instances(spec: Spec, values: np.ndarray) -> bytearray:
    return bytearray(json.dumps({"instances": values.reshape(-1, *spec.item_shape).tolist()}).encode())


@pytest.mark.parametrize("fmt", ["GIF", "BMP"])
def test_another_picture_format_is_named_not_called_invalid_json(handler, fmt):
    with pytest.raises(PredictionException) as refused:
        handler.handle([{"body": picture(fmt)}], Context())
    assert refused.value.message == f"unsupported picture format {fmt}: send PNG or JPEG"
    assert refused.value.error_code == 400


def test_png_and_jpeg_pictures_are_read(handler):
    context = Context()
    answers = handler.handle([{"body": picture("PNG")}, {"body": picture("JPEG")}], context)
    assert not context.status and all(len(answer["predictions"]) == 1 for answer in answers)


def test_values_in_a_sliver_of_the_range_are_answered_with_a_warning(handler):
    """0..1 values for a 0..16 model: answered, with the warning in a `Warning` header (REST) and in the
    body (TorchServe's gRPC front carries no headers); a request beside it is not warned about."""
    spec, context = handler.spec, Context()
    rescaled = np.random.default_rng(0).random((2, *spec.item_shape))
    spread = np.linspace(spec.value_min, spec.value_max, 2 * np.prod(spec.item_shape))
    answers = handler.handle([{"body": instances(spec, rescaled)}, {"body": instances(spec, spread)}], context)
    assert not context.status
    (warning,) = answers[0]["warnings"]
    assert f"the model's range {spec.value_range()}" in warning
    assert context.headers[0]["Warning"].startswith('299 - "\'instances\': every value lies in')
    assert "warnings" not in answers[1] and 1 not in context.headers


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(bytes(data)).decode()}


def test_tf_rest_b64_pictures_become_inputs_the_spec_s_way():
    """{"b64": ...} is read as a picture by training.preprocess, as TorchServe reads a posted one; numbers beside it
    stay."""
    from serving.tfserving.compat_rest import read_pictures
    from training.preprocess import picture_to_input

    spec = Spec(digits_spec())
    numbers = np.zeros(spec.item_shape).tolist()
    read = read_pictures([b64(picture("PNG")), numbers], spec, "instances", None)
    assert read[0] == picture_to_input(bytes(picture("PNG")), spec).tolist() and read[1] is numbers


@pytest.mark.parametrize("item, message", [
    (b64(picture("GIF")), '"instances"[0]: unsupported picture format GIF: send PNG or JPEG'),
    ({"b64": "not base64!"}, '"instances"[0]: "b64" is not valid base64'),
    ({"b64": 7}, '"instances"[0]: "b64" must be a base64 string'),
])
def test_tf_rest_bad_b64_pictures_are_named(item, message):
    from serving.tfserving.compat_models import ServingError
    from serving.tfserving.compat_rest import read_pictures

    with pytest.raises(ServingError) as refused:
        read_pictures([item], Spec(digits_spec()), "instances", None)
    assert refused.value.message.startswith(message)


def test_runner_input_names_a_gif_saved_as_jpg(tmp_path):
    from edge.common import InputError, load_input

    (tmp_path / "seven.jpg").write_bytes(picture("GIF"))
    with pytest.raises(InputError, match=r"seven.jpg: unsupported picture format GIF: send PNG or JPEG "
                                         r"\(its content is GIF, not the JPEG its name says\)"):
        load_input(tmp_path / "seven.jpg", Spec(digits_spec()))


def test_runner_input_warns_about_a_misnamed_picture_and_rescaled_values(tmp_path, capsys):
    from edge.common import load_input

    spec = Spec(digits_spec())
    (tmp_path / "seven.jpg").write_bytes(picture("PNG"))
    np.savez(tmp_path / "rescaled.npz", x=np.random.default_rng(0).random((2, *spec.item_shape)))
    assert load_input(tmp_path / "seven.jpg", spec).shape == (1, *spec.item_shape)
    assert load_input(tmp_path / "rescaled.npz", spec).shape == (2, *spec.item_shape)
    warnings = capsys.readouterr().err.splitlines()
    assert warnings[0] == f"warning: {tmp_path / 'seven.jpg'}: its content is PNG, not the JPEG its name says"
    assert warnings[1].startswith(f"warning: {tmp_path / 'rescaled.npz'}: every value lies in [")


def test_the_handlers_own_timers_are_counted_only_when_asked(handler):
    from ts.metrics.metric_type_enum import MetricTypes

    class Metrics:
        """Records what the handler adds to TorchServe's metrics (name, value, unit, type)."""

        def __init__(self):
            self.added = []

        def add_metric(self, name, value, unit, metric_type):
            self.added.append((name, value, unit, metric_type))

        def add_counter(self, name, value):
            self.added.append((name, value, "count", MetricTypes.COUNTER))

    class Timed(Context):
        def __init__(self):
            super().__init__()
            self.metrics = Metrics()

    body = {"body": instances(handler.spec, np.full((1, 8, 8), 8.0, np.float32))}
    quiet = Timed()
    handler.handle([body, body], quiet)
    assert quiet.metrics.added == []  # off by default: nothing added to TorchServe's metrics
    handler.timers, timed = True, Timed()
    answers = handler.handle([body, body], timed)
    assert len(answers) == 2 and all(len(answer["predictions"]) == 1 for answer in answers)
    names = [name for name, *_ in timed.metrics.added]
    assert names == ["DigitsDecodeTime", "DigitsModelTime", "DigitsEncodeTime", "DigitsHandlerCalls"]
    assert all(unit == "us" and kind == MetricTypes.COUNTER and value >= 0
               for _, value, unit, kind in timed.metrics.added[:3])
    assert timed.metrics.added[3][1] == 1  # one batch
