"""`make deploy-all` then `make deploy-all DATA=bars.npz` with the servers still running: every server
whose model changed is restarted over the new one and answers with the new task's labels (it once
said "torchserve: already running", polled 180 s for a model never loaded and exited 2). Ray Serve's cluster
takes part under `make faults` only (a new model version reaching every one of its replicas is
tests/integration/test_rayserve_faults.py's)."""
from __future__ import annotations

import numpy as np
import pytest

from core import registry
from core import spec as specs
from deploy import parity
from deploy.local import runner, servers
from tests.conftest import built, copy_trained, free_endpoints, serve_folder
from tests.faults import battery

pytestmark = [pytest.mark.slow, pytest.mark.battery, pytest.mark.concerns("servers")]
WITHOUT = battery(("rayserve",), ())  # the servers left out of the reduced form


def test_new_data_while_serving_restarts_the_servers_over_the_new_model(trained_artifacts, tmp_path, capsys):
    from training import example_data

    data = tmp_path / "bars.npz"
    np.savez(data, **example_data.make(count=250))
    root = copy_trained(trained_artifacts, tmp_path / "artifacts")
    with serve_folder(root, free_endpoints(), without=WITHOUT) as running:
        before = {name: runner.read_pid(runner.run_dir(name, root)).pid for name in servers.MODEL_SERVERS
                  if name not in WITHOUT}
        built(root, "export-torchserve", "export-tfserving", args=["--epochs", "2", "--seed", "0", "--data", str(data)])
        assert specs.load(root).model_name == "bars"
        capsys.readouterr()
        endpoints = running.endpoints.for_root(root)
        runner.start(root, endpoints, timeout=300, without=WITHOUT)
        out = capsys.readouterr().out
        for name, pid in before.items():
            assert f"{name}: running (pid {pid}) but spec.json" in out, out
            assert runner.read_pid(runner.run_dir(name, root)).pid != pid
        served = [name for name in registry.names("server") if registry.TARGETS[name].server not in WITHOUT]
        rows = parity.run(root, endpoints, names=served, progress=lambda line: None)
        failed = {row["target"]: row["problems"] for row in rows if not row["passed"]}
        assert not failed, failed
        after = {name: runner.read_pid(runner.run_dir(name, root)).pid for name in before}
        runner.start(root, endpoints, timeout=60, without=WITHOUT)  # and now nothing changed: all kept
        out = capsys.readouterr().out
        assert all(f"{name}: already running (pid {pid})" in out for name, pid in after.items()), out
