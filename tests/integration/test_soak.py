"""The soak benchmark's short version (10 s; 30 s under `make faults`; `make bench TOOL=soak` runs 10 minutes):
every endpoint under a steady paced load, every answer checked, no failure, no lost request, memory sampled."""
from __future__ import annotations

import pytest

from tests.faults import battery

pytestmark = [pytest.mark.slow, pytest.mark.battery, pytest.mark.concerns("servers")]
SECONDS = battery(10, 30)
RATE = 8.0  # requests/s per endpoint: well under what each serves on a shared 2-core machine


def test_seconds_at_a_steady_rate_without_a_failed_request(served):
    from benchmarks.soak import print_table, soak
    from core import registry

    report = soak(served.root, SECONDS, {name: (RATE, "test") for name in registry.served()}, sample=5.0,
                  endpoints=served.endpoints)
    print_table(report)
    assert set(report["endpoints"]) == set(registry.served())
    for name, result in report["endpoints"].items():
        assert result["kinds"] == {} and result["in_flight"] == 0, (name, result)
        assert result["answered"] == result["scheduled"] > 0, (name, result)  # every scheduled request answered
        assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"], (name, result)
    for server, memory in report["memory"].items():
        assert len(memory["samples"]) >= SECONDS // 5, server  # sampled all along
        assert memory["start_mb"] > 50 and memory["end_mb"] > 50, (server, memory)  # the whole process tree was found
