"""Serving addresses (spec defaults, environment overrides) and the served model's name, without servers."""
import pytest

from core.spec import SERVING_PORTS
from serving import endpoints
from training.spec import ModelConfig, digits_spec, write_spec


def test_spec_carries_the_default_serving_addresses():
    serving = digits_spec(ModelConfig())["serving"]
    assert serving["host"] == "127.0.0.1" and serving["model_name"] == "digits"
    assert serving["ports"] == {"torchserve_inference": 8080, "torchserve_management": 8081, "torchserve_metrics": 8082,
                                "torchserve_grpc_inference": 7070, "torchserve_grpc_management": 7071,
                                "tfserving_grpc": 8500, "tfserving_rest": 8501, "kserve_torch_rest": 8090,
                                "kserve_torch_grpc": 8091, "kserve_tf_rest": 8092, "kserve_tf_grpc": 8093,
                                "rayserve_rest": 8094, "web_demo": 8000}


def test_environment_overrides_ports_and_host():
    resolved = endpoints.resolve({"DIGITS_TFSERVING_GRPC_PORT": "9500", "DIGITS_SERVING_HOST": "10.0.0.5"})
    assert resolved.target("tfserving_grpc") == "10.0.0.5:9500"
    assert resolved.url("torchserve_inference") == "http://10.0.0.5:8080"
    assert endpoints.resolve(resolved.as_environment()) == resolved
    with pytest.raises(ValueError, match="DIGITS_TORCHSERVE_METRICS_PORT='http' is not a port number"):
        endpoints.resolve({"DIGITS_TORCHSERVE_METRICS_PORT": "http"})
    assert set(endpoints.resolve({}).ports) == set(SERVING_PORTS)


def test_the_model_name_is_the_trained_spec_s(artifacts):
    assert endpoints.resolve({}).model_name is None  # nothing trained yet: addresses only
    spec = digits_spec() | {"model_name": "shapes"}
    write_spec(spec, artifacts / "spec.json")
    assert endpoints.resolve({}).model_name == "shapes"
    assert endpoints.free_endpoints(root=artifacts).model_name == "shapes"
    assert endpoints.resolve({}, root=artifacts).for_root(artifacts).model_name == "shapes"
