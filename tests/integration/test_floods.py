"""Floods of half-sent connections: more than the server has open files for, and 20,000 against the default server.

The TF-Serving-compatible server (REST and gRPC) of the test's own, and the page server, run with
an open-file limit of OPEN_FILES (prlimit / setrlimit), and benchmarks/flood.py opens more
half-sent connections than that on each listener (REST: headers never finished; gRPC: half the
HTTP/2 preface). Meanwhile normal clients (the project's own, retrying refusals within a 15 s
deadline, driven by the load engine, benchmarks/openloop.py) call: every call is answered with the
model's answer within the deadline, the log stays small (no line per failed accept), and the
server closes every half-sent connection within seconds (its header or handshake timeout). The
default server (no lowered limit) is flooded with 5,000, and 20,000 under `make faults`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from benchmarks import flood, openloop
from serving.retry import RetryPolicy, call_with_retry
from tests.faults import battery, record_load
from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.fault, pytest.mark.concerns("tfserving", "browser")]
OPEN_FILES = 256
HALF_SENT = 300  # per listener: more than OPEN_FILES
HOLD_S = 18.0  # the flood is watched this long: the header timeout (10 s) and the handshake timeout (5 s) fit
CLOSED_WITHIN_S = 13.0  # every half-sent connection closed by the server within this long of opening
LOG_GROWTH = 50_000  # bytes the server's log may grow by during a flood (it grew 285 MB in 45 s before)
DEADLINE_S = 15.0
RATE = 5.0  # requests a second of each normal client kind during a flood
# The flood against the default server: (half-sent connections, seconds watched, closed within seconds).
# 20,000 connect faster than one Python process accepts them: they wait in the kernel's accept queue
# first, and the header timeout counts from accept, so closing takes longer than 10 s there.
DEFAULT_FLOOD = battery((5_000, 25.0, 25.0), (20_000, 40.0, 40.0))


def limited(trained_artifacts, tmp_path, monkeypatch, open_files: int | None):
    """Our TF server (only it) over a copy of the trained model, under `open_files` when given."""
    from deploy.local import servers

    if open_files is not None:
        original = servers.tfserving

        def under_limit(*args, **kwargs):
            server = original(*args, **kwargs)
            server.command = ["prlimit", f"--nofile={open_files}:{open_files}", *server.command]
            return server

        monkeypatch.setattr(servers, "tfserving", under_limit)
    return own_servers(trained_artifacts, tmp_path, only=("tfserving",))


def steady(make_client, batch: np.ndarray, reference: np.ndarray) -> openloop.OpenLoop:
    """The project's load engine at RATE requests a second on one kind of client, connected (and warmed) now."""
    return openloop.OpenLoop(make_client, [batch], expected=[reference], rate=RATE, threads=2,
                             timeout=DEADLINE_S).connect(warm=True)


def flooded(floods: list[tuple[int, str, int]], loads: dict, processes: int = 1,
            hold_s: float = HOLD_S) -> tuple[list, dict]:
    """Run the floods (port, kind, count) and, once they are open, the loads ({name: OpenLoop});
    (flood reports, load results)."""
    with ThreadPoolExecutor(len(floods)) as pool:
        reports = [pool.submit(flood.flood, "127.0.0.1", port, count, kind, hold_s, processes)
                   for port, kind, count in floods]
        time.sleep(2.0)  # the floods are open before the load starts
        for load in loads.values():
            load.start()
        reports = [report.result() for report in reports]
    results = {name: load.stop() for name, load in loads.items()}
    for load in loads.values():
        load.close()
    return reports, results


def judge(fault: str, reports: list, results: dict, log_growth: int, expect_connections: int,
          closed_within_s: float = CLOSED_WITHIN_S) -> None:
    """The assertions every flood shares, after recording the counts (tests/faults.py)."""
    flood_counts = {f"{r['kind']}_half_sent": r["connections"] for r in reports}
    flood_counts |= {f"{r['kind']}_half_sent_closed_within_s": r["closed_within_s"] for r in reports}
    for name, result in results.items():
        record_load(fault, name, result, longest_wait_s=round(result["max_ms"] / 1000, 2), log_growth_bytes=log_growth,
                    **flood_counts)
    for name, result in results.items():
        assert result["failed"] == 0, f"{name}: {result['failed']} calls failed: {result['examples']}"
        assert result["answered"] >= 20, f"{name}: only {result['answered']} calls answered during the flood"
        assert result["max_ms"] <= DEADLINE_S * 1000, f"{name}: {result}"
    for report in reports:
        assert report["connections"] + report["could_not_connect"] >= expect_connections, f"{report}"
        assert report["still_open"] == 0, f"half-sent connections left open after {report['seconds']:g} s: {report}"
        assert report["closed_within_s"] <= closed_within_s, f"closed too late: {report}"
    assert log_growth < LOG_GROWTH, f"the log grew {log_growth:,} bytes during the flood"


def answered(results: dict) -> dict:
    return {name: {key: result[key] for key in ("answered", "failed", "p50_ms", "max_ms")}
            for name, result in results.items()}


