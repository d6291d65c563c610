"""A worker that stops answering costs its requests seconds, not the model: TorchServe, the TF server, KServe.

Each server of the test's own (tests/integration/own_servers.py) is loaded by the project's load
engine (benchmarks/openloop.py: 40 requests a second from 4 clients, 2 REST and 2 gRPC, each with a
15 s deadline, latency counted from each request's scheduled time); a worker is then made to stop
answering:
- TorchServe: SIGSTOP of one of its two Python workers (a deadlock, a swap storm, a hung handler);
  TorchServe gives up on it after responseTimeout (5 s), answers what it held "Worker died." and
  starts another;
- the TF-Serving-compatible server and KServe's ModelServer are one process each, their "workers"
  model threads: one prediction is made to hang through the test-only stall file
  (serving/watchdog.py); the watchdog answers it 504 / DEADLINE_EXCEEDED after 5 s and replaces it.
Then: no call waited past its deadline, every failure is that explicit error (at least one), the
model answered again while the worker was still stopped, and each answer is the model's. SIGCONT
(or releasing the stall) at the end. `make test` runs the TF server's case; `make faults` all three.
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from benchmarks import openloop
from serving.retry import RetryPolicy
from tests.conftest import wait_for
from tests.faults import record_load
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.concerns("torchserve", "tfserving", "kserve-torch")]
DEADLINE_S = 15.0
FAULT_S = 12.0  # calls go on this long after the fault: the 5 s timeout, the replacement, answers after it
RATE = 40.0  # requests a second from the 4 clients (the load engine's open loop)
STOPPED = f"one of TorchServe's 2 workers SIGSTOPped for {FAULT_S:g} s, {RATE:g} requests/s from 4 clients"
STALLED = f"one prediction thread stuck for {FAULT_S:g} s, {RATE:g} requests/s from 4 clients"
EXPLICIT = {"torchserve": ("Worker died",), "tfserving": ("did not answer within",),
            "kserve": ("did not answer within",)}  # the text of each server's error for a stuck worker


def clients_of(server: str, served) -> itertools.cycle:
    """Makers of `server`'s REST and gRPC clients in turn, each with the 15 s deadline (refusals retried in it)."""
    from serving.kserve.client import KServeTorchGrpc, KServeTorchRest
    from serving.tfserving.client import TFServingGrpc, TFServingRest
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest

    rest, grpc_ = {"torchserve": (TorchServeRest, TorchServeGrpc), "tfserving": (TFServingRest, TFServingGrpc),
                   "kserve": (KServeTorchRest, KServeTorchGrpc)}[server]
    policy = RetryPolicy(deadline=DEADLINE_S)
    return itertools.cycle([lambda kind=kind: kind(served.endpoints, root=served.root, timeout=DEADLINE_S, retry=policy)
                            for kind in (rest, grpc_)])


def load_on(server: str, served, batch: np.ndarray, reference: np.ndarray) -> openloop.OpenLoop:
    """The project's load engine on `server`: 4 client threads, RATE requests a second, every answer checked."""
    makers = clients_of(server, served)
    return openloop.OpenLoop(lambda: next(makers)(), [batch], expected=[reference], rate=RATE, threads=4,
                             timeout=DEADLINE_S, atol=1e-4).start()


def judge(server: str, load: openloop.OpenLoop, answered_after_fault: tuple[int, int], fault: str) -> dict:
    """The assertions every server shares, after recording the counts (tests/faults.py); the counts."""
    result = load.stop()
    load.close()
    before, after = answered_after_fault
    record_load(fault, f"{server} (REST and gRPC)", result, longest_wait_s=round(result["max_ms"] / 1000, 2),
                answered_while_stopped=after - before)
    assert result["in_flight"] == 0 and result["reset"] == 0 and result["not_sent"] == 0, result
    # Latency counts from each request's scheduled time: a request that waited for a free client thread
    # behind a stuck call waited too, and none waited past the deadline.
    assert result["max_ms"] <= DEADLINE_S * 1000 + 500, f"{server}: a request waited past the deadline: {result}"
    failures = {kind: result["examples"][kind] for kind in result["kinds"]}
    vague = {kind: example for kind, example in failures.items() if not any(t in example for t in EXPLICIT[server])}
    assert not vague, f"{server}: failures other than the stuck worker's explicit error: {vague}"
    assert result["failed"] >= 1, f"{server}: no request was answered with the stuck worker's error: {result}"
    assert after > before, f"{server}: nothing answered while the worker was still stopped ({before} -> {after})"
    return {key: result[key] for key in ("scheduled", "answered", "failed", "kinds", "p50_ms", "p99_ms", "max_ms")}


