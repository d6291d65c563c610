"""The artifacts the containers serve: verified against the manifest, built when missing or stale.

Each model server with a container (core/servers.py) needs what its targets (core/registry.py) are built
from: TorchServe the archive, TF Serving a SavedModel version, KServe and Ray Serve training's checkpoint and
Keras model; the build graph (deploy/local/build.py, the steps `make deploy-all` runs) brings those steps up
to date over the model trained in the folder. The page's server (an optional row) needs artifacts/web/ (the
graph's export-web step); without a finished one the demo service is left out with a note.
"""
from __future__ import annotations

from pathlib import Path

from core import paths, registry, selection
from core import servers as table


class ArtifactError(RuntimeError):
    """An artifact is missing or does not match the manifest, and cannot be built here."""


def web_ready(root: Path) -> bool:
    """Whether the demo page was built, whole, into `root` (a page that failed midway is not)."""
    from web.tfjs.export import is_built

    return is_built(root)


def ensure(root: Path) -> list[str]:
    """Verify (building what is missing or stale) the servers' artifacts; the services that can start."""
    from deploy.local import build

    if not paths.spec_path(root).exists():
        raise ArtifactError(f"{paths.spec_path(root)} not found: train first (`make train`)")
    rows = table.with_container()
    served = [name for name in registry.served() if registry.TARGETS[name].server in rows]
    try:
        build.ensure(root, only=selection.steps(served))
    except build.BuildError as error:
        raise ArtifactError(str(error)) from None
    ready = [name for name, row in rows.items() if not row.optional]
    for name in (name for name, row in rows.items() if row.optional):
        if web_ready(root):
            ready.append(name)
        else:
            print(f"artifacts: the demo page is not built in {root / 'web'}: the browser demo ({name}) is left "
                  "out (`make export-web` builds it)")
    return ready
