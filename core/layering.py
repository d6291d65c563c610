"""The project's layers, as pyproject.toml's import-linter contract declares them, drawn for the README.

    layering.layers()    # [["benchmarks"], ["deploy"], ["edge", "serving", "web"], ["training"], ["core"]]
    layering.picture()   # the README's picture of them (core/readme.py writes it between its markers)

`lint-imports` (`make lint`, `make test`) holds the code to the contract; tests/unit/test_layering.py holds
the README's picture to it; so the picture, the contract and the imports say the same thing.
"""
from __future__ import annotations

import tomllib

from core import paths

PYPROJECT = paths.REPO_ROOT / "pyproject.toml"


def layers(pyproject=PYPROJECT) -> list[list[str]]:
    """The layers contract's layers, top first; each a list of its packages (siblings: `a | b`)."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def picture(pyproject=PYPROJECT) -> str:
    """One line per layer, top first, an arrow ("may import") down to the next; siblings side by side."""
    found = layers(pyproject)
    lines = ["```"]
    for number, layer in enumerate(found):
        row = "   ".join(f"{name}/" for name in layer)
        if len(layer) > 1:
            row += "   (siblings: none imports another)"
        lines.append(row)
        if number < len(found) - 1:
            lines += ["   |", "   v"]
    return "\n".join([*lines, "```"])
