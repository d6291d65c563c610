"""Publish a new model version to every running server, or roll back to the previous one, without downtime.

    python -m deploy.local.update publish     # make update: export version N+1 and switch every server to it
    python -m deploy.local.update rollback    # make update ACTION=rollback: back to the previous version on each
    python -m deploy.local.update publish --server kserve   # one updater only (torchserve, tfserving, kserve)
    python -m deploy.local.update status      # the versions each server holds and which one answers

Each row of the table of servers (core/servers.py) names its updater (`updater`: an `Updater` below, or any
object with the same three functions); rows naming the same one follow one set of versions and are updated
together, once. `publish`, `rollback` and `status` go through the updaters in the table's order.

TF Serving moves by its version policy (`latest 1`, serving/tfserving/models.config): `publish`
exports the next SavedModel version and waits until the server serves it; `rollback` moves the
newest version folder aside (to artifacts/tfserving/retired/) so the policy falls back to the
previous one. Either way the server loads the new version before it drops the old one.
TorchServe: `publish` builds `digits-v<N>.mar`, registers it over the management API (127.0.0.1,
management key) with a worker, and makes it the default; the previous version stays registered,
so `rollback` is one call that makes it the default again, then unregisters the newer one.
KServe (both ModelServers): `publish` snapshots the trained model as the next version folder,
which each server loads beside the one it serves, then switches to (serving/kserve/versions.py);
`rollback` moves the newest folder aside. Each V2 answer names the version that gave it. Ray Serve's
replicas hold the same model and follow the same folders: when its cluster runs, they are waited for too.
Every archive, SavedModel and snapshot is checked against the manifest before it is served. What TorchServe
holds after a publish or rollback (its versions, and which is the default) is recorded in
`artifacts/torchserve/published.json`; the runner starts TorchServe with exactly that again
(deploy/local/servers.py), so a restart keeps the published version as the default.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from core import manifest, paths
from core import servers as table
from core.registry import named
from serving import endpoints as endpoints_mod
from serving.tfserving import configs as tf_configs
from serving.torchserve import archive
from serving.torchserve.client import read_token

TORCHSERVE_CONFIG = paths.REPO_ROOT / "serving" / "torchserve" / "config.properties"
DRAIN_SECONDS = 2.0  # after a rollback switches the default, before the newer version is unregistered


class UpdateError(RuntimeError):
    """A step of an update failed; the message says which and why."""


# ---- TorchServe --------------------------------------------------------------------------------

class TorchServeVersions:
    """The model's versions on a running TorchServe, through its management API."""

    def __init__(self, root: Path, endpoints=None, timeout: float = 120.0):
        self.root = root
        self.endpoints = endpoints or endpoints_mod.resolve()
        self.base = f"{self.endpoints.url('torchserve_management')}/models"
        self.headers = {"Authorization": f"Bearer {read_token(root, 'management')}"}
        self.timeout = timeout

    def _call(self, method: str, path: str, **params) -> object:
        answer = requests.request(method, self.base + path, headers=self.headers, params=params, timeout=self.timeout)
        if answer.status_code >= 300:
            raise UpdateError(f"TorchServe {method} /models{path}: HTTP {answer.status_code} "
                              f"{answer.text.strip()[:300]}")
        return answer.json()

    def versions(self) -> list[dict]:
        """[{"version": "1.0", "default": True, "ready": True}, ...], oldest first."""
        found = self._call("GET", f"/{self.endpoints.model_name}/all")
        default = self._call("GET", f"/{self.endpoints.model_name}")[0]["modelVersion"]
        return sorted(({"version": m["modelVersion"], "default": m["modelVersion"] == default,
                        "ready": any(w["status"] == "READY" for w in m["workers"])} for m in found),
                      key=lambda v: float(v["version"]))

    def publish(self) -> str:
        """Build, verify, register and make default the next version; returns it."""
        version = f"{int(float(self.versions()[-1]['version'])) + 1}.0"
        mar = archive.build(self.root, version)
        manifest.verify(archive.artifact_id(version), self.root)
        settings = model_settings()
        print(f"torchserve: registering {mar.name} as version {version} ...")
        self._call("POST", "", url=mar.name, model_name=self.endpoints.model_name,
                   initial_workers=settings["minWorkers"], synchronous="true", batch_size=settings["batchSize"],
                   max_batch_delay=settings["maxBatchDelay"], response_timeout=settings["responseTimeout"],
                   startup_timeout=settings["startupTimeout"])
        self._call("PUT", f"/{self.endpoints.model_name}/{version}/set-default")
        self.record()
        print(f"torchserve: version {version} is the default")
        return version

    def record(self) -> None:
        """Write what the server holds now, so its next start serves the same (archive.published_path)."""
        versions = self.versions()
        default = next(v["version"] for v in versions if v["default"])
        archive.record_published(self.root, [v["version"] for v in versions], default)

    def rollback(self) -> str:
        """Make the version before the default the default again and unregister the newer one."""
        versions = [v["version"] for v in self.versions()]
        current = next(v["version"] for v in self.versions() if v["default"])
        older = [v for v in versions if float(v) < float(current)]
        if not older:
            raise UpdateError(f"TorchServe: version {current} is the oldest registered; nothing to roll back to")
        previous = older[-1]
        self._call("PUT", f"/{self.endpoints.model_name}/{previous}/set-default")
        # Requests already routed to the newer version finish before it goes: unregistering it
        # with jobs still queued for it leaves those waiting for their response timeout.
        time.sleep(DRAIN_SECONDS)
        self._call("DELETE", f"/{self.endpoints.model_name}/{current}")
        self.record()
        print(f"torchserve: version {previous} is the default again; {current} unregistered")
        return previous


