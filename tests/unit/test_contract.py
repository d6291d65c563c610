"""The one input check (core/contract.py), for the digits and for a colour non-square task.

Every server, runner, client and page driver calls it; the request limits live once in
core/spec.py, and the two server config files that must hold the same numbers (TorchServe reads
config.properties, TF Serving its batching file) are checked here. No test spells a shape, a range
or a class count: each reads them from the spec it checks against.
"""
import json

import numpy as np
import pytest

from core import contract, paths
from core.contract import ContractError, check_batch, check_instances, parse_json
from core.spec import MAX_BATCH_SIZE, MAX_REQUEST_BYTES, from_dict
from serving.tfserving import configs as tf_configs
from training.spec import RESIZE_REDUCTION, ModelConfig, derive_spec, digits_spec

COLOUR = derive_spec(ModelConfig(), item_shape=(12, 16, 3), labels=["a", "b", "c", "d", "e"], value_range=(0, 255),
                     model_name="shapes", reduction=RESIZE_REDUCTION)
SPECS = {"digits": from_dict(digits_spec()), "colour": from_dict(COLOUR)}


@pytest.fixture(params=list(SPECS))
def spec(request):
    return SPECS[request.param]


def good(spec, count=2, value=None):
    """A valid batch of `count` images at the top of the spec's range (or at `value`)."""
    return np.full((count, *spec.item_shape), spec.value_max if value is None else value, np.float32)


def test_spec_states_the_request_limits(spec):
    assert spec.max_batch_size == MAX_BATCH_SIZE and spec.max_request_bytes == MAX_REQUEST_BYTES


def test_server_configs_hold_the_spec_limits():
    properties = dict(line.split("=", 1) for line in
                      (paths.REPO_ROOT / "serving" / "torchserve" / "config.properties").read_text().splitlines()
                      if line and not line.startswith("#"))
    assert int(properties["max_request_size"]) == MAX_REQUEST_BYTES
    batching = tf_configs.read_text_proto_values(tf_configs.CONFIG_DIR / tf_configs.CONFIG_FILES["batching"])
    assert batching["max_batch_size"] == MAX_BATCH_SIZE


@pytest.mark.parametrize("body, message", [
    (b"", "the request body is empty"),
    (" \n", "the request body is empty"),
    (b"\xff\xfe", r"not UTF-8 text \(byte 0\)"),
    (b'{"instances": [', r"not valid JSON \(Expecting value at line 1 column 16\)"),
    ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
])
def test_bad_request_bodies_are_named(body, message):
    with pytest.raises(ContractError, match=message):
        parse_json(body)


def test_a_good_body_parses_as_bytes_or_text():
    assert parse_json(b'{"instances": []}') == parse_json('{"instances": []}') == {"instances": []}


def test_a_good_batch_becomes_float32_of_the_item_shape(spec):
    batch = check_batch(good(spec).astype(np.int64), spec)
    assert batch.shape == (2, *spec.item_shape) and batch.dtype == np.float32
    batch = check_instances(good(spec, 1, spec.value_min).tolist(), spec)
    assert batch.shape == (1, *spec.item_shape) and float(batch.max()) == spec.value_min


def bad_batches(spec):
    shape, item = list(spec.item_shape), spec.describe_item()
    wrong = [*shape[:-1], shape[-1] + 1]
    return [
        (np.zeros((0, *shape)), "empty batch"),
        (np.zeros((1, *wrong)), rf"must have shape \[-1, {', '.join(map(str, shape))}\] \(N images of {item}\)"),
        # one image, no batch axis
        (np.zeros(shape), r"must have shape .* got \[" + ", ".join(map(str, shape)) + r"\]"),
        (np.full((1, *shape), "x"), "must be numeric, got dtype <U1"),
        (np.zeros((1, *shape), bool), "must be numeric, got dtype bool"),
        (good(spec, 1, np.nan), f"{int(np.prod(shape))} NaN or infinite values"),
        (good(spec, 1, spec.value_max + 1), rf"must lie in \[{spec.value_min:g}, {spec.value_max:g}\]"),
        (good(spec, 1, spec.value_min - 1), rf"must lie in \[{spec.value_min:g}, {spec.value_max:g}\]"),
        (good(spec, MAX_BATCH_SIZE + 1), f"holds {MAX_BATCH_SIZE + 1} images, more than the {MAX_BATCH_SIZE} allowed"),
    ]


def test_bad_batches_are_refused_by_name(spec):
    for batch, message in bad_batches(spec):
        with pytest.raises(ContractError, match=message):
            check_batch(batch, spec, "input")


def test_runners_take_any_batch_size(spec):
    assert check_batch(good(spec, MAX_BATCH_SIZE + 1), spec, max_batch=None).shape[0] == MAX_BATCH_SIZE + 1


def test_without_the_range_check_a_float32_overflow_is_still_refused(spec):
    with pytest.raises(ContractError, match="too large for float32"):
        check_batch(np.full((1, *spec.item_shape), 1e300), spec, check_range=False)


def test_bad_instances_are_refused_by_name(spec):
    image = good(spec, 1)[0].tolist()
    item = spec.describe_item()
    cases = [
        ([], '"instances" is empty'),
        ({"a": 1}, f'"instances" must be a list of {item} images, got dict'),
        ([image, image[:-1]], '"instances": ragged'),
        ([[None] * len(image)], "must hold numbers only, found None"),
        ([json.loads("[" * 900 + "]" * 900)], "ragged"),
        ([[[10 ** 30] * spec.width] * spec.height], "a number too large for float32|must have shape"),
        ([image] * (MAX_BATCH_SIZE + 1), f"holds {MAX_BATCH_SIZE + 1} images, more than the {MAX_BATCH_SIZE} allowed"),
    ]
    for instances, message in cases:
        with pytest.raises(ContractError, match=message):
            check_instances(instances, spec)


def test_the_first_non_number_is_named_without_recursion():
    deep = [[[[["seven"]]]]]
    assert contract._first_non_number(deep) == "seven"
    assert contract._first_non_number([[1, 2.5], [3]]) is contract._ALL_NUMBERS


def test_a_batch_in_a_sliver_of_the_range_is_warned_about_in_the_spec_s_words(spec):
    """0..1 values sent to a model of a wider range meet the contract but read as near-blank images."""
    rescaled = np.random.default_rng(0).random((3, *spec.item_shape)).astype(np.float32)  # every value < 1
    warning = contract.range_warning(rescaled, spec, '"instances"')
    assert warning.startswith('"instances": every value lies in [')
    assert f"the model's range {spec.value_range()}" in warning
    assert f"send raw values in {spec.value_range()}" in warning
    assert contract.warning_header(warning) == '299 - "' + warning.replace('"', "'") + '"'


def test_a_batch_across_the_range_or_a_blank_one_gets_no_warning(spec):
    spread = np.linspace(spec.value_min, spec.value_max, np.prod(spec.item_shape), dtype=np.float32)
    assert contract.range_warning(spread.reshape(1, *spec.item_shape), spec) is None
    assert contract.range_warning(np.full((2, *spec.item_shape), spec.value_min, np.float32), spec) is None
    foreign = from_dict({**digits_spec(),
                         "input": {**digits_spec()["input"], "min": float("-inf"), "max": float("inf")}})
    assert contract.range_warning(np.zeros((1, 8, 8), np.float32) + np.eye(8, dtype=np.float32), foreign) is None
