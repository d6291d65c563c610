"""Fixtures for the browser target: a private server of the page (the web folder itself,
`web_artifacts`, is built once per session in tests/conftest.py)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from training import paths
from web.tfjs import export

NODE_MODULES = export.NODE_MODULES


def run_node(args: list[str], env: dict, timeout: float = 180) -> str:
    """Run node in web/tfjs; fail the test with its whole output unless it exits 0."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: install Node.js 18+ (`make setup-system`)")
    done = subprocess.run([node, *args], cwd=export.TFJS_DIR, env=env, capture_output=True, text=True,
                          timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"node {' '.join(args)} failed (exit {done.returncode}):\n{output}", pytrace=False)
    return output


@pytest.fixture(scope="session")
def web_server(web_artifacts):
    """The page served on a free 127.0.0.1 port by `python -m web.tfjs.serve`; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "web.tfjs.serve", "--port", "0", "--artifacts", str(web_artifacts)],
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
