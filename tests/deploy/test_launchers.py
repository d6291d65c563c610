"""Every container path stops with a message naming what is missing; the launcher's plan is the spec's.

The machines these tests run on may or may not have a Docker engine or a cluster, so each test
takes away what it needs missing: DOCKER_HOST points at a socket that does not exist, PATH holds
no docker or kubectl, KUBECONFIG names a cluster on a closed port.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from core import spec as specs
from core.spec import SERVING_PORTS
from deploy.containers import fleet, launch, plan
from serving import endpoints as endpoints_mod

REPO = plan.REPO


def run(module: str, *args: str, env: dict, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.fixture
def no_engine(tmp_path):
    """An environment where no Docker engine answers, and an empty artifacts folder."""
    socket_path = tmp_path / "no-engine.sock"
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket_path}", "DIGITS_ARTIFACTS": str(tmp_path / "artifacts")}
    return env, str(socket_path)


@pytest.fixture
def bare_path(tmp_path):
    """A PATH with neither docker nor kubectl on it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    return str(folder)


def test_docker_path_names_the_missing_engine(no_engine):
    env, socket_path = no_engine
    for action in ("up", "down", "status"):
        answer = run("deploy.containers.launch", action, env=env)
        assert answer.returncode == 1, answer.stdout
        assert "cannot deploy with DEPLOY=docker" in answer.stderr
        assert "a running Docker engine" in answer.stderr and socket_path in answer.stderr
    assert "spec.json" not in answer.stderr  # stopped before looking at the artifacts


def test_compose_path_names_everything_missing(no_engine, bare_path):
    env, socket_path = no_engine
    answer = run("deploy.containers.compose", "up", env={**env, "PATH": bare_path})
    assert answer.returncode == 1
    assert "cannot deploy with DEPLOY=compose" in answer.stderr
    assert "the docker command-line client (not on PATH)" in answer.stderr
    assert "a running Docker engine" in answer.stderr and socket_path in answer.stderr
    assert "the Docker Compose plugin" in answer.stderr


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client to ask for the Compose plugin")
def test_compose_path_with_a_client_names_the_engine(no_engine):
    env, socket_path = no_engine
    answer = run("deploy.containers.compose", "up", env=env)
    assert answer.returncode == 1
    assert "the docker command-line client" not in answer.stderr
    assert socket_path in answer.stderr


