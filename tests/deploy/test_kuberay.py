"""deploy/kuberay/rayservice.yaml: the RayService against the CRD's own schema (KubeRay v1.7.0, committed in
tests/deploy/schemas/, unknown fields refused), its pod templates and NetworkPolicy with kubernetes-validate
as real Kubernetes objects, and its Serve config held to the local application's defaults and image."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from deploy.containers import plan  # noqa: E402
from tests.deploy.conftest import DEPLOY  # noqa: E402

MANIFEST = DEPLOY / "kuberay" / "rayservice.yaml"
SCHEMA = DEPLOY.parent / "tests" / "deploy" / "schemas" / "rayservice-v1.7.0.json"


@pytest.fixture(scope="module")
def documents() -> dict:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


@pytest.fixture(scope="module")
def service(documents) -> dict:
    return documents["RayService"]


def pods(service: dict) -> dict:
    """{group: its pod template as a Pod}: the head's and each worker group's."""
    cluster = service["spec"]["rayClusterConfig"]
    templates = {"head": cluster["headGroupSpec"]["template"],
                 **{group["groupName"]: group["template"] for group in cluster["workerGroupSpecs"]}}
    return {name: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"digits-rayserve-{name}",
                                                                   **template.get("metadata", {})},
                   "spec": template["spec"]} for name, template in templates.items()}


def test_the_rayservice_matches_the_crd_schema(service):
    jsonschema.validate(service, json.loads(SCHEMA.read_text()))


def test_a_misspelt_field_is_refused(service):
    broken = json.loads(json.dumps(service))
    broken["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {}
    with pytest.raises(jsonschema.ValidationError, match="rayStartParam"):
        jsonschema.validate(broken, json.loads(SCHEMA.read_text()))


def test_only_clients_reach_serve_and_only_the_operator_the_dashboard(documents):
    policy = documents["NetworkPolicy"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in policy["ingress"] if "ports" in rule}
    assert by_port[8000][0] == {"podSelector": {"matchLabels": {"digits-everywhere/model-client": "true"}}}
    operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-operator"}}}
    assert by_port[8265] == [operator]
    assert set(by_port) == {8000, 8265}  # every other port: the cluster's own pods only


def test_pod_templates_and_the_network_policy_are_valid_kubernetes(service, documents):
    for pod in pods(service).values():
        kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    kubernetes_validate.validate(documents["NetworkPolicy"], kubernetes_validate.latest_version(), strict=True)


def test_non_root_read_only_with_resources_and_no_usage_statistics(service):
    for name, pod in pods(service).items():
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, name
        assert pod["spec"]["automountServiceAccountToken"] is False, name
        for container in pod["spec"]["containers"]:
            # Ray Serve's own image (rayserve.Dockerfile: Ray 2.60 from its lock and serving/rayserve), as the plan's.
            assert container["image"] == plan.baked_image(plan.image_name(plan.RAYSERVE)) == "digits-rayserve:local"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert {"requests", "limits"} <= set(container["resources"]), name
            env = {item["name"]: item["value"] for item in container["env"]}
            assert env["RAY_USAGE_STATS_ENABLED"] == "0", name
    worker = pods(service)["replicas"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8000}


def test_the_serve_config_is_the_local_application_s(service):
    """serveConfigV2 builds the same application with the defaults the local cluster uses."""
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    (application,) = config["applications"]
    assert application["import_path"] == "serving.rayserve.app:build"
    assert config["http_options"]["port"] == 8000
    (deployment,) = application["deployments"]
    defaults = _options_defaults()
    assert deployment["name"] == "V2Model"
    assert {key: deployment[key] for key in defaults["deployment"]} == defaults["deployment"]
    assert application["args"] == {"artifacts": "/artifacts", **defaults["batching"]}
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == _ray_version()


def _options_defaults() -> dict:
    """serving/rayserve/app.py's Options defaults, read from its source (Ray is not in this environment)."""
    import ast

    from core.paths import REPO_ROOT

    tree = ast.parse((REPO_ROOT / "serving" / "rayserve" / "app.py").read_text())
    (options,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Options"]
    values = {node.target.id: ast.literal_eval(node.value) for node in options.body
              if isinstance(node, ast.AnnAssign) and node.value is not None}
    deployment = {"max_ongoing_requests": values["max_ongoing_requests"],
                  "health_check_period_s": values["health_check_period_s"],
                  "health_check_timeout_s": values["health_check_timeout_s"],
                  "ray_actor_options": {"num_cpus": values["replica_cpus"]},
                  "autoscaling_config": {"min_replicas": values["min_replicas"],
                                         "initial_replicas": values["min_replicas"],
                                         "max_replicas": values["max_replicas"],
                                         "target_ongoing_requests": values["target_ongoing_requests"]}}
    return {"deployment": deployment,
            "batching": {"max_batch_size": values["max_batch_size"], "batch_wait_s": values["batch_wait_s"]}}


def _ray_version() -> str:
    from core.paths import REPO_ROOT

    (line,) = [line for line in (REPO_ROOT / "requirements" / "ray.txt").read_text().splitlines()
               if line.startswith("ray==")]
    return line.split("==")[1].split()[0]
