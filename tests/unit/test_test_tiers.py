"""The test suite's own set-up: `make test` sets up first (a fresh clone's `make test` works),
`make test-fast` runs the unit and contract tiers only, and a hanging test fails alone, by timeout."""
from __future__ import annotations

import subprocess
import sys

from core import paths


def make_dry_run(*args: str) -> str:
    done = subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_test_sets_up_what_the_pick_needs_before_it_runs_pytest():
    """The whole set-up (system programs, environments, npm packages, stubs: deploy/local/setup.py, its own
    tests in test_setup.py) for the targets picked, then pytest."""
    commands = make_dry_run("test")
    setup = commands.index("-m deploy.local.setup\n")
    assert setup < commands.index("-m pytest")


def test_make_test_fast_runs_the_fast_tiers_only():
    commands = make_dry_run("test-fast")
    assert '-m pytest tests/unit tests/deploy -m "not slow"' in commands
    assert "-m deploy.local.setup --only main" in commands  # the main environment only: seconds when it is there


def test_ci_runs_the_whole_suite():
    ci = (paths.REPO_ROOT / ".ci" / "run").read_text()
    assert "make test\n" in ci and "test-fast" not in ci


def test_every_test_has_a_default_timeout(request):
    assert request.config.pluginmanager.hasplugin("timeout")
    assert float(request.config.getini("timeout")) > 0


def test_a_hanging_test_fails_alone(tmp_path):
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_hangs():\n    time.sleep(120)\n\ndef test_passes():\n    assert True\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout and "Timeout" in done.stdout, done.stdout
