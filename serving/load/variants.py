"""A server variant's own artifacts root: the model files of the main root, linked, and a fresh run folder.

    root = variants.prepare(paths.artifacts_dir(), "throughput")   # artifacts/load/throughput/
    runner.start(root, endpoints, settings=settings.preset("throughput"))

The runner keeps each server's pid, log, rendered config and TorchServe's token under
`<root>/run/`, so two variants running side by side need two roots. Rather than copying models,
a variant root links the few things the servers read (the manifest, the TorchServe model store,
the SavedModel versions, the PyTorch checkpoint and the Keras model (KServe's), the spec and the
test split); every file is still checked against the manifest's sha256 before it is served.
"""
from __future__ import annotations

from pathlib import Path

LINKED = ("manifest.json", "spec.json", "data", "torch", "tensorflow",  # KServe: the Keras model
          "torchserve", "tfserving")


def prepare(root: Path, name: str) -> Path:
    """`<root>/load/<name>/` with links to the model files of `root`; returns that folder."""
    root = Path(root).resolve()
    variant = root / "load" / name
    variant.mkdir(parents=True, exist_ok=True)
    for item in LINKED:
        source, link = root / item, variant / item
        if not source.exists():
            raise FileNotFoundError(f"{source} not found: run `make train export` first")
        if link.is_symlink() or link.exists():
            if link.is_symlink() and link.resolve() == source:
                continue
            link.unlink()
        link.symlink_to(source, target_is_directory=source.is_dir())
    return variant
