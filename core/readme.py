"""README.md's generated blocks: each lies between two markers and is written from its source, never by hand.

    python -m core.readme                  # rewrite every block from its source (then commit README.md)
    readme.block(text, "the layers")       # what README.md holds between that block's markers

tests/unit/ holds each block equal to its source, so a table or picture cannot drift from what it shows.
"""
from __future__ import annotations

from pathlib import Path

from core import paths

# name -> "module:function" that renders the block (imported only when asked for).
BLOCKS = {
    "the table of targets": "core.selection:markdown",  # core/registry.py's rows
    "the layers": "core.layering:picture",  # pyproject.toml's import-linter layers contract
}
README = paths.REPO_ROOT / "README.md"


def begin(name: str) -> str:
    return f"<!-- {name}: written by `python -m core.readme` -->"


def end(name: str) -> str:
    return f"<!-- end of {name} -->"


def render(name: str) -> str:
    from core.registry import named

    return named(BLOCKS[name])()


def block(text: str, name: str) -> str:
    """What `text` holds between block `name`'s two markers."""
    return text.split(begin(name), 1)[1].split(end(name), 1)[0].strip("\n")


def write(path: Path = README) -> None:
    """Put every block, freshly rendered, between its markers in `path`."""
    text = path.read_text()
    for name in BLOCKS:
        before, rest = text.split(begin(name), 1)
        after = rest.split(end(name), 1)[1]
        text = f"{before}{begin(name)}\n{render(name)}\n{end(name)}{after}"
    path.write_text(text)


def main(argv=None) -> None:
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    write()
    print(f"wrote {', '.join(BLOCKS)} into {README}")


if __name__ == "__main__":
    main()
