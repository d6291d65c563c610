"""Both model servers, started once per test run on free ports over the session's trained model.

The fixture exports the TorchServe archive and a SavedModel version into `trained_artifacts`,
starts TorchServe and the TF Serving server (the real one if present, else the compatible one)
through the same runner `make serve` uses, and stops them when this package's tests are done,
also when tests fail. Package scope (not session): the servers are gone before other packages'
tests copy or inspect the shared trained artifacts folder.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.endpoints import Endpoints
from training.spec import SERVING_HOST, SERVING_PORTS


def free_ports(count: int) -> list[int]:
    """Ports the OS has just handed out (held together so they are distinct), then released."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((SERVING_HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Served:
    root: Path
    endpoints: Endpoints
    startup_seconds: dict


@pytest.fixture(scope="package")
def served(trained_artifacts):
    from deploy.local import runner
    from serving.tfserving import export
    from serving.torchserve import archive, gen_stubs

    if not (gen_stubs.STUBS_DIR / "inference_pb2_grpc.py").exists():  # normally done by `make setup`
        gen_stubs.generate()
    archive.build(trained_artifacts)
    export.export(trained_artifacts)
    endpoints = Endpoints(host=SERVING_HOST, ports=dict(zip(SERVING_PORTS, free_ports(len(SERVING_PORTS)))))
    try:
        times = runner.start(trained_artifacts, endpoints, timeout=300)
        yield Served(trained_artifacts, endpoints, times)
    finally:
        runner.stop(trained_artifacts)


@pytest.fixture(scope="package")
def test_split(trained_artifacts):
    from training import data, paths

    return data.load_split(paths.split_path(trained_artifacts))["test"]
