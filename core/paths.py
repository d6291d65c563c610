"""Where generated files live.

Everything the project generates goes under one artifacts folder: `<repo>/artifacts` by default,
or the folder named by the environment variable `DIGITS_ARTIFACTS` (tests point it at a temporary
folder so they never touch a user's trained models). Functions only: nothing is created at import.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def artifacts_dir() -> Path:
    """The artifacts folder in force now (honours `DIGITS_ARTIFACTS`)."""
    return Path(os.environ.get("DIGITS_ARTIFACTS", REPO_ROOT / "artifacts")).resolve()


def spec_path(root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "spec.json"


def split_path(root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "data" / "split.npz"


def torch_checkpoint_path(root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "torch" / "model.pt"


def keras_model_path(root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "tensorflow" / "model.keras"


def metrics_path(root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "metrics.json"


def tensorboard_dir(framework: str, root: Path | None = None) -> Path:
    return (root or artifacts_dir()) / "tensorboard" / framework


def write_atomic(path: Path, text: str | bytes, mode: int | None = None) -> Path:
    """Write `text` to `path` so a reader sees the old file or the whole new one, never a part.

    (A temporary file next to it, then a rename: what a crash or a concurrent reader may see.)
    `mode` (e.g. 0o600 for a key): the file has it from its creation on, never a wider one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = text.encode() if isinstance(text, str) else text
    temporary.unlink(missing_ok=True)  # left by a crash: O_EXCL below creates it afresh with `mode`
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(temporary, mode)  # exactly `mode`, whatever the umask (created no wider than it)
    os.replace(temporary, path)
    return path


def unsupported_path(root: Path, name: str) -> Path:
    """Why step `name` could not build for this network, when it could not (core/registry.py NotSupported):
    the build graph (deploy/local/build.py) writes it, the page's export reads it."""
    return root / "built" / f"{name}.unsupported"
