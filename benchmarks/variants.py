"""A server variant's own artifacts root: the model files of the main root, linked, and a fresh run folder.

    root = variants.prepare(paths.artifacts_dir(), "throughput")   # artifacts/load/throughput/
    runner.start(root, endpoints, settings=settings.preset("throughput"))

The runner keeps each server's pid, log, rendered config and TorchServe's token under
`<root>/run/`, so two variants running side by side need two roots. Rather than copying models,
a variant root links the few things the servers read (the manifest, the spec and the test split, and the
folder of each model server's model file: the TorchServe model store, the SavedModel versions, the PyTorch
checkpoint and the Keras model); every file is still checked against the manifest's sha256 before it is
served. The page is not linked: a variant serves the model only.
"""
from __future__ import annotations

from pathlib import Path

from core import manifest, registry, servers

SHARED = ("manifest.json", "spec.json", "data")


def model_folders(root: Path) -> list[str]:
    """The top folder of the file each model server's targets run (core/servers.py, core/registry.py), as
    `root`'s manifest places it: torchserve/, tfserving/, torch/, tensorflow/."""
    folders = []
    for name in registry.served():
        if registry.TARGETS[name].server in servers.model_servers():
            try:
                path = registry.artifact_path(registry.artifact_id(name, root), root)
            except manifest.ManifestError as error:
                raise FileNotFoundError(f"{error} (a variant links it): run `make train export` first") from None
            folders.append(path.relative_to(root).parts[0])
    return list(dict.fromkeys(folders))


def prepare(root: Path, name: str) -> Path:
    """`<root>/load/<name>/` with links to the model files of `root`; returns that folder."""
    root = Path(root).resolve()
    variant = root / "load" / name
    variant.mkdir(parents=True, exist_ok=True)
    for item in SHARED:  # first: the manifest says where the model files are
        _link(root / item, variant / item)
    for item in model_folders(root):
        _link(root / item, variant / item)
    return variant


def _link(source: Path, link: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: run `make train export` first")
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == source:
            return
        link.unlink()
    link.symlink_to(source, target_is_directory=source.is_dir())