def test_k8s_path_without_kubectl(no_engine, bare_path):
    env, _ = no_engine
    answer = run("deploy.containers.k8s", "up", env={**env, "PATH": bare_path})
    assert answer.returncode == 1
    assert "cannot deploy with DEPLOY=k8s" in answer.stderr
    assert "kubectl (not on PATH)" in answer.stderr
    assert "a running Docker engine" in answer.stderr  # needed to build the images


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl to ask for a cluster")
def test_k8s_path_names_the_unreachable_cluster(no_engine, tmp_path):
    env, _ = no_engine
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "https://127.0.0.1:{closed_port()}"}}}}]
users: [{{name: me, user: {{token: x}}}}]
contexts: [{{name: gone-cluster, context: {{cluster: gone, user: me}}}}]
current-context: gone-cluster
""")
    for action in ("up", "down"):
        answer = run("deploy.containers.k8s", action, "--no-build", env={**env, "KUBECONFIG": str(config)})
        assert answer.returncode == 1
        assert "a reachable Kubernetes cluster" in answer.stderr and "gone-cluster" in answer.stderr
    empty = tmp_path / "empty-kubeconfig"
    empty.write_text("")
    answer = run("deploy.containers.k8s", "up", env={**env, "KUBECONFIG": str(empty)})
    assert "kubectl has no current context" in answer.stderr


def test_make_targets_stop_with_the_message(no_engine):
    env, socket_path = no_engine
    for target in ("deploy-preflight", "containers-up", "down"):
        answer = subprocess.run(["make", "--no-print-directory", target, "DEPLOY=docker"], capture_output=True,
                                text=True, cwd=REPO, env=env, timeout=120)
        assert answer.returncode != 0, target
        assert "a running Docker engine" in answer.stderr and socket_path in answer.stderr, target
    answer = subprocess.run(["make", "--no-print-directory", "down", "DEPLOY=nowhere"], capture_output=True,
                            text=True, cwd=REPO, env=env, timeout=60)
    assert answer.returncode != 0 and "choose local, docker, compose or k8s" in answer.stderr


def test_launcher_options_follow_the_spec_and_overrides(any_root):
    root, model = any_root, specs.load(any_root).model_name
    environ = {"DIGITS_TFSERVING_GRPC_PORT": "9500", "DIGITS_SERVING_HOST": "127.0.0.2"}
    endpoints = endpoints_mod.resolve(environ)
    options = {s.name: launch.run_options(s, endpoints) for s in fleet.services(root)}
    assert options["tfserving"]["ports"] == {f"{SERVING_PORTS['tfserving_grpc']}/tcp": ("127.0.0.2", 9500),
                                             f"{SERVING_PORTS['tfserving_rest']}/tcp": ("127.0.0.2",
                                                                                        SERVING_PORTS['tfserving_rest'])}
    mounts = {m["Target"]: m["Source"] for m in options["tfserving"]["mounts"]}
    assert mounts[f"/models/{model}"] == str(root / "tfserving" / model)
    mounts = {m["Target"]: m["Source"] for m in options["torchserve"]["mounts"]}
    assert mounts[plan.TS_MODEL_STORE] == str(root / "torchserve" / "model-store")
    mounts = {m["Target"]: m["Source"] for m in options["web"]["mounts"]}
    assert mounts[plan.WEB_ROOT] == str(root / "web")
    mounts = {m["Target"]: m["Source"] for m in options["kserve-torch"]["mounts"]}
    assert mounts[f"{plan.KSERVE_ARTIFACTS}/torch/model.pt"] == str(root / "torch" / "model.pt")
    assert options["kserve-tf"]["ports"] == {f"{SERVING_PORTS[name]}/tcp": ("127.0.0.2", SERVING_PORTS[name])
                                             for name in ("kserve_tf_rest", "kserve_tf_grpc")}
    assert options["rayserve"]["ports"] == {f"{SERVING_PORTS['rayserve_rest']}/tcp": ("127.0.0.2",
                                                                                     SERVING_PORTS["rayserve_rest"])}
    assert options["rayserve"]["shm_size"] == plan.RAY_SHM and options["rayserve"]["mem_limit"] == "2560M"
    mounts = {m["Target"]: m["Source"] for m in options["rayserve"]["mounts"]}
    assert mounts[f"{plan.KSERVE_ARTIFACTS}/torch/model.pt"] == str(root / "torch" / "model.pt")
    for name, option in options.items():
        assert option["read_only"] and option["cap_drop"] == ["ALL"], name
        assert option["labels"] == {plan.LABEL: name} and option["name"] == f"digits-{name}"


def test_endpoint_lines_use_the_spec(any_root):
    model = specs.load(any_root).model_name
    endpoints = endpoints_mod.resolve({}, root=any_root)
    text = "\n".join(launch.endpoint_lines(endpoints, any_root / "key_file.json", any_root))
    assert f"http://127.0.0.1:{SERVING_PORTS['torchserve_inference']}/predictions/{model}" in text
    assert f"http://127.0.0.1:{SERVING_PORTS['tfserving_rest']}/v1/models/{model}:predict" in text
    for rest, grpc in (("kserve_torch_rest", "kserve_torch_grpc"), ("kserve_tf_rest", "kserve_tf_grpc")):
        assert f"http://127.0.0.1:{SERVING_PORTS[rest]}/v2/models/{model}/infer" in text
        assert f"127.0.0.1:{SERVING_PORTS[grpc]}" in text
    assert f"http://127.0.0.1:{SERVING_PORTS['rayserve_rest']}/v2/models/{model}/infer" in text
    assert str(SERVING_PORTS["torchserve_management"]) not in text
    from core import registry

    for name in registry.served():  # every served target of a server with a container, at its address
        assert registry.where(name, any_root, endpoints) in text, name
    assert str(any_root / "key_file.json") in text
