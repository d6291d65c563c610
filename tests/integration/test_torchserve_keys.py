"""A TorchServe left running never refuses its own clients when its keys expire.

TorchServe of this module's own, with keys that expire soon (TorchServe's token_expiration_min: 15 s;
a minute under `make faults`): REST and gRPC clients call once a second for two and a half lifetimes,
past the second expiry of the keys it started with. Every call
is answered (0 refused), the key file stays readable by its owner only, the keys were renewed more
than once, and the first key is refused by then (it was really replaced, not kept alive).
"""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from deploy.local import runner
from deploy.local.settings import ServerSettings
from tests.conftest import built, copy_trained, free_endpoints
from tests.faults import battery, record

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.concerns("torchserve")]
LIFETIME_S = battery(15, 60)  # token_expiration_min (TorchServe reads a fraction of a minute too)
CALLING_S = 2.5 * LIFETIME_S  # past the second expiry of the first keys
RENEWALS = 3  # each key renewed at least this often (at half its lifetime) while the calls went on


@pytest.fixture(scope="module")
def short_keys(trained_artifacts, tmp_path_factory):
    root = built(copy_trained(trained_artifacts, tmp_path_factory.mktemp("torchserve-keys") / "artifacts"),
                 "export-torchserve")
    endpoints = free_endpoints().for_root(root)
    settings = ServerSettings(name="short-lived-keys", torchserve_config={"token_expiration_min": LIFETIME_S / 60})
    try:
        runner.start(root, endpoints, settings=settings, only=("torchserve",), timeout=300)
        yield root, endpoints
    finally:
        runner.stop(root)


def calls_every_second(client, batch, seconds: float) -> dict:
    """Call once a second for `seconds`; every outcome counted (an answer with the right shape, or the error)."""
    outcomes = {"answered": 0, "failed": []}
    began = time.monotonic()
    deadline = began + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            probabilities = client.predict(batch)
            assert probabilities.shape == (len(batch), probabilities.shape[1])
            outcomes["answered"] += 1
        except Exception as error:  # noqa: BLE001 (every failure is the finding)
            outcomes["failed"].append(f"at {time.monotonic() - began:.1f} s, {type(error).__name__}: {error}")
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    return outcomes


def test_calls_across_two_key_expiries_are_all_answered(short_keys, test_split):
    from serving.retry import NO_RETRY
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest, read_token, run_dir

    root, endpoints = short_keys
    key_file = run_dir(root) / "key_file.json"
    first_key = read_token(root, "inference")
    # No retries: a refused key must not be hidden behind the overload retries.
    clients = {"rest": TorchServeRest(endpoints, root=root, retry=NO_RETRY),
               "grpc": TorchServeGrpc(endpoints, root=root, retry=NO_RETRY)}
    results = {}
    threads = [threading.Thread(target=lambda n=name, c=client: results.__setitem__(
        n, calls_every_second(c, test_split.x[:2], CALLING_S))) for name, client in clients.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clients["grpc"].close()

    renewals = (runner.run_dir("torchserve", root) / "server.log").read_text().count("keys: renewed the inference key")
    for name, outcome in results.items():
        record(f"TorchServe keys expiring every minute, calls each second for {CALLING_S:g} s", f"torchserve-{name}",
               calls=outcome["answered"] + len(outcome["failed"]), answered=outcome["answered"],
               refused=len(outcome["failed"]), key_renewals=renewals)
    for name, outcome in results.items():
        assert outcome["failed"] == [], f"{name}: {len(outcome['failed'])} refused or failed: {outcome['failed'][:3]}"
        assert outcome["answered"] >= CALLING_S * 0.5, f"{name}: only {outcome['answered']} calls in {CALLING_S} s"
    assert key_file.stat().st_mode & 0o777 == 0o600
    log = (runner.run_dir("torchserve", root) / "server.log").read_text()
    assert log.count("keys: renewed the inference key") >= RENEWALS  # at 1/2, 1, 3/2, 2 lifetimes
    assert log.count("keys: renewed the management key") >= RENEWALS
    # The key it started with is gone: without the renewals every call after its lifetime was refused.
    answer = requests.post(f"{endpoints.url('torchserve_inference')}/predictions/{endpoints.model_name}",
                           json={"instances": test_split.x[:1].tolist()},
                           headers={"Authorization": f"Bearer {first_key}"}, timeout=30)
    assert answer.status_code == 400 and "Token Authorization failed" in answer.json()["message"]
    assert json.loads(key_file.read_text())["inference"]["key"] != first_key
