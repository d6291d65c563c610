"""Where every measurement writes its JSON, and how it names the command that reproduces it.

    from benchmarks import results
    report = {"command": results.command(__name__, argv), "machine": machine.describe(), ...}
    path = results.write(report, root, "edge")            # -> <artifacts>/bench/edge.json
    path = results.save(report, args.out)                 # a tool's own --out path
"""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from benchmarks import tools


def command(module: str, argv: list[str] | None) -> str:
    """`python -m benchmarks <tool> <args>`, the tool whose row (tools.py) names `module`: the line that
    reproduces a measurement (argv None: this process's own)."""
    args = shlex.join(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m benchmarks", tools.name_of(module), args]).strip()


def bench_dir(root: Path) -> Path:
    """<artifacts>/bench/, the folder every measurement's JSON lands in (the report reads it from there)."""
    return Path(root) / "bench"


def write(report: dict, root: Path, name: str) -> Path:
    """Write `report` as <artifacts>/bench/<name>.json (indented, newline-terminated); the path written."""
    return save(report, bench_dir(root) / f"{name}.json")


def save(report: dict, path: Path) -> Path:
    """Write `report` as JSON at `path` (a tool's `--out`), folders made as needed; the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
