"""The layers: benchmarks > deploy > edge | serving | web > training > core, and no circle inside a package.

Checked by import-linter (`lint-imports`, contracts in pyproject.toml), which reads every import,
inside functions too. The table of targets names the modules of each target as strings instead.
The README's picture of the layers is drawn from the same contract (core/layering.py).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core import layering, paths, readme

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("core", "training", "edge", "serving", "web", "deploy", "benchmarks")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)})


def layout(tmp_path: Path, files: dict[str, str]) -> Path:
    """A copy of the package layout with the project's contracts and the given modules."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = (paths.REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.importlinter]"):])
    return tmp_path


def test_every_package_keeps_to_its_layer_and_no_package_has_a_circle():
    done = lint(paths.REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "layers: benchmarks > deploy > edge | serving | web > training > core KEPT" in done.stdout
    assert "no circles between the modules of a package KEPT" in done.stdout
    assert "0 broken" in done.stdout


def test_the_layers_are_every_root_package_top_first():
    assert layering.layers() == [["benchmarks"], ["deploy"], ["edge", "serving", "web"], ["training"], ["core"]]
    assert sorted(sum(layering.layers(), [])) == sorted(PACKAGES)


def test_the_readme_s_picture_of_the_layers_is_the_contract():
    text = (paths.REPO_ROOT / "README.md").read_text()
    assert readme.block(text, "the layers") == layering.picture(), \
        "README.md's picture of the layers is out of date: run `python -m core.readme`"


def test_an_import_from_above_inside_a_function_breaks_the_layers(tmp_path):
    """core/ importing training/ lazily, inside a function: broken, with the line."""
    root = layout(tmp_path, {"training/data.py": "X = 1\n",
                             "core/spec.py": "def load():\n    from training import data\n    return data.X\n"})
    done = lint(root)
    assert done.returncode != 0 and "core.spec -> training.data" in done.stdout


def test_siblings_may_not_import_one_another(tmp_path):
    root = layout(tmp_path, {"serving/connections.py": "X = 1\n",
                             "web/serve.py": "from serving import connections\n"})
    done = lint(root)
    assert done.returncode != 0 and "web.serve -> serving.connections" in done.stdout


def test_a_circle_inside_a_package_is_broken(tmp_path):
    root = layout(tmp_path, {"deploy/runner.py": "def start():\n    from deploy import servers\n",
                             "deploy/servers.py": "from deploy import runner\n"})
    done = lint(root)
    assert done.returncode != 0 and "No cycles are allowed in deploy" in done.stdout
