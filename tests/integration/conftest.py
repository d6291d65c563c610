"""Fixtures for the server tests. The servers themselves (`served`) start once per session in
tests/conftest.py, shared with the parity and deploy tests."""
from __future__ import annotations

import pytest

from tests.conftest import Served, free_ports  # noqa: F401 (kept importable from here)


@pytest.fixture(scope="package")
def test_split(trained_artifacts):
    from training import data, paths

    return data.load_split(paths.split_path(trained_artifacts))["test"]
