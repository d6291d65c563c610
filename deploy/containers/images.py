"""Build the images with the artifacts baked in (deploy/docker/*.Dockerfile) through the Docker SDK.

    python -m deploy.containers.images build     # digits-<image>:local, one per Dockerfile of core/servers.py's rows

(`digits-` is the project's name: the tags stay the same whatever model the images hold.)

The Dockerfiles are those of the model trained into the artifacts folder: the committed ones for
the built-in task, else the ones deploy/containers/configs.py renders under
<artifacts>/run/containers/docker/ (the model's name in the copied paths and the health check).
Each build gets a small staged context holding only the files its Dockerfile copies, at the
same relative paths as in the repository, so `docker build -f deploy/docker/<name>.Dockerfile .`
from the repo root and this command produce the same image. The Kubernetes manifests run these;
the images of rows marked `built_only` (digits-kserve:local for both KServe services, digits-rayserve:local)
exist only as this build, so every path builds them.
"""
from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

from core import paths
from deploy.containers import artifacts, cli, configs, plan, preflight

DOCKERFILES = plan.REPO / "deploy" / "docker"


def copied_sources(dockerfile: Path) -> list[str]:
    """The repository-relative sources of every COPY line (the build context it needs)."""
    sources = []
    for line in re.sub(r"\\\n\s*", " ", dockerfile.read_text()).splitlines():  # continuation lines joined
        words = line.split()
        if words and words[0] == "COPY":
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def stage(dockerfile: Path, root: Path, into: Path) -> Path:
    """A build context in `into`: the Dockerfile plus its COPY sources (artifacts/ taken from `root`)."""
    for source in copied_sources(dockerfile):
        origin = root / Path(source).relative_to("artifacts") if source.startswith("artifacts/") else plan.REPO / source
        target = into / source
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if origin.is_dir() else shutil.copy2)(origin, target)
    shutil.copy2(dockerfile, into / "Dockerfile")
    return into


def build(root: Path, names=None) -> list[str]:
    """Build the images `names` (default: those of every service whose artifacts exist); their tags."""
    preflight.require("docker", doing="build the images")
    client = preflight.docker_client()
    ready = artifacts.ensure(root)
    dockerfiles = configs.render(root) / "docker"
    built = []
    for name in names or dict.fromkeys(plan.image_name(service) for service in ready):
        dockerfile = dockerfiles / f"{name}.Dockerfile"
        with tempfile.TemporaryDirectory(prefix=f"digits-{name}-") as context:
            stage(dockerfile, root, Path(context))
            print(f"{plan.baked_image(name)}: building from {dockerfile}")
            client.images.build(path=context, dockerfile="Dockerfile", tag=plan.baked_image(name), rm=True)
        built.append(plan.baked_image(name))
    return built


def build_only(root: Path, services) -> list[str]:
    """Build the images of `services` that exist only as a local build (no registry has them); their tags."""
    names = [name for name in plan.build_only_images() if name in map(plan.image_name, services)]
    return build(root, names) if names else []


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("build",))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    import docker

    def step() -> None:
        for image in build((args.artifacts or paths.artifacts_dir()).resolve()):
            print(f"built {image}")

    cli.guarded(step, docker.errors.BuildError, docker.errors.APIError)


if __name__ == "__main__":
    main()
