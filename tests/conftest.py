"""Shared fixtures. Tests write under temporary artifacts folders, never ./artifacts."""
from __future__ import annotations

import pytest

# Epochs for the session's trained model: enough for a sensible model, seconds to train.
TEST_EPOCHS = 3


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """A fresh, empty artifacts folder that `training.paths` resolves to for this test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(root))
    return root


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
