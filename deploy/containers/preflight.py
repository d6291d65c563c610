"""What each container path needs, checked before anything starts: a Docker engine, the Compose
plugin, kubectl and a reachable cluster. A path that lacks something stops with one message
naming everything that is missing and how to get it.

    python -m deploy.containers.preflight                  # report what this machine has, for every path
    python -m deploy.containers.preflight --require docker # exit 1 naming what DEPLOY=docker lacks
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

NEEDS = {
    "docker": ("engine",),
    "compose": ("docker_cli", "engine", "compose_plugin"),
    "k8s": ("kubectl", "cluster", "engine"),  # the engine builds the images the manifests run
}


class Missing(RuntimeError):
    """A container path cannot run here; the message names what is missing."""


def docker_client():
    """A Docker SDK client that has answered a ping; Missing when no engine answers."""
    import docker

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except docker.errors.DockerException as error:
        raise Missing(f"a running Docker engine (none answers at {where}: {error}); start one, "
                      "or point DOCKER_HOST at one") from None
    return client


def _first_line(answer: subprocess.CompletedProcess | None, fallback: str) -> str:
    if answer is None:
        return fallback
    lines = [line.strip() for line in (answer.stderr + "\n" + answer.stdout).splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {answer.returncode}"


def _run(command: list, timeout: float = 15) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_docker_cli() -> None:
    if shutil.which("docker") is None:
        raise Missing("the docker command-line client (not on PATH); install Docker")


def check_compose_plugin() -> None:
    if shutil.which("docker") is None:
        raise Missing("the Docker Compose plugin (no docker client on PATH to run `docker compose`)")
    answer = _run(["docker", "compose", "version"])
    if answer is None or answer.returncode != 0:
        raise Missing("the Docker Compose plugin (`docker compose version` failed: "
                      f"{_first_line(answer, 'no answer')}); install docker-compose-plugin")


def check_kubectl() -> None:
    if shutil.which("kubectl") is None:
        raise Missing("kubectl (not on PATH); install it and point it at a cluster")


def check_cluster() -> None:
    if shutil.which("kubectl") is None:
        raise Missing("a Kubernetes cluster (no kubectl on PATH to reach one)")
    context = _run(["kubectl", "config", "current-context"])
    if context is None or context.returncode != 0 or not context.stdout.strip():
        # Without a context kubectl falls back to http://localhost:8080, where TorchServe may answer.
        raise Missing("a Kubernetes cluster (kubectl has no current context: no KUBECONFIG, no ~/.kube/config); "
                      "start one (kind, minikube) or set KUBECONFIG")
    answer = _run(["kubectl", "get", "--raw", "/readyz", "--request-timeout=5s"], timeout=20)
    if answer is None or answer.returncode != 0:
        raise Missing(f"a reachable Kubernetes cluster (kubectl context {context.stdout.strip()!r}: "
                      f"`kubectl get --raw /readyz` failed: {_first_line(answer, 'no answer in 20 s')}); "
                      "start it, or set KUBECONFIG to one that runs")


CHECKS = {"docker_cli": check_docker_cli, "engine": lambda: docker_client().close(),
          "compose_plugin": check_compose_plugin, "kubectl": check_kubectl, "cluster": check_cluster}


def missing(path: str, needs=None) -> list[str]:
    """What `path` (docker, compose, k8s) lacks on this machine, in words; empty when all is there.

    `needs` narrows the checks (e.g. removing a deployment needs no engine).
    """
    found = []
    for need in needs or NEEDS[path]:
        try:
            CHECKS[need]()
        except Missing as error:
            found.append(str(error))
    return found


def require(path: str, needs=None, doing: str | None = None) -> None:
    """Raise Missing naming everything `path` lacks (`doing` words the action, for the message)."""
    lacking = missing(path, needs)
    if lacking:
        raise Missing(f"cannot {doing or f'deploy with DEPLOY={path}'}: this machine lacks\n  - "
                      + "\n  - ".join(lacking))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--require", choices=tuple(NEEDS), help="check one path only; exit 1 naming what is missing")
    args = parser.parse_args(argv)
    if args.require:
        try:
            require(args.require)
        except Missing as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"DEPLOY={args.require}: everything it needs is here")
        return
    for path in NEEDS:
        lacking = missing(path)
        print(f"DEPLOY={path}: " + ("ready" if not lacking else "missing\n  - " + "\n  - ".join(lacking)))


if __name__ == "__main__":
    main()
