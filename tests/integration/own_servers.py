"""Servers of a test's own, for tests that change them (kill a worker, restart, add a version).

The shared `served` fixture (conftest.py) is for tests that only read; a test that mutates a
server starts its own pair here: a copy of the session's trained model in a fresh artifacts
folder, its own archive and SavedModel version 1, free ports, the same runner `make serve` uses,
and a stop at the end, also when the test fails.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from tests.conftest import copy_trained, free_endpoints, serve_folder


@contextmanager
def own_servers(trained_artifacts: Path, folder: Path, *, timeout: float = 300, only: tuple | None = None):
    """The servers over a private copy of the trained model (`only`: just those, by runner name);
    yields Served, stops them after. Not the Ray cluster unless `only` names it (half a minute to start
    and a few replicas' memory): the Ray Serve tests start their own."""
    with serve_folder(copy_trained(trained_artifacts, folder / "artifacts"), free_endpoints(), timeout,
                      only, without=() if only else ("rayserve",)) as served:
        yield served
