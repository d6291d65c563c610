"""deploy/kserve/: InferenceServices checked structurally; their Kubernetes parts with the Kubernetes schema.

KServe publishes its CRD, not a JSON schema package: the schema below covers the v1beta1 fields
these resources use (unknown fields refused), and each predictor's `resources` block is validated
as a real container's by kubernetes-validate.
"""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from deploy.containers import configs, plan  # noqa: E402
from tests.deploy.conftest import DEPLOY  # noqa: E402
from deploy.containers.plan import MODEL_NAME  # noqa: E402

KSERVE = DEPLOY / "kserve"
DNS_1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
INFERENCE_SERVICE = {
    "type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": DNS_1123, "maxLength": 63},
                                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "spec": {"type": "object", "additionalProperties": False, "required": ["predictor"], "properties": {
            "predictor": {"type": "object", "additionalProperties": False, "required": ["model"], "properties": {
                "minReplicas": {"type": "integer", "minimum": 0},
                "maxReplicas": {"type": "integer", "minimum": 1},
                "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                "scaleTarget": {"type": "integer", "minimum": 1},
                "model": {"type": "object", "additionalProperties": False,
                          "required": ["modelFormat", "storageUri"], "properties": {
                              "modelFormat": {"type": "object", "required": ["name"],
                                              "properties": {"name": {"type": "string"}}},
                              "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
                              "storageUri": {"type": "string", "pattern": r"^(pvc|gs|s3|https?|hdfs)://"},
                              "resources": {"type": "object"}}},
            }}}},
    },
}


def resources(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((KSERVE / name).read_text()) if doc]


def services() -> dict:
    return {doc["metadata"]["name"]: doc for name in ("torchserve.yaml", "tfserving.yaml") for doc in resources(name)}


def test_inference_services_are_structurally_valid():
    found = services()
    assert len(found) == 2
    for isvc in found.values():
        jsonschema.validate(isvc, INFERENCE_SERVICE)
        predictor = isvc["spec"]["predictor"]
        assert predictor["minReplicas"] <= predictor["maxReplicas"]


def test_structural_check_can_fail():
    isvc = services()[MODEL_NAME]
    isvc["spec"]["predictor"]["model"]["storageUrl"] = isvc["spec"]["predictor"]["model"].pop("storageUri")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, INFERENCE_SERVICE)


def test_predictor_resources_are_valid_kubernetes_resources():
    for name, isvc in services().items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [
            {"name": "kserve-container", "image": "x", "resources": isvc["spec"]["predictor"]["model"]["resources"]}]}}
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_formats_storage_and_model_name_agree_with_the_artifacts():
    found = services()
    # KServe's TF Serving runtime serves the model under the InferenceService's name.
    tfserving = found[MODEL_NAME]["spec"]["predictor"]["model"]
    assert tfserving["modelFormat"]["name"] == "tensorflow"
    assert tfserving["storageUri"] == f"pvc://digits-models/tfserving/{MODEL_NAME}"
    torchserve = next(v for k, v in found.items() if k != MODEL_NAME)["spec"]["predictor"]["model"]
    assert torchserve["modelFormat"]["name"] == "pytorch"
    assert torchserve["storageUri"] == "pvc://digits-models/torchserve"
    (claim,) = resources("storage.yaml")
    kubernetes_validate.validate(claim, kubernetes_validate.latest_version(), strict=True)
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "digits-models"


def test_torchserve_config_for_kserve():
    props = dict(line.split("=", 1) for line in configs.KSERVE_CONFIG.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert props["model_store"] == configs.KSERVE_MODEL_STORE == "/mnt/models/model-store"
    assert props["inference_address"].endswith(f":{configs.KSERVE_TORCHSERVE_PORT}")
    snapshot = json.loads(props["model_snapshot"])
    assert snapshot["modelCount"] == 1 and list(snapshot["models"]) == [MODEL_NAME]
    assert snapshot["models"][MODEL_NAME]["1.0"]["marName"] == f"{MODEL_NAME}.mar"
    assert "models" not in props and "load_models" not in props  # KServe registers from the snapshot
    assert configs.KSERVE_CONFIG.parent.name == "config"  # KServe's layout: <storage>/config/config.properties
    assert plan.REPO in configs.KSERVE_CONFIG.parents
