"""Servers of a test's own, for tests that change them (kill a worker, restart, add a version).

The shared `served` fixture (conftest.py) is for tests that only read; a test that mutates a
server starts its own pair here: a copy of the session's trained model in a fresh artifacts
folder, its own archive and SavedModel version 1, free ports, the same runner `make serve` uses,
and a stop at the end, also when the test fails.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from serving.endpoints import Endpoints
from tests.integration.conftest import Served, free_ports
from training.spec import SERVING_HOST, SERVING_PORTS

# What building the servers' artifacts needs from a trained artifacts folder.
TRAINED = ("spec.json", "manifest.json", "metrics.json", "data", "torch", "tensorflow")


def copy_trained(source: Path, target: Path) -> Path:
    """The trained model (not the exports, not the running servers' state) in a new artifacts folder."""
    target.mkdir(parents=True)
    for name in TRAINED:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


@contextmanager
def own_servers(trained_artifacts: Path, folder: Path, *, timeout: float = 300):
    """Both servers over a private copy of the trained model; yields Served, stops them after."""
    from deploy.local import runner
    from serving.tfserving import export
    from serving.torchserve import archive, gen_stubs

    if not (gen_stubs.STUBS_DIR / "inference_pb2_grpc.py").exists():  # normally done by `make setup`
        gen_stubs.generate()
    root = copy_trained(trained_artifacts, folder / "artifacts")
    archive.build(root)
    export.export(root)
    endpoints = Endpoints(host=SERVING_HOST, ports=dict(zip(SERVING_PORTS, free_ports(len(SERVING_PORTS)))))
    try:
        times = runner.start(root, endpoints, timeout=timeout)
        yield Served(root, endpoints, times)
    finally:
        runner.stop(root)
