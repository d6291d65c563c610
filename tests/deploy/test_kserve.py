"""deploy/kserve/: InferenceServices checked structurally; their Kubernetes parts with the Kubernetes schema.

KServe publishes its CRD, not a JSON schema package: the schema below covers the v1beta1 fields
these resources use (unknown fields refused), and the Kubernetes inside them (the custom
predictor's container and volumes, the built-in predictor's resources) is validated by
kubernetes-validate, strictly, as a real Pod's.
"""
from __future__ import annotations

import jsonschema
import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from core import servers as table  # noqa: E402
from core import spec as specs  # noqa: E402
from core.spec import SERVING_PORTS  # noqa: E402
from deploy.containers import configs, fleet, plan  # noqa: E402
from tests.deploy.conftest import DEPLOY  # noqa: E402

KSERVE = DEPLOY / "kserve"
DNS_1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT = {"type": "object"}  # its contents are kubernetes-validate's to check
CONTAINER = {
    "type": "object", "additionalProperties": False, "required": ["name", "image"],
    "properties": {
        "name": {"const": "kserve-container"},  # the name KServe looks for in a custom predictor
        "image": {"type": "string"}, "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        # KServe routes one port of a custom predictor.
        "ports": {"type": "array", "maxItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["containerPort"],
            "properties": {"name": {"enum": ["http1", "h2c"]}, "containerPort": {"type": "integer"},
                           "protocol": {"const": "TCP"}}}},
        "readinessProbe": OBJECT, "livenessProbe": OBJECT, "resources": OBJECT, "securityContext": OBJECT,
        "volumeMounts": {"type": "array"},
    },
}
INFERENCE_SERVICE = {
    "type": "object", "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": DNS_1123, "maxLength": 63},
                                    "labels": LABELS}},
        "spec": {"type": "object", "additionalProperties": False, "required": ["predictor"], "properties": {
            # A built-in runtime's `model`, or a custom predictor's `containers`: one of them.
            "predictor": {"type": "object", "additionalProperties": False,
                          "oneOf": [{"required": ["model"]}, {"required": ["containers"]}], "properties": {
                "minReplicas": {"type": "integer", "minimum": 0},
                "maxReplicas": {"type": "integer", "minimum": 1},
                "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                "scaleTarget": {"type": "integer", "minimum": 1},
                "labels": LABELS,  # added to the predictor's pods (networkpolicy.yaml selects them)
                "automountServiceAccountToken": {"type": "boolean"},
                "containers": {"type": "array", "minItems": 1, "maxItems": 1, "items": CONTAINER},
                "volumes": {"type": "array"},
                "model": {"type": "object", "additionalProperties": False,
                          "required": ["modelFormat", "storageUri"], "properties": {
                              "modelFormat": {"type": "object", "required": ["name"],
                                              "properties": {"name": {"type": "string"}}},
                              "protocolVersion": {"enum": ["v1", "v2", "grpc-v1", "grpc-v2"]},
                              "storageUri": {"type": "string", "pattern": r"^(pvc|gs|s3|https?|hdfs)://"},
                              "resources": OBJECT, "securityContext": OBJECT, "volumeMounts": {"type": "array"}}},
            }}}},
    },
}


def resources(name: str, folder=KSERVE) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((folder / name).read_text()) if doc]


def inference_service_files() -> list[str]:
    """The files of deploy/kserve/ that the rows of core/servers.py name for an InferenceService."""
    return [path.split("/", 1)[1] for name in plan.rows() for path, kinds in table.manifests(name).items()
            if path.startswith("kserve/") and "InferenceService" in kinds]


def services(folder=KSERVE) -> dict:
    return {doc["metadata"]["name"]: doc for name in inference_service_files() for doc in resources(name, folder)}


def test_every_inference_service_belongs_to_a_row():
    found = {path.name for path in KSERVE.glob("*.yaml")
             if any(doc["kind"] == "InferenceService" for doc in resources(path.name))}
    assert found == set(inference_service_files()), (
        "every InferenceService file of deploy/kserve/ is a server's: name it in that row's Container.k8s "
        "(core/servers.py), e.g. {'kserve/<file>.yaml': ('InferenceService',)}")


def kserve_folder(root):
    """deploy/kserve/ for the built-in task, else the folder rendered for `root`'s model."""
    return configs.render(root) / "kserve"


def as_pod(predictor: dict, name: str) -> dict:
    """The Kubernetes a predictor carries, as the Pod KServe makes of it (a built-in runtime's resources
    in a stand-in container)."""
    containers = predictor.get("containers") or [
        {"name": "kserve-container", "image": "x", **{key: predictor["model"][key] for key in
                                                     ("resources", "securityContext", "volumeMounts")
                                                     if key in predictor["model"]}}]
    spec = {"containers": containers, **{key: predictor[key] for key in ("volumes", "automountServiceAccountToken")
                                          if key in predictor}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": predictor.get("labels", {})},
            "spec": spec}


def torch_predictor(folder=KSERVE, model: str = configs.BUILTIN_MODEL) -> dict:
    return services(folder)[f"{model}-torch"]["spec"]["predictor"]


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


@pytest.mark.parametrize("change", [
    lambda predictor, container: container.update(imagePullPolcy=container.pop("imagePullPolicy")),  # a typo
    lambda predictor, container: container.pop("image"),
    lambda predictor, container: container["ports"].append({"name": "h2c", "containerPort": 8091}),  # one port only
    lambda predictor, container: predictor.update(model={"modelFormat": {"name": "pytorch"},
                                                         "storageUri": "pvc://x"}),  # model and containers
], ids=["unknown field", "no image", "two ports", "both kinds of predictor"])
def test_custom_predictor_check_can_fail(change):
    isvc = services()[f"{configs.BUILTIN_MODEL}-torch"]
    jsonschema.validate(isvc, INFERENCE_SERVICE)
    change(isvc["spec"]["predictor"], isvc["spec"]["predictor"]["containers"][0])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, INFERENCE_SERVICE)


