"""Build the TorchServe model archive `<model>.mar` from the trained PyTorch checkpoint.

    python -m serving.torchserve.archive                 # -> artifacts/torchserve/model-store/<model>.mar

(<model>: the spec's model name, `digits` for the built-in task.)

Steps: verify the checkpoint against the manifest, load it, trace it to TorchScript (checked
against the eager network on the test split), stage what the handler needs (spec.json, the
input-contract and preprocessing modules from training/ and serving/), run
torch-model-archiver, and record the .mar in the manifest as `torchserve_mar`. A later version
(`build(root, version="2.0")`, used by deploy/local/update.py) lands next to it as `<model>-v2.0.mar`,
recorded as `torchserve_mar_v2.0`.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from core import manifest, paths
from core import spec as specs
from training import data

REPO = paths.REPO_ROOT
HANDLER = Path(__file__).with_name("handler.py")
# The modules the handler imports, shipped inside the archive with their package folders.
# core/servers.py: core/spec.py reads the default ports from it.
SHIPPED_MODULES = ("core/__init__.py", "core/spec.py", "core/servers.py", "core/contract.py",
                   "training/__init__.py", "training/spec.py", "training/preprocess.py")
MAR_VERSION = "1.0"


class PublishedError(ValueError):
    """The record of published versions contradicts itself."""


# What TorchServe holds after a publish or rollback (deploy/local/update.py) is recorded here, so that its
# next start (deploy/local/servers.py) serves the same versions with the same default.
def published_path(root: Path) -> Path:
    """Where the TorchServe versions in service (and the default) are recorded for the next start."""
    return root / "torchserve" / "published.json"


def record_published(root: Path, versions: list[str], default: str) -> None:
    paths.write_atomic(published_path(root), json.dumps({"versions": versions, "default": default}, indent=2) + "\n")


def published(root: Path) -> dict:
    """{"versions": [...], "default": ...} as last published; version 1.0 alone when nothing was."""
    record = published_path(root)
    if not record.exists():
        return {"versions": [MAR_VERSION], "default": MAR_VERSION}
    found = json.loads(record.read_text())
    if found.get("default") not in found.get("versions", []):
        raise PublishedError(f"{record}: the default {found.get('default')!r} is not among {found.get('versions')}")
    return found


def model_store(root: Path) -> Path:
    return root / "torchserve" / "model-store"


def store_only_urls(store: str | Path) -> str:
    """TorchServe's `allowed_urls` for archives in `store` only: one regex, no http(s), no other folder.

    TorchServe downloads (copies) any archive whose URL matches `allowed_urls` into its model store
    and loads it (its default allows every http, https and file URL). Registering a file by its
    name in the store is not a URL and stays possible; everything else is refused with a 4xx.
    Characters are escaped as [c], not with a backslash, which a .properties file would eat.
    """
    text = str(store).rstrip("/")
    if any(c in text for c in "[]^\\"):
        raise ValueError(f"model store path {text!r}: characters that cannot be put into a regex class")
    escaped = "".join(c if c.isalnum() or c in "/_-" else f"[{c}]" for c in text)
    return f"file://{escaped}/[^/]+[.]mar"


def mar_path(root: Path, version: str = MAR_VERSION) -> Path:
    """The archive of one model version: <model>.mar for the first, <model>-v<version>.mar after."""
    name = specs.load(root).model_name
    return model_store(root) / (f"{name}.mar" if version == MAR_VERSION else f"{name}-v{version}.mar")


def artifact_id(version: str = MAR_VERSION) -> str:
    """The manifest id of one archive version."""
    return "torchserve_mar" if version == MAR_VERSION else f"torchserve_mar_v{version}"


def build_torchscript(root: Path, out: Path) -> Path:
    """The verified checkpoint as a TorchScript file, checked against the eager network."""
    import torch

    from training.model_torch import load_checkpoint

    model, _ = load_checkpoint(manifest.verify("torch_checkpoint", root))
    test_x = torch.from_numpy(data.load_split(paths.split_path(root))["test"].x)
    # Traced, not scripted: the network has no data-dependent control flow, and tracing does not
    # need the Python-side config object to be scriptable. Traced at batch 4; the check below
    # runs the whole test split, proving any batch size works.
    with torch.inference_mode():
        scripted = torch.jit.trace(model, test_x[:4])
    with torch.inference_mode():
        diff = float((scripted(test_x) - model(test_x)).abs().max())
    if not np.isfinite(diff) or diff > 1e-6:
        raise SystemExit(f"TorchScript differs from the eager network by {diff:g} (> 1e-6): not archiving")
    out.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out))
    print(f"torchscript: {out} (max abs diff to eager on the test split {diff:.1e})")
    return out


def stage_extra_files(root: Path, stage: Path) -> Path:
    """A folder whose contents torch-model-archiver copies into the archive's root."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copy2(paths.spec_path(root), stage / "spec.json")
    for relative in SHIPPED_MODULES:
        (stage / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, stage / relative)
    return stage


def build(root: Path, version: str = MAR_VERSION) -> Path:
    build_dir = root / "torchserve" / "build"
    name = specs.load(root).model_name
    serialized = build_torchscript(root, build_dir / f"{name}.pt")
    extra = stage_extra_files(root, build_dir / "extra")
    staging = build_dir / "mar"  # the archiver names its output <model-name>.mar: rename it after
    staging.mkdir(parents=True, exist_ok=True)
    model_store(root).mkdir(parents=True, exist_ok=True)
    archiver = Path(sys.executable).with_name("torch-model-archiver")
    command = [str(archiver), "--model-name", name, "--version", version,
               "--serialized-file", str(serialized), "--handler", str(HANDLER),
               "--extra-files", str(extra), "--export-path", str(staging), "--force"]
    print("archive: " + " ".join(command[1:5]) + " ...")
    subprocess.run(command, check=True)
    out = mar_path(root, version)
    shutil.move(staging / f"{name}.mar", out)
    entry = manifest.record(artifact_id(version), out, framework="torch", precision="fp32", root=root,
                            format="torchscript", mar_version=version)
    print(f"archive: {out} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}...)")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    try:
        build((args.artifacts or paths.artifacts_dir()).resolve())
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
