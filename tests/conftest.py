"""Shared fixtures. Tests write under temporary artifacts folders, never ./artifacts.

Session-wide, built once: `trained_artifacts` (both frameworks trained), `edge_artifacts` (plus
every edge export), `web_artifacts` (plus the TF.js page) and `served` (TorchServe, TF Serving and
the demo page's server running over that folder on free ports, as `make serve` runs them).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.endpoints import free_endpoints, free_ports  # noqa: F401 (importable from here)

# Epochs for the session's trained model: enough for a sensible model, seconds to train.
TEST_EPOCHS = 3


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """A fresh, empty artifacts folder that `training.paths` resolves to for this test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(root))
    return root


@pytest.fixture
def spec_folder(tmp_path):
    """`tmp_path` holding the built-in task's spec.json, as training writes it (nothing else)."""
    from training.spec import digits_spec, write_spec

    write_spec(digits_spec(), tmp_path / "spec.json")
    return tmp_path


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory):
    """An artifacts folder holding a model trained once for the whole session (both frameworks).

    Later stages (exports, servers, runners) build into this same folder; pass it to subprocesses
    as DIGITS_ARTIFACTS.
    """
    from training import train

    root = tmp_path_factory.mktemp("trained")
    train.main(["--epochs", str(TEST_EPOCHS), "--artifacts", str(root), "--seed", "0"])
    return root


@pytest.fixture(scope="session")
def edge_artifacts(trained_artifacts):
    """`trained_artifacts` plus every edge artifact (TFLite, ExecuTorch, ONNX), exported once per session."""
    from edge.export import export_all

    export_all(trained_artifacts)
    return trained_artifacts


@pytest.fixture(scope="session")
def web_artifacts(trained_artifacts):
    """`trained_artifacts` with `web/` built into it (graph model, page, fixtures), once."""
    from web.tfjs import export

    if not (export.NODE_MODULES / "@tensorflow" / "tfjs").exists():
        pytest.fail(f"{export.NODE_MODULES} is missing: run `make setup-web` (npm ci in web/tfjs)")
    export.build(trained_artifacts)
    return trained_artifacts


# The second task, unlike the digits: (N, 12, 16, 3) uint8 colour pictures of five named classes
# (training/example_data.py), on the second reference network.
SECOND_TASK_NAME = "bars"
SECOND_TASK_EPOCHS = 4


@pytest.fixture(scope="session")
def second_task(tmp_path_factory):
    """The second task trained (both frameworks, `--arch resnet`) with its web page built, once per session."""
    import numpy as np

    from training import example_data, train
    from web.tfjs import export

    folder = tmp_path_factory.mktemp("second-task")
    data = folder / "bars.npz"
    np.savez(data, **example_data.make())
    root = folder / "artifacts"
    train.main(["--epochs", str(SECOND_TASK_EPOCHS), "--arch", "resnet", "--data", str(data), "--artifacts", str(root),
                "--seed", "0"])
    export.build(root)
    return root


@dataclass
class Served:
    root: Path
    endpoints: object  # serving.endpoints.Endpoints
    startup_seconds: dict


# What a trained artifacts folder holds before anything is exported or started.
TRAINED = ("spec.json", "manifest.json", "metrics.json", "data", "torch", "tensorflow")


def copy_trained(source: Path, target: Path) -> Path:
    """The trained model (not the exports, not the running servers' state) in another artifacts folder."""
    target.mkdir(parents=True, exist_ok=True)
    for name in TRAINED:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


def serve_folder(root: Path, endpoints, timeout: float = 300):
    """Export the servers' artifacts into `root` and start every server over it (a context manager)."""
    from contextlib import contextmanager

    from deploy.local import runner
    from serving.tfserving import export
    from serving.torchserve import archive, gen_stubs

    @contextmanager
    def running():
        if not (gen_stubs.STUBS_DIR / "inference_pb2_grpc.py").exists():  # normally done by `make setup`
            gen_stubs.generate()
        archive.build(root)
        export.export(root)
        named = endpoints.for_root(root)  # clients address the model the spec names
        try:
            times = runner.start(root, named, timeout=timeout)
            yield Served(root, named, times)
        finally:
            runner.stop(root)

    return running()


@pytest.fixture(scope="session")
def served(web_artifacts):
    """TorchServe, TF Serving (the real one if present, else the compatible one) and the demo page,
    started once per test session on free ports over the session's trained model, through the same
    runner `make serve` uses; stopped at the end of the session, also when tests fail."""
    with serve_folder(web_artifacts, free_endpoints()) as running:
        yield running


@pytest.fixture(scope="session")
def spec(trained_artifacts):
    """The spec of the session's model: shapes, range, labels and names every test reads."""
    from core import spec as specs

    return specs.load(trained_artifacts)


@pytest.fixture(scope="session")
def test_split(trained_artifacts):
    """The saved test split of the session's model (the golden cases every target is checked on)."""
    from training import data, paths

    return data.load_split(paths.split_path(trained_artifacts))["test"]


@pytest.fixture(scope="session")
def server_clients(served):
    """A client of each served endpoint, by target name (torchserve-rest, ..., tfserving-grpc)."""
    from core import registry

    made = {name: registry.load(name, root=served.root, endpoints=served.endpoints) for name in registry.served()}
    yield made
    for client in made.values():
        if hasattr(client, "close"):  # the gRPC channels
            client.close()
