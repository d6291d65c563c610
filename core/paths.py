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


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` so a reader sees the old file or the whole new one, never a part.

    (A temporary file next to it, then a rename: what a crash or a concurrent reader may see.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path
