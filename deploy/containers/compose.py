"""Run deploy/docker-compose.yml with Docker Compose.

    python -m deploy.containers.compose up       # make deploy-all DEPLOY=compose
    python -m deploy.containers.compose down     # make down DEPLOY=compose

`up` checks for the docker client, a running engine and the Compose plugin (naming whatever is
missing), verifies or builds the artifacts, builds the images that exist only as a build (images.py, from
this artifacts folder: digits-kserve:local for the two KServe services, digits-rayserve:local), then runs
`docker compose up -d --wait`, which returns once every health check passes. The artifacts folder, the
DIGITS_* port overrides, the model's name (DIGITS_MODEL_NAME, from the artifacts folder's spec) and the
folder of its container configs (DIGITS_CONTAINER_CONFIG: deploy/config for the built-in task, else the
ones deploy/containers/configs.py renders under <artifacts>/run/containers/config) reach the compose
file as environment variables, so a model of your own is served under its own name. The demo
service is left out while artifacts/web/ is absent.
"""
from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from core import paths
from core import spec as specs
from deploy.containers import artifacts, cli, configs, images, launch, preflight
from serving import endpoints as endpoints_mod

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"
PROJECT = "digits"  # the compose project: the project's name, whatever model it serves


def command(*args: str) -> list[str]:
    return ["docker", "compose", "--file", str(COMPOSE_FILE), "--project-name", PROJECT, *args]


def variables(root: Path) -> dict:
    """What the compose file interpolates for artifacts folder `root` (besides the port overrides)."""
    return {"DIGITS_ARTIFACTS": str(root), "DIGITS_MODEL_NAME": specs.load(root).model_name,
            "DIGITS_CONTAINER_CONFIG": str(configs.folder(root) / "config")}


def environment(root: Path, model: bool = True) -> dict:
    """The environment `docker compose` runs with; `model=False`: no spec needed (down)."""
    env = {**os.environ, **endpoints_mod.resolve().as_environment(), "DIGITS_ARTIFACTS": str(root)}
    return {**env, **variables(root)} if model else env


def up(root: Path, timeout: int = 300) -> None:
    preflight.require("compose")
    services = artifacts.ensure(root)
    configs.render(root)
    # Built here, staged from `root`: the compose file's own `build:` reads the repository's artifacts/.
    images.build_only(root, services)
    subprocess.run(command("up", "--detach", "--wait", "--wait-timeout", str(timeout), *services),
                   env=environment(root), check=True)
    endpoints = endpoints_mod.resolve(root=root)
    print("\nendpoints (compose project 'digits'):")
    for line in launch.endpoint_lines(endpoints, None, root, names=services):
        print(f"  {line}")


def down(root: Path) -> None:
    preflight.require("compose")
    # The compose project names the containers: down needs no model (nor a trained artifacts folder).
    subprocess.run(command("down", "--remove-orphans"), env=environment(root, model=False), check=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds to wait for the health checks (default: 300)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    cli.guarded(lambda: up(root, args.timeout) if args.action == "up" else down(root))


if __name__ == "__main__":
    main()
