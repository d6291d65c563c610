"""make bench TOOL=scale with tiny counts: Ray Serve at two replicas (and at one too under `make faults`: a cluster
start each; batching on), started, measured on the capacity ladder with its memory, stopped; the JSON holds a line
per configuration."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scale
from deploy.local import runner
from tests.conftest import built
from tests.faults import battery

pytestmark = [pytest.mark.slow, pytest.mark.battery, pytest.mark.concerns("rayserve", "kserve-torch", "torchserve")]
REPLICAS = battery((2,), (1, 2))


@pytest.fixture(scope="module")
def servable(trained_artifacts) -> Path:
    """The session's model with both servers' artifacts built (the variant roots link them)."""
    return built(trained_artifacts, "export-torchserve", "export-tfserving")


def test_scale_of_two_replica_counts_writes_every_configuration(servable):
    report = scale.main(["--artifacts", str(servable), "--replicas", *map(str, REPLICAS), "--batching", "on",
                         "--others",
                         "--latency-seconds", "0.3", "--warmup-seconds", "0.3", "--step-seconds", "0.5",
                         "--start-rate", "20", "--factor", "4", "--max-rate", "80", "--precision", "1",
                         "--retries", "0"])
    assert json.loads((servable / "bench" / "scale.json").read_text()) == report
    assert [(line["replicas"], line["batching"]) for line in report["table"]] == [(n, True) for n in REPLICAS]
    for line in report["table"]:
        assert line["error"] is None and line["target"] == "rayserve-v2-rest", line
        assert 0 <= line["capacity_rps"] <= 80
        assert line["rps_per_core"] == round(line["capacity_rps"] / report["cores"], 1)
        assert 0 < line["one_client_p50_ms"] <= line["one_client_p99_ms"]
        assert 100 < line["idle_mb"] <= line["peak_mb"]  # the whole cluster's process tree
    if len(REPLICAS) == 2:
        one, two = report["points"]
        assert two["memory"]["idle_mb"] > one["memory"]["idle_mb"]  # a second replica is a second process
    assert runner.read_pid(runner.run_dir("rayserve", servable / "load" / "search-rayserve")) is None  # stopped
