"""A few seconds of each load tool against the live servers: well-formed results, no errors.

The figures themselves are benchmarks (`make loadtest-sweep`); here only their shape is held:
every scheduled request accounted for, percentiles ordered, zero errors, Locust's statistics read.
"""
from __future__ import annotations

import json

import pytest

from benchmarks import openloop
from benchmarks.locust import run as locust_run

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]


def assert_well_formed(result: dict) -> None:
    assert result["failed"] == 0, result["kinds"]
    assert result["achieved_rps"] > 0 and result["n"] == result["answered"]
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    # every scheduled request ended as exactly one outcome
    assert result["in_flight"] == 0 and result["scheduled"] == sum(result[o] for o in openloop.OUTCOMES)
    assert 0 <= result["generator"]["cpu_share"] and result["generator"]["cores_allowed"] >= 1


def test_open_loop_run_writes_every_scheduled_request(served, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(served.root))
    for name, value in served.endpoints.as_environment().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "load-run.json"
    result = openloop.main(["--target", "tfserving-grpc", "--rate", "30", "--seconds", "2", "--threads", "4",
                            "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["target"] == "tfserving-grpc" and result["offered_rps"] == 30
    assert result["answered"] == result["scheduled"] > 20  # 60 expected, Poisson
    assert result["machine"]["cpus"] >= 1 and result["command"].startswith("python -m benchmarks openloop")
    assert_well_formed(result)


def test_open_loop_on_torchserve_rest(served, test_split, spec):
    from deploy.local import runner

    make = openloop.predictor_factory("torchserve-rest", served.root, served.endpoints)
    pid = runner.read_pid(runner.run_dir("torchserve", served.root)).pid
    result = openloop.run(make, test_split.x[:8], spec.num_classes, rate=20, seconds=2, threads=4,
                          servers={"torchserve": pid})
    assert result["answered"] == result["scheduled"]
    assert_well_formed(result)
    assert result["servers_cpu_cores"]["torchserve"] > 0  # the server's process tree worked for its answers


def test_locust_headless_run_reports_statistics(served):
    result = locust_run.run("torchserve-grpc", users=2, seconds=3, root=served.root,
                            environ=served.endpoints.as_environment())
    assert result["locust_exit"] == 0, result["failures"]
    assert result["requests"] >= 2  # at least one answer per user
    # Locust rounds its percentiles to 2-3 significant digits (10 ms steps above 100 ms), so its
    # p99 may sit just above the exact maximum: the order is checked up to p99.
    assert result["errors"] == 0 and result["achieved_rps"] > 0 and result["n"] == result["requests"]
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] and result["max_ms"] > 0
    assert 0 < result["mean_ms"]  # the same latency keys as benchmarks/timing.py summarize
