"""The process runner (a second start starts nothing) and the registry of served targets."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]


def test_starting_again_starts_nothing(served, capsys):
    from core import servers
    from deploy.local import runner

    model_servers = servers.model_servers()  # every one the session started (core/servers.py)
    before = {name: runner.read_pid(runner.run_dir(name, served.root)).pid for name in model_servers}
    runner.start(served.root, served.endpoints, timeout=30)
    after = {name: runner.read_pid(runner.run_dir(name, served.root)).pid for name in model_servers}
    assert after == before
    out = capsys.readouterr().out
    assert all(f"{name}: already running" in out for name in model_servers), out
    assert f"127.0.0.1:{served.endpoints.ports['tfserving_grpc']}" in out
    assert all(served.startup_seconds[name] > 0 for name in model_servers)


def test_every_registered_target_gives_the_same_labels(served, test_split):
    """Served clients and in-process references, all through the registry, agree on the test split."""
    import numpy as np

    from core import registry

    labels = {}
    for name in (*registry.served(), *registry.IN_PROCESS.values()):
        predictor = registry.load(name, served.root, served.endpoints)
        assert predictor.name == name
        labels[name] = predictor.predict(test_split.x).argmax(axis=1)
    for name in registry.served():
        in_process = registry.IN_PROCESS[registry.TARGETS[name].framework]
        np.testing.assert_array_equal(labels[name], labels[in_process])
