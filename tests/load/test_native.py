"""The native generator (perf_analyzer) against real servers: figures of the shape the benchmarks read,
and a refused request ends the run with its error instead of a figure.

perf_analyzer comes with `make setup`, part of `make setup` (which `make test` runs first).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import native, variants
from core import registry
from deploy.local import runner
from serving.endpoints import free_endpoints
from tests.conftest import built

pytestmark = [pytest.mark.slow, pytest.mark.concerns("tfserving-grpc", "torchserve-rest")]


@pytest.fixture(scope="module")
def running(trained_artifacts):
    """TorchServe and the TF server over the session's model, on free ports in a variant root of their own."""
    root = built(trained_artifacts, "export-torchserve", "export-tfserving")
    variant = variants.prepare(root, "native")
    endpoints = free_endpoints()
    runner.stop(variant)
    # The servers perf_analyzer speaks to natively: those of its targets (benchmarks/native.py).
    runner.start(variant, endpoints, timeout=300, only=tuple({registry.TARGETS[t].server for t in native.SERVICES}))
    try:
        yield variant, endpoints
    finally:
        runner.stop(variant)


@pytest.mark.parametrize("target", list(native.SERVICES))
def test_requests_in_flight_give_a_rate_and_client_percentiles(running, target):
    variant, endpoints = running
    result = native.run(target, variant, endpoints, concurrency=4, seconds=0.5, images=8, stability=100,
                        progress=lambda _: None)
    assert result["target"] == target and result["concurrency"] == 4
    assert result["infer_per_s"] > 0 and result["requests_measured"] > 0
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"]
    assert result["generator_version"].startswith("Perf Analyzer Version 2.41.0")
    assert result["generator_cpu"]["cores_allowed"] >= 1 and result["generator_limited"] in (True, False)
    assert "Bearer" not in result["generator_command"] or "Bearer <key>" in result["generator_command"]


def test_a_refused_request_ends_the_run_with_its_error(running, tmp_path):
    variant, endpoints = running
    # The same server, reached through a root whose key file holds a wrong key: every request is refused.
    wrong = tmp_path / "wrong"
    (wrong / "run" / "torchserve").mkdir(parents=True)
    (wrong / "run" / "torchserve" / "key_file.json").write_text(json.dumps({"inference": {"key": "wrong"}}))
    for item in ("spec.json", "data"):
        (wrong / item).symlink_to(Path(variant) / item)
    with pytest.raises(native.NativeError, match="had error: inference failed with error code 400"):
        native.run("torchserve-rest", wrong, endpoints, concurrency=2, seconds=0.5, images=2, stability=100,
                   progress=lambda _: None)