def model_settings() -> dict:
    """The model's batching and timeout settings from the `models=` line of config.properties."""
    for line in TORCHSERVE_CONFIG.read_text().splitlines():
        if line.startswith("models="):
            (versions,) = json.loads(line.split("=", 1)[1]).values()
            (settings,) = versions.values()
            return settings
    raise UpdateError(f"{TORCHSERVE_CONFIG}: no models= line")


# ---- TF Serving --------------------------------------------------------------------------------

def tfserving_client(endpoints=None):
    from serving.tfserving.client import TFServingRest

    return TFServingRest(endpoints)


def served_versions(endpoints=None) -> list[int]:
    status = tfserving_client(endpoints).status()
    return sorted(int(v["version"]) for v in status["model_version_status"] if v["state"] == "AVAILABLE")


def wait_until_served(version: int, endpoints=None, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served_versions(endpoints) == [version]:
            return
        time.sleep(0.5)
    raise UpdateError(f"TF Serving did not switch to version {version} within {seconds:.0f} s "
                      f"(serving {served_versions(endpoints)}); see artifacts/run/tfserving/server.log")


def tfserving_publish(root: Path, endpoints=None) -> int:
    from serving.tfserving import export

    version = int(export.export(root).name)
    print(f"tfserving: exported version {version}; waiting for the server to serve it ...")
    wait_until_served(version, endpoints)
    print(f"tfserving: serving version {version}")
    return version


def tfserving_rollback(root: Path, endpoints=None) -> int:
    base = tf_configs.base_path(root)
    on_disk = tf_configs.versions(base)
    if len(on_disk) < 2:
        raise UpdateError(f"TF Serving: only version(s) {on_disk} under {base}; nothing to roll back to")
    newest, previous = on_disk[-1], on_disk[-2]
    manifest.verify(tf_configs.artifact_id(previous), root)  # refuse to fall back onto a modified version
    retired = root / "tfserving" / "retired" / base.name / f"{newest}-{time.strftime('%Y%m%d-%H%M%S')}"
    retired.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(base / str(newest)), retired)
    print(f"tfserving: moved version {newest} to {retired}; waiting for version {previous} ...")
    wait_until_served(previous, endpoints)
    print(f"tfserving: serving version {previous} again")
    return previous


# ---- KServe --------------------------------------------------------------------------------------

KSERVE_UPDATER = "deploy.local.update:KSERVE"  # the rows that hold the kserve.Model name this updater