def torchserve_workers(served) -> list[dict]:
    from serving.torchserve.client import read_token

    answer = requests.get(f"{served.endpoints.url('torchserve_management')}/models/{served.endpoints.model_name}",
                          headers={"Authorization": f"Bearer {read_token(served.root, 'management')}"}, timeout=10)
    return answer.json()[0]["workers"]


def state(pid: int) -> str:
    """The process state letter (T: stopped), or "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


@pytest.mark.full_battery
def test_a_stopped_torchserve_worker_costs_seconds(trained_artifacts, tmp_path, test_split):
    batch = test_split.x[:2]
    with own_servers(trained_artifacts, tmp_path, only=("torchserve",)) as served:
        # The runner waits for one worker to answer; the second may still be loading the model.
        assert wait_for(lambda: sum(w["status"] == "READY" for w in torchserve_workers(served)) >= 2, 180), \
            f"two workers never both READY: {torchserve_workers(served)}"
        workers = torchserve_workers(served)
        reference = next(clients_of("torchserve", served))().predict(batch)
        stopped = int(workers[0]["pid"])
        load = load_on("torchserve", served, batch, reference)
        time.sleep(1.0)
        os.kill(stopped, signal.SIGSTOP)
        try:
            time.sleep(6.0)  # past the 5 s response timeout
            before = load.snapshot()["answered"]
            time.sleep(FAULT_S - 6.0)
            # TorchServe kills the stuck worker (SIGKILL ends a stopped process too) and starts another;
            # until here either the stopped one or its replacement was out of service.
            after = load.snapshot()["answered"]
        finally:
            if state(stopped):
                os.kill(stopped, signal.SIGCONT)
        counts = judge("torchserve", load, (before, after), STOPPED)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the replacement comes up beside the other worker
            now = torchserve_workers(served)
            if sum(w["status"] == "READY" for w in now) >= 2 and stopped not in {int(w["pid"]) for w in now}:
                break
            time.sleep(1)
        else:
            pytest.fail(f"TorchServe did not replace the stopped worker {stopped}: {now}")
    print(f"{STOPPED}: {counts}")


KSERVE_IN_FULL = pytest.param("kserve", "kserve-torch", marks=pytest.mark.full_battery)


@pytest.mark.parametrize("server, runner_name", [("tfserving", "tfserving"), KSERVE_IN_FULL])
def test_a_stuck_prediction_thread_costs_seconds(server, runner_name, trained_artifacts, tmp_path, test_split,
                                                 monkeypatch):
    from serving import watchdog

    batch = test_split.x[:2]
    stall = tmp_path / "stall"
    monkeypatch.setenv(watchdog.STALL_FILE, str(stall))  # the server's environment (test-only fault)
    with own_servers(trained_artifacts, tmp_path, only=(runner_name,)) as served:
        reference = next(clients_of(server, served))().predict(batch)
        held = Path(f"{stall}.held")
        load = load_on(server, served, batch, reference)
        time.sleep(1.0)
        stall.touch()  # the next prediction takes it and hangs
        try:
            time.sleep(6.0)  # past the 5 s watchdog
            before = load.snapshot()["answered"]
            time.sleep(FAULT_S - 6.0)
            assert held.exists(), "no prediction took the stall file, or it was let go"
            after = load.snapshot()["answered"]  # the stalled thread still hangs until here
        finally:
            held.unlink(missing_ok=True)
            stall.unlink(missing_ok=True)
        counts = judge(server, load, (before, after), STALLED)
        log = (served.root / "run" / runner_name / "server.log").read_text()
        assert "its thread replaced" in log
        assert len(log) < 1_000_000, "the fault filled the log"
    print(f"{server}, {STALLED}: {counts}")
