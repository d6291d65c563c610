"""`python -m benchmarks`: one command for every measuring tool, listed from one table."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

from benchmarks import results, tools
from core import paths


def test_help_lists_every_tool_of_the_table_with_its_line():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True, timeout=60,
                          cwd=paths.REPO_ROOT, check=True)
    listed = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(tools.TOOLS)
    for name, tool in tools.TOOLS.items():
        assert f"  {name:<{max(map(len, tools.TOOLS))}}  {tool.line}" in done.stdout
        assert len(tool.line) <= 80


def test_every_row_names_a_module_of_benchmarks_with_a_main():
    """Found, not imported: the KServe tools import kserve, which only .venv-kserve has."""
    for name, tool in tools.TOOLS.items():
        assert tool.module.startswith("benchmarks."), name
        spec = importlib.util.find_spec(tool.module)
        assert spec is not None and "def main(" in open(spec.origin).read(), name


def test_an_unknown_tool_is_refused_with_the_list():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "nope"], capture_output=True, text=True, timeout=60,
                          cwd=paths.REPO_ROOT)
    assert done.returncode == 2 and "no tool 'nope'" in done.stderr and "sweep" in done.stderr


def test_a_result_names_the_command_that_reproduces_it():
    assert results.command("benchmarks.sweep", ["--seconds", "3"]) == "python -m benchmarks sweep --seconds 3"
    assert results.command("benchmarks.locust.run", []) == "python -m benchmarks locust"
