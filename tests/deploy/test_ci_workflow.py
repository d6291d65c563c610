"""The CI a fork runs as is (.github/workflows/ci.yml) and `make lint`, read, not run.

The workflow must run what .ci/run runs (the README's two commands, on a brand-new Debian machine
with the Python version the project asks for), lint on its own, and put the parity table in the
job summary; `make test` lints before it tests, with the ruff the lock file pins.
"""
from __future__ import annotations

import re
import subprocess
import sys

import yaml

from core import paths

ROOT = paths.REPO_ROOT
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["test"]["steps"]


def commands() -> list[str]:
    return [line.strip() for step in steps() for line in step.get("run", "").splitlines() if line.strip()]


def test_it_runs_what_ci_runs_in_the_same_order_with_lint_before_the_tests():
    ci_run = [line.split("time ", 1)[1] for line in (ROOT / ".ci" / "run").read_text().splitlines()
              if line.startswith("time make")]
    assert ci_run == ["make setup", "make test", "make faults"]
    ran = commands()
    ordered = ("make setup", "make lint", "make test", "make faults")
    assert [c for c in ran if c in ordered] == list(ordered)


def test_it_runs_on_debian_as_root_with_the_python_the_project_asks_for():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["test"]
    asked = re.search(r'requires-python = ">=(\d+\.\d+)', (ROOT / "pyproject.toml").read_text()).group(1)
    assert job["container"] == f"python:{asked}-bookworm"  # Debian: prereqs.sh installs with apt-get as root
    assert job["timeout-minutes"] <= 90


def test_the_parity_table_goes_to_the_job_summary_and_the_servers_are_stopped_always():
    ran = commands()
    assert ran.index("make deploy-all") < ran.index("make parity") > ran.index("make test")
    assert 'cat artifacts/parity.md >> "$GITHUB_STEP_SUMMARY"' in ran
    assert any(step.get("run") == "make stop" and step.get("if") == "always()" for step in steps())


def test_actions_are_pinned_and_the_caches_cover_what_the_build_reads():
    used = [step["uses"] for step in steps() if "uses" in step]
    assert used and all(re.fullmatch(r"actions/(checkout|cache)@v\d+", action) for action in used)
    caches = [step["with"] for step in steps() if step.get("uses", "").startswith("actions/cache")]
    artifacts = next(cache for cache in caches if cache["path"] == "artifacts")
    folders = re.findall(r"'([a-z/]+)/\*\*'", artifacts["key"])
    assert {"core", "training", "edge", "serving", "web"} <= set(folders)
    assert all((ROOT / folder).is_dir() for folder in folders)
    assert "requirements/*.txt" in artifacts["key"]


def test_make_test_lints_first_with_the_pinned_ruff():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: setup lint ", makefile, re.M)
    assert re.search(r"^lint: .*\n\t\$\(VENV\)/bin/ruff check ", makefile, re.M)
    pinned = {re.match(r"ruff==[^\s\\]+", line).group(0) for name in ("main.in", "main.txt")
              for line in (ROOT / "requirements" / name).read_text().splitlines() if line.startswith("ruff==")}
    assert len(pinned) == 1  # the same version in the input and the lock file


def test_lint_finds_what_it_should_in_a_file_outside_the_project(tmp_path):
    """The configured rules are live: an unused import and an undefined name are reported."""
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config[config.index("[tool.ruff]"):config.index("[tool.importlinter]")])
    (tmp_path / "bad.py").write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(tmp_path)]
    result = subprocess.run(ruff, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "F401" in result.stdout and "F821" in result.stdout