def test_predictors_are_valid_kubernetes():
    for name, isvc in services().items():
        kubernetes_validate.validate(as_pod(isvc["spec"]["predictor"], name), kubernetes_validate.latest_version(),
                                     strict=True)
    pod = as_pod(torch_predictor(), "typo")
    pod["spec"]["containers"][0]["readinessProbe"]["periodSecnds"] = 5
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecnds"):
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_formats_storage_and_model_name_agree_with_the_artifacts(any_root):
    model = specs.load(any_root).model_name
    found = services(kserve_folder(any_root))
    # KServe's TF Serving runtime serves the model under the InferenceService's name.
    assert set(found) == {model, f"{model}-torch"}
    tfserving = found[model]["spec"]["predictor"]["model"]
    assert tfserving["modelFormat"]["name"] == "tensorflow"
    assert tfserving["storageUri"] == f"pvc://digits-models/tfserving/{model}"  # the project's volume
    (container,) = found[f"{model}-torch"]["spec"]["predictor"]["containers"]
    assert container["image"] == plan.baked_image(plan.image_name("kserve-torch"))  # its model is in the image
    (claim,) = resources("storage.yaml", kserve_folder(any_root))
    kubernetes_validate.validate(claim, kubernetes_validate.latest_version(), strict=True)
    assert claim["kind"] == "PersistentVolumeClaim" and claim["metadata"]["name"] == "digits-models"


def test_custom_predictor_runs_the_plan(any_root):
    """Command, arguments, port, probes and limits are kserve-torch's in the plan and the spec's ports."""
    service = next(s for s in fleet.services(any_root) if s.name == "kserve-torch")
    (container,) = torch_predictor(kserve_folder(any_root), specs.load(any_root).model_name)["containers"]
    assert container["command"] == service.entrypoint and container["args"] == service.command
    rest = SERVING_PORTS["kserve_torch_rest"]
    assert container["ports"] == [{"name": "http1", "containerPort": rest, "protocol": "TCP"}]
    assert container["args"][container["args"].index("--http-port") + 1] == str(rest)
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert (ready, live) == ({"path": "/v2/health/ready", "port": rest}, {"path": "/v2/health/live", "port": rest})
    assert f"'http://127.0.0.1:{rest}/v2/health/ready'" in service.health[-1]  # what compose's check asks
    limits = plan.limits("kserve-torch")
    mebibytes = {key: f"{limits[key].rstrip('M')}Mi" for key in ("reserve", "memory")}
    assert container["resources"] == {"requests": {"cpu": limits["cpu_request"], "memory": mebibytes["reserve"]},
                                      "limits": {"cpu": limits["cpus"], "memory": mebibytes["memory"]}}


def test_custom_predictor_is_non_root_on_a_read_only_filesystem():
    predictor = torch_predictor()
    (container,) = predictor["containers"]
    security = container["securityContext"]
    uid, gid = (int(x) for x in plan.user("kserve-torch").split(":"))
    assert security["runAsNonRoot"] is True and (security["runAsUser"], security["runAsGroup"]) == (uid, gid) != (0, 0)
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert predictor["automountServiceAccountToken"] is False
    # /tmp, in memory, is the only writable path.
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert predictor["volumes"] == [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]


def test_network_policy_admits_only_clients_and_the_gateway_and_denies_egress():
    (policy,) = resources("networkpolicy.yaml")
    kubernetes_validate.validate(policy, kubernetes_validate.latest_version(), strict=True)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for name, isvc in services().items():  # both predictors' pods carry the labels it selects
        labels = isvc["spec"]["predictor"]["labels"]
        assert selector.items() <= labels.items(), name
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and "egress" not in policy["spec"]  # none out
    (rule,) = policy["spec"]["ingress"]
    assert "ports" not in rule  # by source only: Knative's queue-proxy takes the traffic on its own port
    pods, namespaces = rule["from"]
    assert pods == {"podSelector": {"matchLabels": {"digits-everywhere/model-client": "true"}}}  # not the namespace
    (gateway,) = namespaces["namespaceSelector"]["matchExpressions"]
    assert gateway["key"] == "kubernetes.io/metadata.name" and set(gateway["values"]) == {"istio-system",
                                                                                           "knative-serving"}


@pytest.mark.parametrize("name", ["digits-torch", "digits"])
def test_every_predictor_is_non_root_on_a_read_only_filesystem(name):
    """Both InferenceServices, the custom predictor and TF Serving's runtime alike (that one had none)."""
    predictor = services()[name]["spec"]["predictor"]
    (container,) = as_pod(predictor, name)["spec"]["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0 and security["runAsGroup"] != 0
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]} and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert predictor["automountServiceAccountToken"] is False
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    kubernetes_validate.validate(as_pod(predictor, name), kubernetes_validate.latest_version(), strict=True)


def test_a_model_name_kserve_cannot_carry_is_left_out_with_a_note(tmp_path, capsys):
    from tests.deploy.conftest import artifacts_with, other_spec

    root = artifacts_with(tmp_path / "artifacts", {**other_spec(), "model_name": "bar_chart"})
    out = configs.render(root)
    assert not (out / "kserve").exists()
    assert "no KServe manifests for model 'bar_chart'" in capsys.readouterr().out
    assert (out / "k8s" / "torchserve.yaml").exists()  # every other path still serves it
    assert '"bar_chart"' in (out / "k8s" / "torchserve.yaml").read_text()
