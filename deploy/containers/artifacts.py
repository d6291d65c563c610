"""The artifacts the containers serve: verified against the manifest, built when missing or stale.

TorchServe needs the archive and TF Serving a SavedModel version; both come from the build graph
(deploy/local/build.py, the steps `make deploy-all` runs) over the model trained in the folder,
whose checkpoint and Keras model (training's outputs, built first) the two KServe servers serve.
The browser demo needs artifacts/web/ (the graph's export-web step); without a finished one the
demo service is left out with a note.
"""
from __future__ import annotations

from pathlib import Path

from core import paths


class ArtifactError(RuntimeError):
    """An artifact is missing or does not match the manifest, and cannot be built here."""


def web_ready(root: Path) -> bool:
    """Whether the demo page was built, whole, into `root` (a page that failed midway is not)."""
    from web.tfjs.export import is_built

    return is_built(root)


def ensure(root: Path) -> list[str]:
    """Verify (building what is missing or stale) the servers' artifacts; the services that can start."""
    from deploy.local import build, servers

    if not paths.spec_path(root).exists():
        raise ArtifactError(f"{paths.spec_path(root)} not found: train first (`make train`)")
    try:
        build.ensure(root, only=("export-torchserve", "export-tfserving"))
    except build.BuildError as error:
        raise ArtifactError(str(error)) from None
    ready = ["torchserve", "tfserving", *servers.KSERVE, "rayserve"]
    if web_ready(root):
        ready.append("web")
    else:
        print(f"artifacts: the demo page is not built in {root / 'web'}: the browser demo is left out "
              "(`make export-web` builds it)")
    return ready
