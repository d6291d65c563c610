"""The code a build step runs, found by reading imports: so the build graph knows when it changed.

    python -m deploy.local.code edge.onnx.export      # every project file that module runs, with digests

`files_of(["edge.onnx.export"])` follows every import of the project's own modules (at the top of a
file or inside a function, absolute or relative) from the modules named, through the packages'
`__init__.py`, and returns the files it reached. Modules outside the repository (torch, numpy, the
standard library) are not followed: their versions are the lock files' business.

`digests(files)` is one sha256 per file. A Python file is digested as its syntax tree without
docstrings, so an edited comment or docstring does not rebuild anything, while any change to the
code does. Other files (the page's HTML and JavaScript, a lock file) are digested byte for byte.
Both are remembered per file for as long as the file's size and modification time stay the same
(the build graph asks for the same files many times in one run).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import time
from pathlib import Path

from core import paths


def module_file(module: str, root: Path) -> Path | None:
    """The file of project module `module` under `root` (None: not the project's)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(file: Path, root: Path) -> list[str]:
    """The dotted package a file belongs to, as parts (a package's __init__ is its own package)."""
    parts = list(file.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] != "__init__" else parts[:-1]


# (what, file, its modification time, size and inode) -> what was read from it
_READ: dict[tuple, object] = {}
SETTLED_NS = 2_000_000_000  # a file changed less than this long ago is read again: its clock may not tick


def _remembered(what: str, file: Path, read):
    """`read()` of `file`, remembered while the file stays as it was."""
    stat = file.stat()
    key = (what, str(file), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if key in _READ:
        return _READ[key]
    value = read()
    if time.time_ns() - stat.st_mtime_ns > SETTLED_NS:
        _READ[key] = value
    return value


def imported(file: Path, root: Path) -> set[str]:
    """Every module name `file` imports, anywhere in it (names that may be submodules included)."""
    return set(_remembered(f"imports under {root}", file, lambda: frozenset(_imported(file, root))))


def _imported(file: Path, root: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..a import b
                package = _package_of(file, root)
                package = package[: len(package) - node.level + 1] if node.level > 1 else package
                base = ".".join([*package, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def files_of(modules, root: Path = paths.REPO_ROOT) -> list[Path]:
    """Every project file the modules run: themselves, what they import, and their packages' __init__."""
    seen: dict[Path, None] = {}
    pending = list(modules)
    while pending:
        module = pending.pop()
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            file = module_file(".".join(parts[:depth]), root)
            if file is None or file in seen:
                continue
            seen[file] = None
            pending.extend(imported(file, root))
    return sorted(seen)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def digest(file: Path) -> str:
    """sha256 of what `file` does: a Python file's syntax tree without docstrings, other files' bytes."""
    return _remembered("digest", file, lambda: _digest(file))


def _digest(file: Path) -> str:
    if file.suffix == ".py":
        tree = _without_docstrings(ast.parse(file.read_text(), str(file)))
        return hashlib.sha256(ast.dump(tree).encode()).hexdigest()
    return hashlib.sha256(file.read_bytes()).hexdigest()


def digests(modules, globs=(), root: Path = paths.REPO_ROOT) -> dict[str, str]:
    """{path relative to `root`: digest} of every file the modules run, and of the files the globs match."""
    files = set(files_of(modules, root))
    for pattern in globs:
        files.update(path for path in root.glob(pattern) if path.is_file())
    return {str(file.relative_to(root)): digest(file) for file in sorted(files)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="+", help="dotted module names, e.g. edge.onnx.export")
    args = parser.parse_args(argv)
    for path, sha256 in digests(args.modules).items():
        print(f"{sha256[:12]}  {path}")


if __name__ == "__main__":
    main()
