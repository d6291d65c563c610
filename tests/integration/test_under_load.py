"""Faults and model updates under load, on servers of this module's own: a killed TorchServe worker,
a restarted server, a new version published to both servers and rolled back.

An open-loop load (benchmarks/openloop.py) sends predictions through the project's clients (with
their retries) while the fault happens; every scheduled request must end as an answer or an
explicit, counted outcome, none left in flight, and good answers must flow again afterwards. The
counts are printed (`pytest -s`) for the record.
"""
from __future__ import annotations

import os
import signal

import pytest
import requests

from benchmarks.openloop import OUTCOMES, OpenLoop
from core import spec as specs
from serving.retry import RetryPolicy
from tests.conftest import wait_for
from tests.faults import record_load
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.concerns("servers")]
RATE = 10.0  # requests/s per endpoint: steady traffic one client thread keeps up with on a busy 2-core machine
# Long enough to ride out a server restart (the compatible server takes ~10 s to load TensorFlow).
PATIENT = RetryPolicy(attempts=60, backoff=0.1, max_backoff=1.0, deadline=120.0)


@pytest.fixture(scope="module")
def servers(trained_artifacts, tmp_path_factory):
    with own_servers(trained_artifacts, tmp_path_factory.mktemp("faults")) as served:
        yield served


@pytest.fixture(scope="module")
def images(servers):
    from core import paths
    from training import data

    return data.load_split(paths.split_path(servers.root))["test"].x[:4]


def workers(served) -> list[dict]:
    from serving.torchserve.client import read_token

    headers = {"Authorization": f"Bearer {read_token(served.root, 'management')}"}
    url = f"{served.endpoints.url('torchserve_management')}/models/{served.endpoints.model_name}"
    return requests.get(url, headers=headers, timeout=10).json()[0]["workers"]




def steady(make_client, images, expected, threads: int) -> OpenLoop:
    return OpenLoop(make_client, [images], expected=[expected], rate=RATE, threads=threads)


def report(title: str, loads: dict) -> dict:
    counts = {name: load.stop() for name, load in loads.items()}
    print(f"\n{title}:")
    for name, numbers in counts.items():
        print(f"  {name:<16} {numbers}")
        record_load(title, name, numbers)
        # every scheduled request ended as exactly one outcome, none still in flight
        assert numbers["in_flight"] == 0 and numbers["scheduled"] == sum(numbers[o] for o in OUTCOMES), numbers
    return counts



def test_a_killed_torchserve_worker_is_replaced_and_every_request_ends(servers, images):
    from edge.eager import TorchEagerPredictor
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest

    expected = TorchEagerPredictor(servers.root).predict(images)
    loads = {
        "torchserve-rest": steady(lambda: TorchServeRest(servers.endpoints, root=servers.root), images, expected, 2),
        "torchserve-grpc": steady(lambda: TorchServeGrpc(servers.endpoints, root=servers.root), images, expected, 1),
    }
    for load in loads.values():
        load.start()
    assert wait_for(lambda: all(load.snapshot()['answered'] >= 5 for load in loads.values()), 30)
    # Two workers (config.properties): the second may still be loading when the runner calls it ready.
    assert wait_for(lambda: sum(w["status"] == "READY" for w in workers(servers)) >= 2, 120)
    before = workers(servers)[0]
    os.kill(before["pid"], signal.SIGKILL)  # one Python worker; TorchServe's Java front and the other worker stay

    def replaced() -> bool:
        now = workers(servers)
        return before["pid"] not in {w["pid"] for w in now} and sum(w["status"] == "READY" for w in now) >= 2

    assert wait_for(replaced, 90, ignore=(requests.RequestException, KeyError, IndexError, ValueError))
    ok_when_replaced = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_when_replaced[name] + 5
                                for name, load in loads.items()), 30)
    counts = report(f"worker {before['pid']} killed during load", loads)
    for name, numbers in counts.items():
        # Only requests the worker held when it died fail, explicitly: TorchServe answers them
        # "Worker died." (HTTP 507, gRPC RESOURCE_EXHAUSTED). The clients do not retry those: only
        # connection errors and overload refusals are retried (serving/retry.py). No wrong answer.
        assert set(numbers["kinds"]) <= {"errors: HTTP 507", "errors: RESOURCE_EXHAUSTED"}, numbers
        assert numbers["failed"] <= loads[name].threads, numbers
        assert all("Worker died." in example for example in numbers["examples"].values()), numbers


def test_clients_ride_out_a_tfserving_restart(servers, images):
    import keras

    from core import manifest
    from deploy.local import runner
    from serving.tfserving.client import TFServingGrpc, TFServingRest

    expected = keras.models.load_model(manifest.verify("keras_model", servers.root)).predict(images, verbose=0)
    loads = {
        "tfserving-grpc": steady(lambda: TFServingGrpc(servers.endpoints, retry=PATIENT), images, expected, 1),
        "tfserving-rest": steady(lambda: TFServingRest(servers.endpoints, retry=PATIENT), images, expected, 1),
    }
    for load in loads.values():
        load.start()
    assert wait_for(lambda: all(load.snapshot()['answered'] >= 5 for load in loads.values()), 30)
    assert runner.stop_one("tfserving", servers.root)
    runner.start(servers.root, servers.endpoints, only=("tfserving",))  # TorchServe and KServe are still up
    ok_after_restart = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_after_restart[name] + 5
                                for name, load in loads.items()), 60)
    counts = report("TF Serving stopped and started again during load", loads)
    for name, numbers in counts.items():
        # Requests sent while the server was down were retried until it was back. One caught inside
        # the stopping server's gRPC shutdown can end CANCELLED (not retried: the clients retry only
        # what says "not processed"), explicitly and counted. No wrong answer, nothing left unsent.
        assert set(numbers["kinds"]) <= {"reset: CANCELLED"} and numbers["failed"] <= 1, (name, numbers)


