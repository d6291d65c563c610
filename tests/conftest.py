"""Shared fixtures. Every test writes under a temporary artifacts folder, never ./artifacts."""
from __future__ import annotations

import pytest


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """A fresh, empty artifacts folder that `training.paths` resolves to for this test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(root))
    return root
