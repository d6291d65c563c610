"""The containers' health checks, run against live servers on this machine.

No engine runs here, but the checks themselves are plain programs: the TorchServe one is a Python
script (deploy/config/torchserve_health.py), the TF Serving one a bash line, the KServe one a
Python line. They run here against the session's servers (tests/conftest.py `served`: real
TorchServe; TF Serving or the compatible server; KServe's ModelServer per framework; the Ray
cluster), which the local runner started on free ports over artifacts of the same build graph that
deploy/containers/artifacts.py runs; that the container code builds them from a trained model
alone is checked on a copy of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core import manifest
from core import servers as table
from core import spec as specs
from core.spec import SERVING_PORTS
from deploy.containers import artifacts, plan
from serving.tfserving import configs as tf_configs
from tests.conftest import copy_trained, free_ports

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]
HEALTH_SCRIPT = plan.CONFIG_DIR / "torchserve_health.py"


@pytest.fixture(scope="module")
def live(served):
    """(artifacts folder, endpoints) of the session's running servers; the checks only read."""
    return served.root, served.endpoints


def test_missing_artifacts_are_built_and_verified(trained_artifacts, tmp_path):
    # A copy holding only what training wrote: the container code must build everything else from it alone.
    root = copy_trained(trained_artifacts, tmp_path / "artifacts")
    ready = artifacts.ensure(root)
    # The demo is served only when its page was built into this folder (the browser tests may have).
    demo = [name for name in plan.rows() if table.SERVERS[name].optional] if artifacts.web_ready(root) else []
    assert ready == [*table.model_servers(), *demo]  # every row with a container, in the table's order
    manifest.verify("torchserve_mar", root)
    assert tf_configs.verified_versions(root) == [1]
    assert artifacts.ensure(root) == ready  # a second call builds nothing new
    assert tf_configs.verified_versions(root) == [1]


def health(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HEALTH_SCRIPT), *args], capture_output=True, text=True, timeout=30)


def test_torchserve_health_check_passes_on_a_ready_model(live):
    root, endpoints = live
    key_file = root / "run" / "torchserve" / "key_file.json"
    answer = health(endpoints.url("torchserve_management"), specs.load(root).model_name, str(key_file))
    assert answer.returncode == 0, answer.stderr


def test_torchserve_health_check_fails_clearly(live, tmp_path):
    root, endpoints = live
    key_file = root / "run" / "torchserve" / "key_file.json"
    unknown = health(endpoints.url("torchserve_management"), "no-such-model", str(key_file))
    assert unknown.returncode == 1 and "not ready" in unknown.stderr
    wrong_key = tmp_path / "key_file.json"
    wrong_key.write_text(json.dumps({"management": {"key": "wrong"}}))
    model = specs.load(root).model_name
    refused = health(endpoints.url("torchserve_management"), model, str(wrong_key))
    assert refused.returncode == 1 and "not ready" in refused.stderr
    # Without a key file (TorchServe run with --disable-token-auth) no key is sent: refused here.
    no_key = health(endpoints.url("torchserve_management"), model, str(tmp_path / "absent.json"))
    assert no_key.returncode == 1


def tfserving_check(port: int, model: str) -> list[str]:
    command = plan.tfserving_health(model)[1:]
    default = f"/dev/tcp/127.0.0.1/{SERVING_PORTS['tfserving_rest']} "
    assert default in command[-1]
    return command[:-1] + [command[-1].replace(default, f"/dev/tcp/127.0.0.1/{port} ")]


def test_tfserving_health_check_passes_when_the_model_is_available(live):
    root, endpoints = live
    check = tfserving_check(endpoints.ports["tfserving_rest"], specs.load(root).model_name)
    answer = subprocess.run(check, capture_output=True, timeout=30)
    assert answer.returncode == 0, answer.stderr


def test_tfserving_health_check_fails_without_a_server(live):
    (port,) = free_ports(1)
    answer = subprocess.run(tfserving_check(port, specs.load(live[0]).model_name), capture_output=True, timeout=30)
    assert answer.returncode != 0


@pytest.mark.parametrize("name", [name for name, row in table.SERVERS.items() if row.folder == "serving/kserve"])
def test_kserve_health_check_passes_once_the_model_is_loaded(live, name):
    _, endpoints = live
    rest = table.SERVERS[name].port("rest")
    command = plan.kserve_health(name)[1:]
    command[-1] = command[-1].replace(f":{SERVING_PORTS[rest]}/", f":{endpoints.ports[rest]}/")
    answer = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=30)
    assert answer.returncode == 0, answer.stderr


def test_rayserve_health_check_passes_once_the_replicas_run(live):
    """The container's check, against the local Ray cluster the runner started (its port moved), and
    failing where nothing listens."""
    _, endpoints = live
    command = plan.rayserve_health()[1:]
    default = f":{SERVING_PORTS['rayserve_rest']}/"
    assert default in command[-1]
    for port, expected in ((endpoints.ports["rayserve_rest"], 0), (free_ports(1)[0], 1)):
        check = [sys.executable, *command[1:-1], command[-1].replace(default, f":{port}/")]
        answer = subprocess.run(check, capture_output=True, text=True, timeout=30)
        assert answer.returncode == expected, answer.stderr
