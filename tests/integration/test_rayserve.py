"""Ray Serve (serving/rayserve/) on the session's local cluster: replicas, the same V2 answers as KServe, batching,
and a cluster that listens on loopback only, with no dashboard and no job submission API.

The V2 battery (health, metadata, every bad request, pictures, the repository API refused, tritonclient)
runs on this target with KServe's in test_kserve.py; parity, fuzz, bursts and the soak run it with the
others. Killing and stopping a replica under load: test_rayserve_faults.py (a cluster of its own).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from core import registry
from deploy.local import runner
from serving.rayserve import replicas

pytestmark = [pytest.mark.slow, pytest.mark.concerns("rayserve")]
TOLERANCE = 1e-5


def cluster_pid(served) -> int:
    recorded = runner.read_pid(runner.run_dir("rayserve", served.root))
    assert recorded is not None, "the rayserve cluster is not running"
    return recorded.pid


def test_the_cluster_runs_at_least_two_healthy_replicas(served):
    ready = json.loads((served.root / "run" / "rayserve" / "ready.json").read_text())
    assert ready["replicas"] >= 2 and ready["url"] == served.endpoints.url("rayserve_rest")
    assert len(replicas.running(cluster_pid(served))) >= 2


def test_a_v2_client_cannot_tell_it_from_kserve(served, test_split, spec):
    """The same requests to kserve-torch-v2-rest and rayserve-v2-rest: the same answers, field for field."""
    ray, kserve = served.endpoints.url("rayserve_rest"), served.endpoints.url("kserve_torch_rest")
    images = test_split.x[:3].astype(np.float32)
    body = {"id": "request-9", "inputs": [{"name": spec.input_name, "shape": list(images.shape), "datatype": "FP32",
                                           "data": images.ravel().tolist()}]}
    model = f"/v2/models/{spec.model_name}"
    ours, theirs = (requests.post(f"{base}{model}/infer", json=body, timeout=30).json() for base in (ray, kserve))
    data = [answer["outputs"][0].pop("data") for answer in (ours, theirs)]
    assert ours == theirs  # every field but the numbers, which may differ in the last bits when batched
    np.testing.assert_allclose(data[0], data[1], atol=TOLERANCE)
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", model, f"{model}/ready"):
        answers = [requests.get(f"{base}{path}", timeout=30) for base in (ray, kserve)]
        assert answers[0].json() == answers[1].json() and answers[0].status_code == 200, path
    bad = {"inputs": [{**body["inputs"][0], "shape": [2, *spec.item_shape]}]}
    for path, request in ((f"{model}/infer", bad), ("/v2/models/nope/infer", body)):
        ray_answer = requests.post(f"{ray}{path}", json=request, timeout=30)
        kserve_answer = requests.post(f"{kserve}{path}", json=request, timeout=30)
        assert (ray_answer.status_code, ray_answer.json()) == (kserve_answer.status_code, kserve_answer.json()), path


def test_requests_batched_together_each_get_their_own_rows(served, server_clients, test_split):
    """Many clients at once (batched by @serve.batch on each replica): every request gets its own images' answers."""
    reference = registry.load(registry.REFERENCES["torch"], root=served.root)
    batches = [test_split.x[i:i + 1 + i % 3] for i in range(24)]
    client = server_clients["rayserve-v2-rest"]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda batch: registry.load("rayserve-v2-rest", root=served.root,
                                                            endpoints=served.endpoints).predict(batch), batches))
    for batch, answer in zip(batches, answers, strict=True):
        np.testing.assert_allclose(answer, reference.predict(batch), atol=TOLERANCE)
    assert client.model_ready()


def test_loopback_only_and_no_job_api_on_any_listener(served):
    """Every listener of the cluster on loopback (test_kserve.py walks every server's listeners too), Serve's
    proxy among them, and none of them answers Ray's job submission API (the dashboard's, or its agent's:
    it runs code for whoever reaches it, CVE-2023-48022)."""
    import ipaddress

    import psutil

    listeners = set()
    for process in replicas.cluster(cluster_pid(served)):
        try:
            listeners |= {c.laddr for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    assert served.endpoints.ports["rayserve_rest"] in {address.port for address in listeners}
    for address in listeners:
        ip = ipaddress.ip_address(address.ip)
        assert (ip.ipv4_mapped or ip if ip.version == 6 else ip).is_loopback, f"listens on {address.ip}:{address.port}"
        for path in ("/api/jobs/", "/api/job_agent/jobs/"):
            try:
                answer = requests.get(f"http://127.0.0.1:{address.port}{path}", timeout=5)
            except requests.RequestException:  # not HTTP (gRPC, Ray's own protocols)
                continue
            if answer.status_code == 200:  # a Prometheus exporter answers its metrics to every path
                assert answer.text.startswith("# HELP"), (address.port, path, answer.text[:200])
            else:  # the dashboard agent's API asks for the cluster's token (Ray 2.60 turns token auth on)
                assert answer.status_code in (401, 403, 404, 405), (address.port, path, answer.status_code)
