"""The process runner: a second start starts nothing, and stop only touches recorded processes."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_starting_again_starts_nothing(served, capsys):
    from deploy.local import runner

    before = {name: runner.read_pid(runner.run_dir(name, served.root)).pid for name in ("torchserve", "tfserving")}
    runner.start(served.root, served.endpoints, timeout=30)
    after = {name: runner.read_pid(runner.run_dir(name, served.root)).pid for name in ("torchserve", "tfserving")}
    assert after == before
    out = capsys.readouterr().out
    assert "torchserve: already running" in out and "tfserving: already running" in out
    assert f"127.0.0.1:{served.endpoints.ports['tfserving_grpc']}" in out
    assert served.startup_seconds["torchserve"] > 0 and served.startup_seconds["tfserving"] > 0
