"""deploy/k8s/: valid Kubernetes objects (kubernetes-validate's schemas) that run the launcher's plan,
as committed (the built-in task) and as rendered for a model of one's own."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from core import servers as table  # noqa: E402
from core import spec as specs  # noqa: E402
from core.spec import SERVING_PORTS  # noqa: E402
from deploy.containers import configs, fleet, k8s, plan  # noqa: E402
from tests.deploy.conftest import DEPLOY, OTHER_MODEL  # noqa: E402

K8S = DEPLOY / "k8s"
# The newest schema the package ships, and an older release still widely run.
VERSIONS = (kubernetes_validate.latest_version(), "1.29.0")
# From the table of servers: each row's Kubernetes objects (core/servers.py Container.k8s).
DEPLOYMENTS = tuple(k8s.deployments())
MODEL_SERVERS = set(table.model_servers())
# Ray Serve scales its replicas inside the pod (2-4, Ray's autoscaler); across nodes, deploy/kuberay/.
AUTOSCALED = {name for name in plan.rows()
              if "HorizontalPodAutoscaler" in table.manifests(name).get("k8s/hpa.yaml", ())}


def kustomization(folder=K8S) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def documents(folder=K8S) -> list[dict]:
    return [doc for name in kustomization(folder)["resources"]
            for doc in yaml.safe_load_all((folder / name).read_text()) if doc]


def of_kind(kind: str, folder=K8S) -> dict:
    return {doc["metadata"]["name"]: doc for doc in documents(folder) if doc["kind"] == kind}


def manifests(root):
    """The kustomization k8s.py applies for artifacts folder `root` (rendered if need be)."""
    return configs.render(root) / "k8s"


def mebibytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2])


def test_kustomization_lists_every_manifest():
    listed = set(kustomization()["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("name", tuple(plan.rows()))
def test_every_row_s_kubernetes_objects_are_in_its_manifests(name):
    """What core/servers.py says of a server's Kubernetes objects is in the files, named after the server where
    they are the kustomization's; deploy/k8s/ holds no Deployment or autoscaler of a server without a row."""
    for path, kinds in table.manifests(name).items():
        manifest = DEPLOY / path
        assert manifest.is_file(), (f"{name}: its row (core/servers.py) names {path}, which does not exist: write "
                                    f"it ({', '.join(kinds)}), as the other servers' are")
        found = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
        for kind in kinds:
            own = [doc for doc in found if doc["kind"] == kind]
            if path.startswith("k8s/"):  # the kustomization's objects are named after their server
                own = [doc for doc in own if doc["metadata"]["name"] == name]
            assert own, f"{name}: {path} has no {kind}{' named ' + name if path.startswith('k8s/') else ''}: add it"
        if path.startswith("k8s/"):
            assert manifest.name in kustomization()["resources"], \
                f"{name}: add {manifest.name} to deploy/k8s/kustomization.yaml's resources"


def test_every_deployment_and_autoscaler_belongs_to_a_row():
    assert set(of_kind("Deployment")) == set(DEPLOYMENTS), \
        "every Deployment of deploy/k8s/ is a server's: a row of core/servers.py naming it (Container.k8s)"
    assert set(of_kind("HorizontalPodAutoscaler")) == AUTOSCALED, \
        "deploy/k8s/hpa.yaml scales the rows whose Container.k8s names it (core/servers.py), no other"


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_matches_the_kubernetes_schema(version, bars_root):
    assert manifests(bars_root) != K8S
    kinds = []
    for doc in documents() + documents(manifests(bars_root)):
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.append(doc["kind"])
    assert sorted(set(kinds)) == ["Deployment", "HorizontalPodAutoscaler", "Namespace", "NetworkPolicy", "Service"]


