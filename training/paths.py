"""Where generated files live.

Everything the project generates goes under one artifacts folder: `<repo>/artifacts` by default,
or the folder named by the environment variable `DIGITS_ARTIFACTS` (tests point it at a temporary
folder so they never touch a user's trained models). Functions only: nothing is created here.
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
