"""Fixtures for the browser target: the web folder built once per session, and its server."""
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
def web_artifacts(trained_artifacts):
    """`trained_artifacts` with `web/` built into it (graph model, page, fixtures), once."""
    if not (NODE_MODULES / "@tensorflow" / "tfjs").exists():
        pytest.fail(f"{NODE_MODULES} is missing: run `make setup-web` (npm ci in web/tfjs)")
    export.build(trained_artifacts)
    return trained_artifacts


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