def test_schema_check_can_fail():
    deployment = of_kind("Deployment")["torchserve"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecnds"] = 5
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecnds"):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_runs_the_plan(name, any_root):
    service = next(s for s in fleet.services(any_root) if s.name == name)
    pod = of_kind("Deployment", manifests(any_root))[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == plan.baked_image(plan.image_name(name))
    args = container.get("args", [])
    if name == "torchserve":
        # The one difference from compose: no token in the cluster (see torchserve.yaml).
        assert args[-1] == "--disable-token-auth"
        args = args[:-1]
    assert container.get("command", []) + args == (service.entrypoint or []) + service.command
    # Its published ports, and the ones for the cluster network only (TorchServe's metrics: in no Service).
    listening = {*service.ports.values(), *service.internal_ports.values()}
    assert {p["containerPort"] for p in container["ports"]} == listening
    assert container.get("workingDir") == service.working_dir
    assert {e["name"]: e["value"] for e in container.get("env", [])} == service.environment
    limits = plan.limits(name)
    assert container["resources"]["limits"]["cpu"] == limits["cpus"] or container["resources"]["limits"]["cpu"] == \
        f"{int(float(limits['cpus']) * 1000)}m"
    assert mebibytes(container["resources"]["limits"]["memory"]) == int(limits["memory"].rstrip("M"))
    assert mebibytes(container["resources"]["requests"]["memory"]) == int(limits["reserve"].rstrip("M"))
    assert container["resources"]["requests"]["cpu"] == limits["cpu_request"]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_deployment_is_non_root_read_only_and_probed(name, digits_root):
    service = next(s for s in fleet.services(digits_root) if s.name == name)
    pod = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    uid, gid = (int(x) for x in plan.user(name).split(":"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid) != (0, 0)
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # /tmp, and /dev/shm where the plan sizes it (Ray's object store): both in memory, like compose's.
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"] + ["/dev/shm"] * bool(service.shm_size)
    assert "readinessProbe" in container and "livenessProbe" in container


def test_readiness_probes_are_the_health_checks(any_root):
    deployments = of_kind("Deployment", manifests(any_root))
    for service in fleet.services(any_root):
        container = deployments[service.name]["spec"]["template"]["spec"]["containers"][0]
        for probe in (container["readinessProbe"], container.get("startupProbe")):
            if probe is None:
                continue
            if "exec" in probe:
                assert probe["exec"]["command"] == service.health[1:], service.name
            else:  # the demo and KServe: the URL the compose health check asks, over httpGet
                port = {p["name"]: p["containerPort"] for p in container["ports"]}[probe["httpGet"]["port"]]
                url = f"http://127.0.0.1:{port}{probe['httpGet']['path']}"
                assert service.health[-1] == url or f"'{url}'" in service.health[-1], service.name


def test_services_expose_the_container_ports():
    deployments, services = of_kind("Deployment"), of_kind("Service")
    assert set(services) == set(deployments)
    for name, service in services.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert service["spec"]["type"] == "ClusterIP"
        assert service["spec"]["selector"] == deployments[name]["spec"]["selector"]["matchLabels"]
        for port in service["spec"]["ports"]:
            assert named[port["targetPort"]] == port["port"], (name, port)
    exposed = {p["port"] for s in services.values() for p in s["spec"]["ports"]}
    assert SERVING_PORTS["torchserve_management"] not in exposed
    assert SERVING_PORTS["torchserve_grpc_management"] not in exposed
    assert SERVING_PORTS["torchserve_metrics"] not in exposed  # no authentication: in no Service


def test_autoscalers_target_deployments_with_cpu_requests():
    deployments = of_kind("Deployment")
    autoscalers = of_kind("HorizontalPodAutoscaler")
    assert set(autoscalers) == AUTOSCALED
    for hpa in autoscalers.values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        container = deployments[target["name"]]["spec"]["template"]["spec"]["containers"][0]
        assert "cpu" in container["resources"]["requests"]  # utilization is measured against it
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_network_policies_select_the_deployments_they_name():
    """Each policy's podSelector picks real Deployments' pods (a misspelt label would lock down nothing)."""
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in of_kind("Deployment").items()}
    policies = of_kind("NetworkPolicy")
    assert set(policies) == {"model-servers-inference", "model-servers-metrics", "egress-denied",
                             "model-clients-egress", "metrics-scraper-egress"}
    (selector,) = policies["model-servers-inference"]["spec"]["podSelector"]["matchExpressions"]
    assert selector["key"] == "app.kubernetes.io/name" and selector["operator"] == "In"
    served = {name for name, pod in labels.items() if pod["app.kubernetes.io/name"] in selector["values"]}
    assert served == MODEL_SERVERS, ("model-servers-inference (deploy/k8s/networkpolicy.yaml) must select every "
                                     f"model server of core/servers.py: its values should be {sorted(MODEL_SERVERS)}")
    metrics = policies["model-servers-metrics"]["spec"]["podSelector"]["matchLabels"]
    assert [name for name, pod in labels.items() if metrics.items() <= pod.items()] == ["torchserve"]


def test_rayserve_pod_holds_ray_s_memory_as_the_plan_does(any_root):
    """Ray's temp folder and its object store in memory, sized as compose's tmpfs and shm_size."""
    service = next(s for s in fleet.services(any_root) if s.name == plan.RAYSERVE)
    pod = of_kind("Deployment", manifests(any_root))[plan.RAYSERVE]["spec"]["template"]["spec"]
    volumes = {v["name"]: v["emptyDir"] for v in pod["volumes"]}
    mounted = {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}
    assert all(volume["medium"] == "Memory" for volume in mounted.values())
    tmp_size = dict(option.split("=") for option in service.tmpfs["/tmp"].split(",") if "=" in option)["size"]
    assert mebibytes(mounted["/tmp"]["sizeLimit"]) == int(tmp_size.rstrip("m"))
    assert mebibytes(mounted["/dev/shm"]["sizeLimit"]) == int(service.shm_size.rstrip("m"))
    assert service.command[service.command.index("--run") + 1].startswith("/tmp/")
    assert mebibytes(mounted["/dev/shm"]["sizeLimit"]) > plan.RAY_OBJECT_STORE_MB
    # The startup probe waits as long as the compose health check: the cluster's own start timeout.
    startup = pod["containers"][0]["startupProbe"]
    timing = service.health_timing
    assert startup["periodSeconds"] * startup["failureThreshold"] == \
        timing["start_period"] + timing["retries"] * timing["interval"]


def test_probes_name_the_spec_model(any_root):
    model = specs.load(any_root).model_name
    deployments = of_kind("Deployment", manifests(any_root))
    tfserving = deployments["tfserving"]["spec"]["template"]["spec"]["containers"][0]
    assert f"/v1/models/{model} " in tfserving["readinessProbe"]["exec"]["command"][-1]
    torchserve = deployments["torchserve"]["spec"]["template"]["spec"]["containers"][0]
    assert torchserve["readinessProbe"]["exec"]["command"][3] == model


def test_own_model_manifests_differ_only_in_the_model(bars_root):
    """The rendered kustomization is the committed one with the probes naming `bars`; nothing else moves."""
    folder = manifests(bars_root)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in K8S.iterdir())
    changed = {p.name for p in K8S.iterdir() if (folder / p.name).read_text() != p.read_text()}
    assert changed == {"torchserve.yaml", "tfserving.yaml", "kustomization.yaml"}  # the last: its usage comment
    assert yaml.safe_load((folder / "kustomization.yaml").read_text()) == kustomization()
    for name in ("torchserve.yaml", "tfserving.yaml"):
        text = (folder / name).read_text()
        assert f'"{configs.BUILTIN_MODEL}"' not in text and f"/models/{configs.BUILTIN_MODEL} " not in text
        assert OTHER_MODEL in text


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl to build the kustomization")
@pytest.mark.parametrize("own", [False, True], ids=["committed", "own model"])
def test_kustomize_build_is_valid_and_namespaced(own, bars_root):
    folder = manifests(bars_root) if own else K8S
    built = subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60,
                           check=True)
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert len(objects) == len(documents(folder))
    for doc in objects:
        kubernetes_validate.validate(doc, VERSIONS[0], strict=True)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "digits-everywhere"
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "digits"
