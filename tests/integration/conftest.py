"""Fixtures for the server tests. The servers themselves (`served`) start once per session in
tests/conftest.py, shared with the parity and deploy tests."""
from __future__ import annotations

from tests.conftest import Served, free_ports  # noqa: F401 (kept importable from here)
