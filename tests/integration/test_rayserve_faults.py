"""A Ray Serve replica killed (SIGKILL) or stopped (SIGSTOP) under steady load (8 clients), on a cluster of
this module's own (the session's servers are read-only to tests).

What a client may see: answers, and for a few requests an explicit error with a body (the proxy's 5xx
for the requests the dead replica held, or its time-out answer for those the stopped one held), never a
reset connection or a request left hanging. Serve replaces the replica and the count is back. Serve's HTTP
proxy killed: another answers on the same port within seconds.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from benchmarks.openloop import OpenLoop
from core import registry
from deploy.local import runner
from serving.rayserve import replicas
from tests.conftest import Served, copy_trained, free_endpoints, wait_for
from tests.faults import record, record_load

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.concerns("rayserve")]
CLIENTS, RATE = 8, 40.0  # requests/s in all: steady, well within what two replicas serve here
MOST_FAILED = 0.05  # of the requests sent: those the replica held when it went
REQUEST_TIMEOUT_S = 5  # the proxy's answer for a request it could not finish (the stopped replica's)
PROXY_BACK_WITHIN_S = 20  # a killed proxy: ~3 s to find it dead (3 checks 1 s apart), then a new one starts


@pytest.fixture(scope="module")
def cluster(trained_artifacts, tmp_path_factory):
    root = copy_trained(trained_artifacts, tmp_path_factory.mktemp("rayserve-faults") / "artifacts")
    endpoints = free_endpoints().for_root(root)
    try:
        runner.start(root, endpoints, only=("rayserve",), timeout=300,
                     settings=_settings({"request-timeout": REQUEST_TIMEOUT_S}))
        yield Served(root, endpoints, {})
    finally:
        runner.stop(root)


def _settings(flags: dict):
    from deploy.local.settings import ServerSettings

    return ServerSettings(rayserve_flags=flags)


@pytest.fixture(scope="module")
def images(cluster):
    from core import paths
    from training import data

    return data.load_split(paths.split_path(cluster.root))["test"].x[:4]


def under_load(cluster, images, fault) -> tuple[dict, float]:
    """Steady load; `fault(replica)` on the oldest replica after 3 s; the load's result and the seconds until
    as many replicas run as before."""
    pid = runner.read_pid(runner.run_dir("rayserve", cluster.root)).pid
    before = len(replicas.running(pid))
    assert before >= 2
    expected = registry.load("torch-eager", root=cluster.root).predict(images)
    load = OpenLoop(lambda: registry.load("rayserve-v2-rest", root=cluster.root, endpoints=cluster.endpoints),
                    [images], expected=[expected], rate=RATE, threads=CLIENTS, timeout=30, atol=1e-5)
    load.start()
    try:
        time.sleep(3)
        victim = replicas.running(pid)[0]
        fault(victim)
        hit = time.monotonic()
        assert wait_for(lambda: len(replicas.running(pid)) >= before and victim.pid not in
                        [p.pid for p in replicas.running(pid)], 90), "the replica was not replaced"
        recovered = time.monotonic() - hit
        time.sleep(3)  # the new replica answers its share
    finally:
        result = load.stop(wait=60)
        load.close()
    return result, recovered


def assert_nothing_lost(result: dict) -> None:
    assert result["scheduled"] > 0 and result["in_flight"] == 0, result
    assert (result["reset"], result["timed_out"], result["not_sent"]) == (0, 0, 0), result
    assert result["errors"] <= MOST_FAILED * result["scheduled"], result
    # Kinds read "<outcome>: <kind>": only explicit HTTP errors, the proxy's 5xx or its time-out (408).
    assert all(kind.startswith(("errors: HTTP 5", "errors: HTTP 408")) for kind in result["kinds"]), result["kinds"]
    assert result["answered"] + result["errors"] + result["refused"] == result["scheduled"], result


def test_a_replica_killed_under_load_loses_nothing_and_is_replaced(cluster, images):
    result, recovered = under_load(cluster, images, lambda replica: os.kill(replica.pid, signal.SIGKILL))
    record_load("Ray Serve replica SIGKILLed under load (8 clients)", "rayserve-v2-rest", result,
                replaced_after_s=round(recovered, 1))
    assert_nothing_lost(result)


def test_a_stopped_replica_times_out_into_an_error_and_is_replaced(cluster, images):
    stopped = []

    def stop(replica):
        stopped.append(replica)
        os.kill(replica.pid, signal.SIGSTOP)

    try:
        result, recovered = under_load(cluster, images, stop)
    finally:
        for replica in stopped:  # Serve kills a replica that fails its health checks; if not, this does
            if replica.is_running():
                os.kill(replica.pid, signal.SIGKILL)
    record_load("Ray Serve replica SIGSTOPped under load (8 clients)", "rayserve-v2-rest", result,
                replaced_after_s=round(recovered, 1))
    assert_nothing_lost(result)
    # Serve stops the replica that failed its health checks (a graceful stop first, which it cannot answer,
    # then a kill), once its replacement runs.
    assert wait_for(lambda: gone(stopped[0]), 60), "the stopped replica was left behind"


def gone(process) -> bool:
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_version_published_and_rolled_back_moves_every_replica_without_a_failed_request(cluster, images):
    """make update / make update ACTION=rollback through the replicas: each loads the new version beside the old
    one, then switches; under load every request is answered, every answer names a version."""
    from deploy.local import update
    from serving.kserve import versions

    expected = registry.load("torch-eager", root=cluster.root).predict(images)
    load = OpenLoop(lambda: registry.load("rayserve-v2-rest", root=cluster.root, endpoints=cluster.endpoints),
                    [images], expected=[expected], rate=RATE, threads=CLIENTS, timeout=30, atol=1e-5)
    load.start()
    try:
        assert update.kserve_versions(cluster.root, cluster.endpoints) == {"rayserve-v2-rest": 1}
        assert update.kserve_publish(cluster.root, cluster.endpoints) == 2 and versions.on_disk(cluster.root) == [2]
        time.sleep(2)
        assert update.kserve_rollback(cluster.root, cluster.endpoints) == 1 and versions.on_disk(cluster.root) == []
        time.sleep(2)
    finally:
        result = load.stop(wait=60)
        load.close()
    record_load("Ray Serve: version 2 published, then rolled back, under load (8 clients)", "rayserve-v2-rest",
                result)
    assert result["answered"] == result["scheduled"] > 0 and result["kinds"] == {}, result


def test_a_killed_proxy_is_replaced_within_seconds(cluster):
    """Serve's HTTP proxy SIGKILLed: the controller, checking it every second (cluster.py PROXY_HEALTH; Serve's
    10 s left the port dead ~29 s), starts another on the same port. The bound is generous (2 shared cores);
    the seconds measured are recorded."""
    import requests

    pid = runner.read_pid(runner.run_dir("rayserve", cluster.root)).pid
    ready = f"{cluster.endpoints.url('rayserve_rest')}/v2/models/{cluster.endpoints.model_name}/ready"
    assert requests.get(ready, timeout=5).status_code == 200
    proxy = replicas.titled(pid, replicas.PROXY_TITLE)
    assert len(proxy) == 1, proxy
    os.kill(proxy[0].pid, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: requests.get(ready, timeout=2).status_code == 200, PROXY_BACK_WITHIN_S,
                    ignore=(requests.RequestException,)), f"the model did not answer {PROXY_BACK_WITHIN_S} s on"
    seconds = round(time.monotonic() - killed, 1)
    record("Ray Serve HTTP proxy SIGKILLed", "rayserve-v2-rest", answering_again_after_s=seconds)
    print(f"rayserve: the model answered again {seconds} s after its proxy was killed")
    assert [process.pid for process in replicas.titled(pid, replicas.PROXY_TITLE)] != [proxy[0].pid]
