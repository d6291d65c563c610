"""The layering: core/ (spec, contract, artifact store, the table of targets) imports nothing above it.

Checked by import-linter (`lint-imports`, contracts in pyproject.toml), which reads every import,
inside functions too. The table of targets names the modules of each target as strings instead.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core import paths

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def test_core_imports_nothing_above_it():
    done = lint(paths.REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "core/ is the ground floor: it imports nothing above it KEPT" in done.stdout
    assert "0 broken" in done.stdout


def test_an_import_from_above_inside_a_function_breaks_the_contract(tmp_path):
    """The same contract on a copy of the layout whose core/ imports training/ lazily: broken, with the line."""
    for package in ("core", "training", "edge", "serving", "web", "deploy", "benchmarks"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "training" / "data.py").write_text("X = 1\n")
    (tmp_path / "core" / "spec.py").write_text("def load():\n    from training import data\n    return data.X\n")
    config = (paths.REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]"):])
    done = lint(tmp_path)
    assert done.returncode != 0 and "core.spec -> training.data" in done.stdout
