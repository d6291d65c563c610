"""The artifact manifest: every file the project builds, with what it is and its sha256.

`artifacts/manifest.json` maps a short artifact id (e.g. `torch_checkpoint`, `tflite_int8`) to
its path (relative to the artifacts folder), sha256, size, source framework, precision, the
input contract it honours, and any extra facts (quantization parameters, delegated operators).
Exporters call `record()`; servers and runners call `verify()` before they load a file, so a
tampered or stale artifact is refused with a clear message instead of being served.

    python -m core.manifest          # list the manifest, checking every hash
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from core import paths
from core import spec as specs


def input_contract(root: Path) -> dict | None:
    """The contract an artifact of folder `root` honours, as its spec says: recorded with every entry
    (None in a folder without a spec: no model was trained there)."""
    try:
        task = specs.load(root)
    except specs.SpecError:
        return None
    return {**task.data["input"], "output": task.output_name, "labels": task.labels}


class ManifestError(RuntimeError):
    """An artifact is missing from the manifest, missing on disk, or does not match its hash."""


def manifest_path(root: Path | None = None) -> Path:
    return (root or paths.artifacts_dir()) / "manifest.json"


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder (its files' relative paths and contents, in order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


@contextmanager
def _locked(root: Path):
    """Exclusive access to the manifest, so exporters running side by side do not lose entries."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def load(root: Path | None = None) -> dict:
    path = manifest_path(root)
    return json.loads(path.read_text()) if path.exists() else {}


def record(artifact_id: str, path: Path, *, framework: str, precision: str, root: Path | None = None,
           staged_at: Path | None = None, **extra) -> dict:
    """Add or replace one artifact's entry; returns the entry.

    `staged_at`: where the files are now, when they are renamed to `path` only after this call, so
    a reader that sees the artifact at `path` always finds its entry already recorded."""
    root = (root or paths.artifacts_dir()).resolve()
    path = Path(path).resolve()
    contents = Path(staged_at) if staged_at is not None else path
    entry = {
        "path": str(path.relative_to(root)),
        "sha256": sha256_of(contents),
        "bytes": size_of(contents),
        "framework": framework,
        "precision": precision,
        "input_contract": input_contract(root),
        **extra,
    }
    merge({artifact_id: entry}, root)
    return entry


def save_artifact(artifact_id: str, out: Path, content: bytes | None, *, framework: str, precision: str,
                  root: Path, **extra) -> dict:
    """Write an exported model (unless the exporter wrote it already), record it, say so; the entry."""
    if content is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
    entry = record(artifact_id, out, framework=framework, precision=precision, root=root, **extra)
    print(f"{artifact_id}: wrote {out} ({entry['bytes']:,} bytes)")
    return entry


def merge(new_entries: dict, root: Path) -> None:
    """Add or replace these entries as they are (a staged build's, whose files move into `root` next)."""
    with _locked(root):
        entries = {**load(root), **new_entries}
        # Written beside and renamed over: a reader (a polling server) never sees half a file.
        partial = manifest_path(root).with_suffix(".json.partial")
        partial.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
        os.replace(partial, manifest_path(root))


def verify(artifact_id: str, root: Path | None = None) -> Path:
    """The artifact's path, after checking it exists and matches its recorded sha256."""
    root = (root or paths.artifacts_dir()).resolve()
    entry = load(root).get(artifact_id)
    if entry is None:
        raise ManifestError(f"{artifact_id!r} is not in {manifest_path(root)}: run `make export` (or `make train`)")
    path = root / entry["path"]
    if not path.exists():
        raise ManifestError(f"{artifact_id}: {path} is listed in the manifest but missing: rebuild it")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ManifestError(
            f"{artifact_id}: {path} does not match the manifest (sha256 {actual[:12]}..., expected "
            f"{entry['sha256'][:12]}...): refusing to load a modified artifact; rebuild it"
        )
    return path


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    entries = load()
    if not entries:
        raise SystemExit(f"{manifest_path()} is empty or missing: run `make train`")
    print(f"{'artifact':<24}{'framework':<12}{'precision':<10}{'bytes':>10}  check  path")
    for artifact_id, entry in entries.items():
        try:
            verify(artifact_id)
            status = "ok"
        except ManifestError:
            status = "BAD"
        print(f"{artifact_id:<24}{entry['framework']:<12}{entry['precision']:<10}{entry['bytes']:>10}  "
              f"{status:<5}  {entry['path']}")


if __name__ == "__main__":
    main()
