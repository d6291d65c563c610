"""The artifacts the containers serve: verified against the manifest, built when missing.

TorchServe needs the archive (serving/torchserve/archive.py) and TF Serving at least one
SavedModel version (serving/tfserving/export.py); both are built here from the trained models
when absent, exactly as the local runner's `make` steps would. The browser demo needs
artifacts/web/ (built by the TF.js target); without it the demo service is left out with a note.
"""
from __future__ import annotations

from pathlib import Path

from serving.tfserving import configs as tf_configs
from serving.torchserve import archive
from training import manifest, paths


class ArtifactError(RuntimeError):
    """An artifact is missing or does not match the manifest, and cannot be built here."""


def web_ready(root: Path) -> bool:
    return (root / "web" / "index.html").is_file()


def ensure(root: Path) -> list[str]:
    """Verify (building what is missing) the servers' artifacts; the services that can start."""
    if not paths.spec_path(root).exists():
        raise ArtifactError(f"{paths.spec_path(root)} not found: train first (`make train`)")
    try:
        manifest.verify("torchserve_mar", root)
    except manifest.ManifestError:
        print("artifacts: building the TorchServe archive (python -m serving.torchserve.archive)")
        _build(lambda: archive.build(root))
    try:
        versions = tf_configs.verified_versions(root)
    except manifest.ManifestError as error:
        raise ArtifactError(str(error)) from None
    if not versions:
        print("artifacts: exporting the TF Serving SavedModel (python -m serving.tfserving.export)")
        from serving.tfserving import export

        _build(lambda: export.export(root))
    ready = ["torchserve", "tfserving"]
    if web_ready(root):
        ready.append("web")
    else:
        print(f"artifacts: {root / 'web' / 'index.html'} not built: the browser demo is left out "
              "(build the TF.js demo first to serve it)")
    return ready


def _build(step) -> None:
    try:
        step()
    except (manifest.ManifestError, FileNotFoundError) as error:
        raise ArtifactError(f"{error} (train first: `make train`)") from None
