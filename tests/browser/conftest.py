"""Fixtures for the browser target: a private server of the page (the digits' web folder itself,
`web_artifacts`, is built once per session in tests/conftest.py), and the second task's page
(`second_task` in tests/conftest.py: colour pictures (N, 12, 16, 3) uint8 of five named classes).
"""
from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import paths
from web.tfjs import export

NODE_MODULES = export.NODE_MODULES


def run_node(args: list[str], env: dict, timeout: float = 180) -> str:
    """Run node in web/tfjs; fail the test with its whole output unless it exits 0."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: install Node.js 18+ (`make setup`)")
    done = subprocess.run([node, *args], cwd=export.TFJS_DIR, env=env, capture_output=True, text=True,
                          timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"node {' '.join(args)} failed (exit {done.returncode}):\n{output}", pytrace=False)
    return output


@contextlib.contextmanager
def serve_web(root: Path):
    """`<root>/web` served on a free 127.0.0.1 port by `python -m web.tfjs.serve`; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "web.tfjs.serve", "--port", "0", "--artifacts", str(root)],
        cwd=paths.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
        if match is None:
            process.kill()
            pytest.fail(f"the demo server did not start: {line}{process.stdout.read()}")
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@pytest.fixture(scope="session")
def web_server(web_artifacts):
    """The digits page served on a free 127.0.0.1 port; yields its URL."""
    with serve_web(web_artifacts) as url:
        yield url


@pytest.fixture(scope="session")
def colour_web_artifacts(second_task):
    """The second task (tests/conftest.py: colour, non-square, five named classes) with its web folder."""
    from tests.conftest import built

    return built(second_task, "export-web")


@pytest.fixture(scope="session")
def colour_web_server(colour_web_artifacts):
    with serve_web(colour_web_artifacts) as url:
        yield url
