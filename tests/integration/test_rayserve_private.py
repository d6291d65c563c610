"""The session's Ray cluster (serving/rayserve/cluster.py) is its user's alone: a driver reaches its GCS only with
the cluster's own token, which only its user can read, and its folders are closed to others.

A driver is started as another local process would start it (the Ray environment's Python, `ray.init(address=
<the GCS>)`), with no token, with a token in Ray's default file (~/.ray/auth_token: the one the cluster would
use if it relied on Ray's default), with a wrong one, and with the cluster's: only the last connects. A refused
driver gives up after about 25 s of retries (Ray's), so the four run at once.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core import environments
from deploy.local import runner
from serving.rayserve import private, replicas

pytestmark = [pytest.mark.slow, pytest.mark.concerns("rayserve")]
DRIVER_TIMEOUT_S = 90
DRIVER = """
import sys, ray
try:
    ray.init(address=sys.argv[1], _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="ERROR")
except Exception as error:
    print("REFUSED", type(error).__name__, error)
    sys.exit(3)
print("CONNECTED", ray.cluster_resources().get("CPU"))
ray.shutdown()
"""
REFUSED_BY_GCS = "InvalidAuthToken"  # the GCS's answer, which the driver logs while it retries


@pytest.fixture(scope="module")
def ready(served) -> dict:
    return json.loads((served.root / "run" / "rayserve" / "ready.json").read_text())


@pytest.fixture(scope="module")
def cluster_pid(served) -> int:
    return runner.read_pid(runner.run_dir("rayserve", served.root)).pid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_token_is_the_clusters_own_and_readable_by_its_user_only(served, ready, cluster_pid):
    run = (served.root / "run" / "rayserve").resolve()
    token = Path(ready["auth_token"])
    assert token == run / private.TOKEN_NAME and mode(token) == 0o600
    default = Path.home() / ".ray" / "auth_token"
    assert not default.exists() or default.read_text().strip() != token.read_text().strip()
    gcs = [process for process in replicas.titled(cluster_pid, replicas.GCS_TITLE) if process.name() == "gcs_server"]
    assert len(gcs) == 1
    environment = gcs[0].environ()
    assert environment.get("RAY_AUTH_MODE") == "token" and environment.get("RAY_AUTH_TOKEN_PATH") == str(token)
    assert "RAY_AUTH_TOKEN" not in environment


def test_the_run_folder_and_rays_folders_are_closed_to_others(served):
    """Ray makes its folders 0777 (again at each worker's start): they are closed by the 0700 folder of ours
    they are in, the run folder or /tmp/digits-ray-<hash> (when the run folder's path is too long for Ray's
    sockets). Another user cannot enter them: tried as `nobody` where this runs as root."""
    run = (served.root / "run" / "rayserve").resolve()
    temp = (run / "ray").resolve()
    session = (temp / "session_latest").resolve()
    assert temp.parent in (run, Path(tempfile.gettempdir()) / temp.parent.name) and session.parent == temp
    for folder in {run, temp.parent}:
        assert mode(folder) == 0o700 and folder.stat().st_uid == os.getuid(), folder
    if os.getuid() == 0 and shutil.which("setpriv"):
        for folder in (run, session / "logs", session / "sockets"):
            other = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                    "ls", str(folder)], capture_output=True, text=True, timeout=30)
            assert other.returncode != 0 and "Permission denied" in other.stderr, (folder, other)


def test_rays_processes_run_with_rotated_logs_and_a_quick_proxy_health_check(cluster_pid):
    from serving.rayserve.cluster import LOCKED_DOWN, PROXY_HEALTH

    controller = replicas.titled(cluster_pid, replicas.CONTROLLER_TITLE)
    assert controller, "no Serve controller"
    environment = controller[0].environ()  # it reads the proxy's settings; every Ray process has the same
    expected = {**PROXY_HEALTH, **{key: LOCKED_DOWN[key] for key in ("RAY_ROTATION_MAX_BYTES",
                                                                    "RAY_ROTATION_BACKUP_COUNT")}}
    assert {key: environment.get(key) for key in expected} == expected


def drive(gcs: str, environment: dict) -> tuple[int, str]:
    """A driver's exit status and output: 0 connected, 3 refused."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("RAY_AUTH")}
    done = subprocess.run([str(environments.python("ray")), "-c", DRIVER, gcs], capture_output=True, text=True,
                          env={**base, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                               **environment}, timeout=DRIVER_TIMEOUT_S)
    return done.returncode, done.stdout + done.stderr


def test_only_a_driver_with_the_clusters_token_reaches_its_gcs(ready, tmp_path):
    home = tmp_path / "home"  # Ray's default token file, holding the user's default token if there is one
    (home / ".ray").mkdir(parents=True)
    default = Path.home() / ".ray" / "auth_token"
    (home / ".ray" / "auth_token").write_text(default.read_text() if default.exists() else secrets.token_hex(32))
    drivers = {
        "no token": {"RAY_AUTH_MODE": "disabled"},
        "Ray's default token file": {"RAY_AUTH_MODE": "token", "HOME": str(home)},
        "a wrong token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)},
        "the cluster's token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": ready["auth_token"]},
    }
    with ThreadPoolExecutor(len(drivers)) as pool:
        outcomes = dict(zip(drivers, pool.map(lambda environment: drive(ready["gcs"], environment),
                                              drivers.values()), strict=True))
    status, output = outcomes.pop("the cluster's token")
    assert status == 0 and "CONNECTED" in output, output[-2000:]
    for driver, (status, output) in outcomes.items():
        assert status == 3 and "REFUSED" in output and REFUSED_BY_GCS in output, (driver, output[-2000:])
