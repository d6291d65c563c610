"""The input checks every target shares, without servers: request bodies, batches, and the limits.

The request limits live once in training/spec.py; the two server config files that must hold the
same numbers (TorchServe reads config.properties, TF Serving its batching file) are checked here.
"""
import json

import numpy as np
import pytest

from edge.common import InputError, check_batch
from serving.contract import ContractError, batch_from_instances, parse_json
from serving.tfserving import configs as tf_configs
from training import paths
from training.spec import MAX_BATCH_SIZE, MAX_REQUEST_BYTES, ModelConfig, build_spec


def test_spec_states_the_request_limits():
    limits = build_spec(ModelConfig())["serving"]["limits"]
    assert limits == {"max_batch_size": MAX_BATCH_SIZE, "max_request_bytes": MAX_REQUEST_BYTES}


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


@pytest.mark.parametrize("instances, message", [
    ([[[1] * 8] * 8] * (MAX_BATCH_SIZE + 1), f"holds {MAX_BATCH_SIZE + 1} images, more than the {MAX_BATCH_SIZE} allowed"),
    ([[[10 ** 30] * 8] * 8], "a number too large for float32"),
    ([json.loads("[" * 900 + "]" * 900)], "is ragged"),
])
def test_oversized_or_absurd_instances_are_refused(instances, message):
    with pytest.raises(ContractError, match=message):
        batch_from_instances(instances)


def test_without_the_range_check_a_float32_overflow_is_still_refused():
    with pytest.raises(ContractError, match="too large for float32"):
        batch_from_instances([[[1e300] * 8] * 8], check_range=False)
    assert batch_from_instances([[[1] * 8] * 8] * (MAX_BATCH_SIZE + 1), max_batch=None).shape == (MAX_BATCH_SIZE + 1, 8, 8)


@pytest.mark.parametrize("batch, message", [
    ([[["x"] * 8] * 8], "must be numeric, got dtype <U1"),
    (np.zeros((1, 8, 8), bool), "must be numeric, got dtype bool"),
    ([[1, 2], [3]], "not an array"),
    ("seven", r"must have shape \(N, 8, 8\), got \(\)"),
    (None, r"must have shape \(N, 8, 8\), got \(\)"),
    (np.zeros((1, 8, 8, 1)), r"must have shape \(N, 8, 8\), got \(1, 8, 8, 1\)"),
    (np.full((1, 8, 8), np.nan), "64 NaN or infinite values"),
    (np.full((1, 8, 8), 16.5), r"must lie in \[0, 16\]"),
])
def test_edge_and_web_batch_check_names_the_problem(batch, message):
    """edge/common.py check_batch guards every edge runner and the TF.js predictor."""
    with pytest.raises(InputError, match=message):
        check_batch(batch)
    assert check_batch(np.full((8, 8), 16, np.int64)).shape == (1, 8, 8)  # one image of any real dtype is fine
