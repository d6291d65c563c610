"""Serving addresses (spec defaults, environment overrides) and the request contract, without servers."""
import numpy as np
import pytest

from serving import endpoints
from serving.contract import ContractError, batch_from_instances
from training.spec import SERVING_PORTS, ModelConfig, build_spec


def test_spec_carries_the_default_serving_addresses():
    serving = build_spec(ModelConfig())["serving"]
    assert serving["host"] == "127.0.0.1" and serving["model_name"] == "digits"
    assert serving["ports"] == {"torchserve_inference": 8080, "torchserve_management": 8081, "torchserve_metrics": 8082,
                                "torchserve_grpc_inference": 7070, "torchserve_grpc_management": 7071,
                                "tfserving_grpc": 8500, "tfserving_rest": 8501, "web_demo": 8000}


def test_environment_overrides_ports_and_host():
    resolved = endpoints.resolve({"DIGITS_TFSERVING_GRPC_PORT": "9500", "DIGITS_SERVING_HOST": "10.0.0.5"})
    assert resolved.target("tfserving_grpc") == "10.0.0.5:9500"
    assert resolved.url("torchserve_inference") == "http://10.0.0.5:8080"
    assert endpoints.resolve(resolved.as_environment()) == resolved
    with pytest.raises(ValueError, match="DIGITS_TORCHSERVE_METRICS_PORT='http' is not a port number"):
        endpoints.resolve({"DIGITS_TORCHSERVE_METRICS_PORT": "http"})
    assert set(endpoints.resolve({}).ports) == set(SERVING_PORTS)


def test_instances_become_a_float32_batch():
    batch = batch_from_instances([[[16] * 8] * 8, [[0.5] * 8] * 8])
    assert batch.shape == (2, 8, 8) and batch.dtype == np.float32 and batch[0, 0, 0] == 16


@pytest.mark.parametrize("instances, message", [
    ([], '"instances" is empty'),
    ({"a": 1}, '"instances" must be a list of 8x8 images, got dict'),
    ([[[1] * 8] * 8, [[1] * 8] * 7], '"instances" is ragged'),
    ([[[1] * 8] * 7 + [[1] * 7 + [None]]], "must hold numbers only, found None"),
    ([[[True] * 8] * 8], "must hold numbers only, found True"),
    ([[1] * 8] * 8, r"must have shape \[-1, 8, 8\] \(N images of 8x8\), got \[8, 8\]"),
    ([[[float("nan")] * 8] * 8], "NaN or infinite"),
    ([[[-1] * 8] * 8], r"values must lie in \[0, 16\], got \[-1, -1\]"),
])
def test_bad_instances_are_refused_by_name(instances, message):
    with pytest.raises(ContractError, match=message):
        batch_from_instances(instances)