def kserve_clients(root: Path, endpoints=None) -> dict:
    """The V2 REST clients of the servers running over `root` that serve the KServe model versions: every row
    naming the KServe updater (the KServe servers and Ray Serve's replicas: they hold the same kserve.Model,
    which watches the same version folders, serving/rayserve/), each through its V2 REST target
    (core/registry.py). UpdateError when none runs."""
    from core import registry
    from deploy.local import runner

    rest = {name: registry.TARGETS[name] for name in registry.served() if name.endswith("-v2-rest")}
    running = [name for name, target in rest.items() if target.server in table.sharing(KSERVE_UPDATER)
               and runner.read_pid(runner.run_dir(target.server, root)) is not None]
    if not running:
        raise UpdateError(f"no KServe server or Ray Serve cluster runs over {root}: `make serve` first")
    return {name: named(rest[name].predictor)(endpoints, root=root) for name in running}


# Answers asked of each server per look: Ray Serve spreads them over its replicas, each of which switches
# on its own; 8 answers of one version say every replica serves it (each gets some, at random).
ASKS = {"rayserve-v2-rest": 8}


def kserve_versions(root: Path, endpoints=None) -> dict:
    """{target: the version that answers} of the KServe servers and Ray Serve (each V2 answer names its
    version); a server whose answers name several versions (replicas midway) gives them all, a tuple."""
    import numpy as np

    from core import spec as specs

    spec = specs.load(root)
    blank = np.full((1, *spec.item_shape), spec.value_min, np.float32)
    found = {}
    for name, client in kserve_clients(root, endpoints).items():
        answers = {int(client.infer_json(client.request_body(blank))["model_version"])
                   for _ in range(ASKS.get(name, 1))}
        found[name] = answers.pop() if len(answers) == 1 else tuple(sorted(answers))
    return found


def kserve_wait(version: int, root: Path, endpoints=None, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if set(kserve_versions(root, endpoints).values()) == {version}:
            return
        time.sleep(0.5)
    raise UpdateError(f"KServe did not switch to version {version} within {seconds:.0f} s "
                      f"(answering {kserve_versions(root, endpoints)}); see artifacts/run/kserve-*/server.log")


def kserve_publish(root: Path, endpoints=None) -> int:
    from serving.kserve import versions

    version = versions.snapshot(root)
    print(f"kserve: wrote version {version} ({versions.base(root) / str(version)}); waiting for both servers ...")
    kserve_wait(version, root, endpoints)
    print(f"kserve: both servers answer with version {version}")
    return version


def kserve_rollback(root: Path, endpoints=None) -> int:
    from serving.kserve import versions

    retired, previous = versions.retire(root)
    print(f"kserve: moved version {retired} aside; waiting for version {previous} ...")
    kserve_wait(previous, root, endpoints)
    print(f"kserve: both servers answer with version {previous} again")
    return previous


# ---- the updaters the rows name --------------------------------------------------------------------

@dataclass(frozen=True)
class Updater:
    """How servers take a new model version: each function takes (artifacts root, endpoints or None)."""
    name: str  # what `--server` calls it, and its key in `status`
    publish: Callable
    rollback: Callable
    status: Callable


TORCHSERVE = Updater("torchserve", lambda root, endpoints: TorchServeVersions(root, endpoints).publish(),
                     lambda root, endpoints: TorchServeVersions(root, endpoints).rollback(),
                     lambda root, endpoints: TorchServeVersions(root, endpoints).versions())
TFSERVING = Updater("tfserving", tfserving_publish, tfserving_rollback,
                    lambda root, endpoints: served_versions(endpoints))
KSERVE = Updater("kserve", kserve_publish, kserve_rollback, kserve_versions)


def updaters() -> dict[str, Updater]:
    """{name: updater} of every row of core/servers.py that names one, in the table's order, each once."""
    found = {}
    for row in table.SERVERS.values():
        if row.updater:
            updater = named(row.updater)
            found.setdefault(updater.name, updater)
    return found


# ---- command line ------------------------------------------------------------------------------

def status(root: Path, endpoints=None) -> dict:
    return {name: updater.status(root, endpoints) for name, updater in updaters().items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("publish", "rollback", "status"))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--server", choices=("all", *updaters()), default="all",
                        help="which updater to run (default: all; kserve: both KServe servers and Ray Serve)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        if args.action == "status":
            print(json.dumps(status(root), indent=2))
            return
        for name, updater in updaters().items():
            if args.server in ("all", name):
                (updater.publish if args.action == "publish" else updater.rollback)(root, None)
    except (UpdateError, archive.PublishedError, manifest.ManifestError, FileNotFoundError,
            requests.RequestException) as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
