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

from core import spec as specs  # noqa: E402
from deploy.containers import configs, plan  # noqa: E402
from tests.deploy.conftest import DEPLOY  # noqa: E402

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


def resources(name: str, folder=KSERVE) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((folder / name).read_text()) if doc]


def services(folder=KSERVE) -> dict:
    return {doc["metadata"]["name"]: doc for name in ("torchserve.yaml", "tfserving.yaml")
            for doc in resources(name, folder)}


def kserve_folder(root):
    """deploy/kserve/ for the built-in task, else the folder rendered for `root`'s model."""
    return configs.render(root) / "kserve"


def test_inference_services_are_structurally_valid(any_root):
    found = services(kserve_folder(any_root))
    assert len(found) == 2
    for isvc in found.values():
        jsonschema.validate(isvc, INFERENCE_SERVICE)
        predictor = isvc["spec"]["predictor"]
        assert predictor["minReplicas"] <= predictor["maxReplicas"]


def test_structural_check_can_fail():
    isvc = services()[configs.BUILTIN_MODEL]
    isvc["spec"]["predictor"]["model"]["storageUrl"] = isvc["spec"]["predictor"]["model"].pop("storageUri")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, INFERENCE_SERVICE)


def test_predictor_resources_are_valid_kubernetes_resources():
    for name, isvc in services().items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [
            {"name": "kserve-container", "image": "x", "resources": isvc["spec"]["predictor"]["model"]["resources"]}]}}
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_formats_storage_and_model_name_agree_with_the_artifacts(any_root):
    model = specs.load(any_root).model_name
    found = services(kserve_folder(any_root))
    # KServe's TF Serving runtime serves the model under the InferenceService's name.
    assert set(found) == {model, f"{model}-torchserve"}
    tfserving = found[model]["spec"]["predictor"]["model"]
    assert tfserving["modelFormat"]["name"] == "tensorflow"
    assert tfserving["storageUri"] == f"pvc://digits-models/tfserving/{model}"  # the project's volume
    torchserve = found[f"{model}-torchserve"]["spec"]["predictor"]["model"]
    assert torchserve["modelFormat"]["name"] == "pytorch"
    assert torchserve["storageUri"] == "pvc://digits-models/torchserve"
    (claim,) = resources("storage.yaml", kserve_folder(any_root))
    kubernetes_validate.validate(claim, kubernetes_validate.latest_version(), strict=True)
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "digits-models"


def test_torchserve_config_for_kserve(any_root):
    model = specs.load(any_root).model_name
    config = kserve_folder(any_root) / "config" / "config.properties"
    props = dict(line.split("=", 1) for line in config.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert props["model_store"] == configs.KSERVE_MODEL_STORE == "/mnt/models/model-store"
    assert props["inference_address"].endswith(f":{configs.KSERVE_TORCHSERVE_PORT}")
    snapshot = json.loads(props["model_snapshot"])
    assert snapshot["modelCount"] == 1 and list(snapshot["models"]) == [model]
    assert snapshot["models"][model]["1.0"]["marName"] == f"{model}.mar"
    assert "models" not in props and "load_models" not in props  # KServe registers from the snapshot
    assert configs.KSERVE_CONFIG.parent.name == "config"  # KServe's layout: <storage>/config/config.properties
    assert plan.REPO in configs.KSERVE_CONFIG.parents


def test_a_model_name_kserve_cannot_carry_is_left_out_with_a_note(tmp_path, capsys):
    from tests.deploy.conftest import artifacts_with, other_spec

    root = artifacts_with(tmp_path / "artifacts", {**other_spec(), "model_name": "bar_chart"})
    out = configs.render(root)
    assert not (out / "kserve").exists()
    assert "no KServe manifests for model 'bar_chart'" in capsys.readouterr().out
    assert (out / "k8s" / "torchserve.yaml").exists()  # every other path still serves it
    assert '"bar_chart"' in (out / "k8s" / "torchserve.yaml").read_text()
