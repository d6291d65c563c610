"""A worker that stops answering costs its requests seconds, not the model: TorchServe, the TF server, KServe.

Each server of the test's own (tests/integration/own_servers.py) is called by 4 clients (2 REST,
2 gRPC) with a 15 s deadline, one request after another; a worker is then made to stop answering:
- TorchServe: SIGSTOP of one of its two Python workers (a deadlock, a swap storm, a hung handler);
  TorchServe gives up on it after responseTimeout (5 s), answers what it held "Worker died." and
  starts another;
- the TF-Serving-compatible server and KServe's ModelServer are one process each, their "workers"
  model threads: one prediction is made to hang through the test-only stall file
  (serving/watchdog.py); the watchdog answers it 504 / DEADLINE_EXCEEDED after 5 s and replaces it.
Then: no call waited past its deadline, every failure is that explicit error (at least one), the
model answered again while the worker was still stopped, and each answer is the model's. SIGCONT
(or releasing the stall) at the end.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from serving.retry import RetryPolicy
from tests.conftest import wait_for
from tests.integration.own_servers import own_servers

pytestmark = pytest.mark.slow
DEADLINE_S = 15.0
FAULT_S = 12.0  # calls go on this long after the fault: the 5 s timeout, the replacement, answers after it
EXPLICIT = {"torchserve": ("Worker died",), "tfserving": ("did not answer within",),
            "kserve": ("did not answer within",)}  # the text of each server's error for a stuck worker


def clients_of(server: str, served):
    """Two REST and two gRPC clients of `server`, each with the 15 s deadline (retries of refusals inside it)."""
    from serving.kserve.client import KServeTorchGrpc, KServeTorchRest
    from serving.tfserving.client import TFServingGrpc, TFServingRest
    from serving.torchserve.client import TorchServeGrpc, TorchServeRest

    rest, grpc_ = {"torchserve": (TorchServeRest, TorchServeGrpc), "tfserving": (TFServingRest, TFServingGrpc),
                   "kserve": (KServeTorchRest, KServeTorchGrpc)}[server]
    policy = RetryPolicy(deadline=DEADLINE_S)
    return [kind(served.endpoints, root=served.root, timeout=DEADLINE_S, retry=policy)
            for kind in (rest, rest, grpc_, grpc_)]


class Calls:
    """Clients calling one after another until stopped; each call's start, seconds and outcome."""

    def __init__(self, clients, batch: np.ndarray):
        self.clients, self.batch, self.stop = clients, batch, threading.Event()
        self.records: list[tuple[float, float, object]] = []  # (start, seconds, probabilities or error text)
        self.threads = [threading.Thread(target=self._loop, args=(c,), daemon=True) for c in clients]

    def _loop(self, client) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                outcome = client.predict(self.batch)
            except Exception as error:  # noqa: BLE001 (every failure is recorded and judged below)
                outcome = f"{type(error).__name__}: {error}"
            self.records.append((start, time.monotonic() - start, outcome))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=DEADLINE_S + 5)
        for client in self.clients:
            if hasattr(client, "close"):
                client.close()


def judge(server: str, calls: Calls, fault_at: float, recovered_by: float, reference: np.ndarray) -> dict:
    """The assertions every server shares; returns the counts for the report."""
    slow = [(round(seconds, 1), outcome) for _, seconds, outcome in calls.records if seconds > DEADLINE_S + 0.5]
    assert not slow, f"{server}: {len(slow)} calls waited past the {DEADLINE_S:g} s deadline: {slow[:3]}"
    failures = [outcome for _, _, outcome in calls.records if isinstance(outcome, str)]
    vague = [f for f in failures if not any(text in f for text in EXPLICIT[server])]
    assert not vague, f"{server}: failures other than the stuck worker's explicit error: {vague[:3]}"
    assert failures, f"{server}: no request was answered with the stuck worker's error (was it ever given one?)"
    answers = [outcome for _, _, outcome in calls.records if not isinstance(outcome, str)]
    for answer in answers:  # the model's own answers, whichever worker gave them
        np.testing.assert_allclose(answer, reference, rtol=1e-4, atol=1e-5)
    after = [start for start, _, outcome in calls.records if not isinstance(outcome, str) and start > fault_at + 1]
    assert any(start <= recovered_by for start in after), \
        f"{server}: no request started after the fault was answered while the worker was still stopped"
    return {"calls": len(calls.records), "answered": len(answers), "explicit errors": len(failures),
            "longest_s": round(max(seconds for _, seconds, _ in calls.records), 2)}


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


def test_a_stopped_torchserve_worker_costs_seconds(trained_artifacts, tmp_path, test_split):
    batch = test_split.x[:2]
    with own_servers(trained_artifacts, tmp_path, only=("torchserve",)) as served:
        # The runner waits for one worker to answer; the second may still be loading the model.
        assert wait_for(lambda: sum(w["status"] == "READY" for w in torchserve_workers(served)) >= 2, 180), \
            f"two workers never both READY: {torchserve_workers(served)}"
        workers = torchserve_workers(served)
        reference = clients_of("torchserve", served)[0].predict(batch)
        stopped = int(workers[0]["pid"])
        with Calls(clients_of("torchserve", served), batch) as calls:
            time.sleep(1.0)
            fault_at = time.monotonic()
            os.kill(stopped, signal.SIGSTOP)
            try:
                time.sleep(FAULT_S)
                # TorchServe kills the stuck worker (SIGKILL works on a stopped process) and starts another:
                # "still stopped" is until now, whichever of the two it is.
                recovered_by = time.monotonic()
            finally:
                if state(stopped):
                    os.kill(stopped, signal.SIGCONT)
        counts = judge("torchserve", calls, fault_at, recovered_by, reference)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the replacement comes up beside the other worker
            now = torchserve_workers(served)
            if sum(w["status"] == "READY" for w in now) >= 2 and stopped not in {int(w["pid"]) for w in now}:
                break
            time.sleep(1)
        else:
            pytest.fail(f"TorchServe did not replace the stopped worker {stopped}: {now}")
    print(f"torchserve, one of 2 workers SIGSTOPped for {FAULT_S:g} s under 4 clients: {counts}")


@pytest.mark.parametrize("server, runner_name", [("tfserving", "tfserving"), ("kserve", "kserve-torch")])
def test_a_stuck_prediction_thread_costs_seconds(server, runner_name, trained_artifacts, tmp_path, test_split,
                                                 monkeypatch):
    from serving import watchdog

    batch = test_split.x[:2]
    stall = tmp_path / "stall"
    monkeypatch.setenv(watchdog.STALL_FILE, str(stall))  # the server's environment (test-only fault)
    with own_servers(trained_artifacts, tmp_path, only=(runner_name,)) as served:
        reference = clients_of(server, served)[0].predict(batch)
        held = Path(f"{stall}.held")
        with Calls(clients_of(server, served), batch) as calls:
            time.sleep(1.0)
            fault_at = time.monotonic()
            stall.touch()  # the next prediction takes it and hangs
            try:
                time.sleep(FAULT_S)
                assert held.exists(), "no prediction took the stall file"
                recovered_by = time.monotonic()  # the stalled thread still hangs until here
            finally:
                held.unlink(missing_ok=True)
                stall.unlink(missing_ok=True)
        counts = judge(server, calls, fault_at, recovered_by, reference)
        log = (served.root / "run" / runner_name / "server.log").read_text()
        assert "its thread replaced" in log
        assert len(log) < 1_000_000, "the fault filled the log"
    print(f"{server}, one prediction thread stuck for {FAULT_S:g} s under 4 clients: {counts}")