def test_publish_and_roll_back_a_version_under_load_without_a_failed_request(servers, images):
    """Version 2 goes live on both servers while all four endpoints are under load, then back to 1."""
    import keras

    from core import manifest
    from deploy.local import update
    from edge.eager import TorchEagerPredictor
    from serving.tfserving.client import TFServingGrpc, TFServingRest
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest

    torch_expected = TorchEagerPredictor(servers.root).predict(images)
    keras_expected = keras.models.load_model(manifest.verify("keras_model", servers.root)).predict(images, verbose=0)
    ep, root = servers.endpoints, servers.root
    loads = {
        "torchserve-rest": steady(lambda: TorchServeRest(ep, root=root), images, torch_expected, 1),
        "torchserve-grpc": steady(lambda: TorchServeGrpc(ep, root=root), images, torch_expected, 1),
        "tfserving-grpc": steady(lambda: TFServingGrpc(ep), images, keras_expected, 1),
        "tfserving-rest": steady(lambda: TFServingRest(ep), images, keras_expected, 1),
    }
    for load in loads.values():
        load.start()
    assert wait_for(lambda: all(load.snapshot()['answered'] >= 5 for load in loads.values()), 30)
    torchserve = update.TorchServeVersions(root, ep)
    before = update.served_versions(ep)

    assert update.tfserving_publish(root, ep) == before[-1] + 1
    assert torchserve.publish() == "2.0"
    assert update.served_versions(ep) == [before[-1] + 1]
    assert [(v["version"], v["default"], v["ready"]) for v in torchserve.versions()] == [("1.0", False, True),
                                                                                         ("2.0", True, True)]
    probe = TFServingGrpc(ep, root=root).predict_tensors({specs.load(root).input_name: images})
    assert probe.model_spec.version.value == before[-1] + 1  # the answer names the version that gave it
    ok_on_v2 = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_on_v2[name] + 5 for name, load in loads.items()), 30)

    assert update.tfserving_rollback(root, ep) == before[-1]
    assert torchserve.rollback() == "1.0"
    assert update.served_versions(ep) == before
    assert [(v["version"], v["default"]) for v in torchserve.versions()] == [("1.0", True)]
    ok_on_v1 = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_on_v1[name] + 5
                                for name, load in loads.items()), 30), \
        {name: (ok_on_v1[name], load.snapshot()) for name, load in loads.items()}

    counts = report("version 2 published, then rolled back, during load", loads)
    for name, numbers in counts.items():
        assert numbers["answered"] == numbers["scheduled"] and numbers["kinds"] == {}, (name, numbers)


def test_kserve_publishes_and_rolls_back_a_version_under_load_without_a_failed_request(servers, images):
    """Both KServe servers move to version 2 while their four V2 endpoints are under load, then back to 1;
    every answer names the version that gave it."""
    import numpy as np

    from deploy.local import update
    from edge.eager import KerasEagerPredictor, TorchEagerPredictor
    from serving.kserve import versions
    from serving.kserve.client import KServeTfGrpc, KServeTfRest, KServeTorchGrpc, KServeTorchRest

    ep, root = servers.endpoints, servers.root
    expected = {"torch": TorchEagerPredictor(root).predict(images),
                "tensorflow": KerasEagerPredictor(root).predict(images)}
    clients = {cls.name: cls for cls in (KServeTorchRest, KServeTorchGrpc, KServeTfRest, KServeTfGrpc)}
    loads = {name: OpenLoop(lambda cls=cls: cls(ep, root=root), [images], expected=[expected[cls.framework]], rate=RATE,
                            threads=1, atol=1e-5) for name, cls in clients.items()}
    for load in loads.values():
        load.start()
    assert wait_for(lambda: all(load.snapshot()['answered'] >= 5 for load in loads.values()), 30)
    assert update.kserve_versions(root, ep) == {"kserve-torch-v2-rest": 1, "kserve-tf-v2-rest": 1}

    assert update.kserve_publish(root, ep) == 2 and versions.on_disk(root) == [2]
    grpc_client = KServeTorchGrpc(ep, root=root)
    assert grpc_client.infer(grpc_client.request(images)).model_version == "2"  # gRPC answers name it too
    np.testing.assert_allclose(grpc_client.predict(images), expected["torch"], atol=1e-5)
    grpc_client.close()
    ok_on_v2 = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_on_v2[name] + 5 for name, load in loads.items()), 30)

    assert update.kserve_rollback(root, ep) == 1 and versions.on_disk(root) == []
    assert set(update.kserve_versions(root, ep).values()) == {1}
    ok_on_v1 = {name: load.snapshot()['answered'] for name, load in loads.items()}
    assert wait_for(lambda: all(load.snapshot()['answered'] >= ok_on_v1[name] + 5 for name, load in loads.items()), 30)
    with pytest.raises(FileNotFoundError, match="nothing to roll back to"):
        versions.retire(root)

    counts = report("KServe: version 2 published, then rolled back, during load", loads)
    for name, numbers in counts.items():
        assert numbers["answered"] == numbers["scheduled"] and numbers["kinds"] == {}, (name, numbers)
