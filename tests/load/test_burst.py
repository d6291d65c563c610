"""A crowd on every served endpoint: 256 connections at once x 5 requests, every one answered.

`make bench TOOL=burst` runs the same tool at up to 1,000 connections and records the figures; here
the session's servers (free ports) must answer all 1,280 requests of each endpoint with a
prediction: no reset, no time-out, no unexplained error, and at this size no refusal either.
"""
from __future__ import annotations

import pytest

from benchmarks import burst

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]

CONNECTIONS, REQUESTS = 256, 5


@pytest.mark.parametrize("target", burst.TARGETS)
def test_a_crowd_of_connections_is_answered_in_full(target, served):
    run = burst.burst(target, served.endpoints, served.root, CONNECTIONS, REQUESTS, timeout=60)
    assert run["sent"] == CONNECTIONS * REQUESTS
    assert (run["reset"], run["timed_out"], run["errors"]) == (0, 0, 0), run["examples"]
    assert (run["answered"], run["refused"]) == (run["sent"], 0), run["kinds"]
    assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]
