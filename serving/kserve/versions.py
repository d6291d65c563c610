"""The model versions the KServe ModelServers serve, the way TF Serving keeps its own: one folder per version.

    <artifacts>/kserve/<model>/<n>/      spec.json, manifest.json and both frameworks' trained
                                         models, a snapshot of the artifacts folder at publish time

Each server serves the newest version whose files match their manifest, and looks again every
POLL_SECONDS (serving/kserve/model.py): a new version is loaded beside the old one, then takes
over, so no request waits or fails. With no folder at all, version 1 is the trained artifacts
folder itself. `make update` snapshots the trained model as the next version; `make update
ACTION=rollback` moves the newest folder aside (to <artifacts>/kserve/retired/), and the servers
fall back to the one before. A version folder appears whole: it is written under a hidden name
and renamed into place.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from core import manifest, paths
from core import spec as specs

# What runs the model per framework: the PyTorch checkpoint eagerly (0.08 ms a call here), the Keras
# model traced once into a tf.function graph (the same weights; called eagerly, Keras spends about
# 5 ms of Python per call, which tripled the server's latency).
PREDICTORS = {"torch": "torch-eager", "tensorflow": "tf-function"}
ARTIFACT_IDS = ("torch_checkpoint", "keras_model")  # the files those read, in every version folder
POLL_SECONDS = 1.0


def base(root: Path) -> Path:
    return root / "kserve" / specs.load(root).model_name


def on_disk(root: Path) -> list[int]:
    """The version numbers under base(root), oldest first (staging folders are not versions)."""
    folder = base(root)
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def newest(root: Path) -> tuple[int, Path]:
    """(version, the artifacts folder it is served from): the newest snapshot, else 1 and `root`."""
    found = on_disk(root)
    return (found[-1], base(root) / str(found[-1])) if found else (1, root)


def snapshot(root: Path) -> int:
    """Write the trained model in `root` as the next version (verified first); its number."""
    version = max(on_disk(root), default=1) + 1
    entries = manifest.load(root)
    staged = base(root) / f".staging-{version}"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for artifact_id in ARTIFACT_IDS:
        source = manifest.verify(artifact_id, root)
        target = staged / entries[artifact_id]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    shutil.copy2(paths.spec_path(root), paths.spec_path(staged))
    (staged / "manifest.json").write_text(json.dumps({a: entries[a] for a in ARTIFACT_IDS}, indent=2) + "\n")
    os.replace(staged, base(root) / str(version))
    return version


def retire(root: Path) -> tuple[int, int]:
    """Move the newest version aside; (the version retired, the one served now)."""
    found = on_disk(root)
    if not found:
        raise FileNotFoundError(f"KServe: no published version under {base(root)}; nothing to roll back to "
                                "(version 1 is the trained artifacts folder)")
    newest_version = found[-1]
    previous = found[-2] if len(found) > 1 else 1
    retired = root / "kserve" / "retired" / base(root).name / f"{newest_version}-{time.strftime('%Y%m%d-%H%M%S')}"
    retired.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(base(root) / str(newest_version)), retired)
    return newest_version, previous
