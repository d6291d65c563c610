"""Fixtures for the browser target: a private server of the page (the digits' web folder itself,
`web_artifacts`, is built once per session in tests/conftest.py), and a second task's page: colour
pictures (N, 12, 16, 3) uint8 of five named classes, made here, trained briefly and exported.
"""
from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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


# The second task: not square, colour, uint8 0..255, five named classes, its own model name.
COLOUR_SHAPE = (12, 16, 3)
COLOUR_LABELS = ("red", "green", "blue", "yellow", "magenta")
COLOUR_NAME = "colours"
COLOUR_EPOCHS = 2


def make_colour_npz(path: Path, count: int = 300, seed: int = 0) -> Path:
    """Noisy light pictures with a rectangle of the class's colour somewhere in them."""
    rng = np.random.default_rng(seed)
    colours = np.array([[220, 40, 40], [40, 200, 60], [40, 60, 220], [230, 220, 40], [200, 60, 200]])
    height, width, _ = COLOUR_SHAPE
    y = np.arange(count) % len(COLOUR_LABELS)
    x = np.empty((count, *COLOUR_SHAPE), np.uint8)
    for i, label in enumerate(y):
        picture = np.full(COLOUR_SHAPE, 235.0) + rng.normal(0, 12, COLOUR_SHAPE)
        top, left = int(rng.integers(0, height - 6)), int(rng.integers(0, width - 8))
        picture[top:top + 6, left:left + 8] = colours[label] + rng.normal(0, 15, 3)
        x[i] = np.clip(np.round(picture), 0, 255)
    np.savez(path, x=x, y=y, labels=np.array(COLOUR_LABELS), name=np.array(COLOUR_NAME))
    return path


@pytest.fixture(scope="session")
def colour_web_artifacts(tmp_path_factory):
    """The colour task trained briefly (both frameworks) and its web folder built, once."""
    from training import train
    from web.tfjs import export

    root = tmp_path_factory.mktemp("colour")
    data = make_colour_npz(root / "colours.npz")
    train.main(["--epochs", str(COLOUR_EPOCHS), "--data", str(data), "--artifacts", str(root), "--seed", "0"])
    export.build(root)
    return root


@pytest.fixture(scope="session")
def colour_web_server(colour_web_artifacts):
    with serve_web(colour_web_artifacts) as url:
        yield url