class FreshGrpc:
    """A TF Serving gRPC client that opens a new connection for every call (made while the flood holds the port)."""

    def __init__(self, served):
        self.served, self.timeout = served, DEADLINE_S

    def predict(self, batch: np.ndarray) -> np.ndarray:
        from serving.tfserving.client import TFServingGrpc

        client = TFServingGrpc(self.served.endpoints, root=self.served.root, timeout=self.timeout,
                               retry=RetryPolicy(deadline=DEADLINE_S))
        try:
            return client.predict(batch)
        finally:
            client.close()


class PageFetch:
    """GET / of the page server as the load engine's client: [[1.0]] when the page came back whole."""

    def __init__(self, url: str):
        self.url, self.timeout, self.session = url, DEADLINE_S, requests.Session()

    def predict(self, batch) -> np.ndarray:
        answer = call_with_retry(lambda left: self.session.get(self.url, timeout=min(left, self.timeout)),
                                 RetryPolicy(deadline=DEADLINE_S))
        if answer.status_code != 200 or not answer.text.startswith("<!doctype html>"):
            raise openloop.WrongAnswer(f"HTTP {answer.status_code}: {answer.text[:80]}")
        return np.ones((1, 1), np.float32)


def test_tf_server_outlasts_more_half_sent_connections_than_open_files(trained_artifacts, tmp_path, monkeypatch,
                                                                       test_split):
    from serving.tfserving.client import TFServingGrpc, TFServingRest

    batch = test_split.x[:2]
    with limited(trained_artifacts, tmp_path, monkeypatch, OPEN_FILES) as served:
        policy = RetryPolicy(deadline=DEADLINE_S)
        reference = TFServingRest(served.endpoints, root=served.root).predict(batch)
        loads = {  # REST and gRPC clients connected before the flood, and gRPC connecting during it
            "tfserving-rest": steady(lambda: TFServingRest(served.endpoints, root=served.root, retry=policy), batch,
                                     reference),
            "tfserving-grpc": steady(lambda: TFServingGrpc(served.endpoints, root=served.root, retry=policy), batch,
                                     reference),
            "tfserving-grpc (a new connection each call)": steady(lambda: FreshGrpc(served), batch, reference)}
        log = served.root / "run" / "tfserving" / "server.log"
        before = log.stat().st_size
        ports = served.endpoints.ports
        floods = [(ports["tfserving_rest"], "rest", HALF_SENT), (ports["tfserving_grpc"], "grpc", HALF_SENT)]
        reports, results = flooded(floods, loads)
        judge(f"{HALF_SENT} half-sent connections on REST and on gRPC, {OPEN_FILES} open files", reports, results,
              log.stat().st_size - before, HALF_SENT)
        print(f"TF server under {OPEN_FILES} open files: floods {reports}; normal clients {answered(results)}")


def test_page_server_outlasts_more_half_sent_connections_than_open_files(tmp_path):
    import resource

    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>Draw a digit</title>")
    log = tmp_path / "page.log"
    code = ("import sys, time\nfrom pathlib import Path\nfrom web.tfjs import serve\n"
            "with serve.serving(serve.make_app(Path(sys.argv[1]))) as url:\n    print(url, flush=True)\n"
            "    time.sleep(3600)\n")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    with open(log, "wb") as err:
        page = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, stderr=err,
                                text=True, preexec_fn=low_limit)
        try:
            url = page.stdout.readline().strip()
            port = int(url.rsplit(":", 1)[1].strip("/"))
            load = steady(lambda: PageFetch(url), np.zeros((1, 1)), np.ones((1, 1), np.float32))
            reports, results = flooded([(port, "rest", HALF_SENT)], {"web page server": load})
        finally:
            page.terminate()
            page.wait(timeout=30)
    judge(f"{HALF_SENT} half-sent connections, {OPEN_FILES} open files", reports, results, log.stat().st_size,
          HALF_SENT)
    print(f"page server under {OPEN_FILES} open files: flood {reports}; normal clients {answered(results)}")


@pytest.mark.timeout(1200)
def test_a_flood_of_half_sent_connections_against_the_default_server(trained_artifacts, tmp_path, monkeypatch,
                                                                     test_split):
    """The machine's open-file limit is 20,000: two flooding processes hold up to 10,000 each."""
    from serving.tfserving.client import TFServingRest

    batch = test_split.x[:2]
    with limited(trained_artifacts, tmp_path, monkeypatch, None) as served:
        reference = TFServingRest(served.endpoints, root=served.root).predict(batch)
        load = steady(lambda: TFServingRest(served.endpoints, root=served.root, retry=RetryPolicy(deadline=DEADLINE_S)),
                      batch, reference)
        log = served.root / "run" / "tfserving" / "server.log"
        before = log.stat().st_size
        count, hold_s, closed_within_s = DEFAULT_FLOOD
        reports, results = flooded([(served.endpoints.ports["tfserving_rest"], "rest", count)],
                                   {"tfserving-rest": load},
                                   processes=2, hold_s=hold_s)
        judge(f"{count:,} half-sent REST connections, default limits", reports, results, log.stat().st_size - before,
              count, closed_within_s=closed_within_s)
        print(f"TF server, default limits: flood {reports}; normal clients {answered(results)}")
