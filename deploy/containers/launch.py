"""Run the plan (plan.py) on a Docker engine through the Docker SDK for Python.

    python -m deploy.containers.launch up       # make deploy-all DEPLOY=docker
    python -m deploy.containers.launch status
    python -m deploy.containers.launch down     # make down DEPLOY=docker

`up` checks that an engine answers, verifies (or builds) the artifacts, pulls a missing official
image, builds the images that exist only as a build (images.py: digits-kserve:local for the KServe servers,
digits-rayserve:local), starts each service as a container `digits-<service>` with the artifacts bind-mounted read-only,
waits until Docker reports every health check healthy, and prints the endpoints. Containers that
already run the same image are reused, so a second `up` only waits. `down` removes exactly the
containers carrying the project's label. Ports, model name and mounts come from the spec through
plan.py, the same source tests/deploy checks deploy/docker-compose.yml against: a model of your
own (`make deploy-all DATA=mine.npz DEPLOY=docker`) is served under its own name, with the configs
deploy/containers/configs.py renders for it under <artifacts>/run/containers/.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core import paths
from core import servers as table
from deploy.containers import artifacts, cli, configs, fleet, images, plan, preflight
from serving import endpoints as endpoints_mod

NANOSECONDS = 1_000_000_000


class LaunchError(RuntimeError):
    """A container did not become healthy; the message holds the tail of its log."""


def run_options(service: plan.Service, endpoints) -> dict:
    """Keyword arguments of `client.containers.run` for one service (no engine needed to build them)."""
    from docker.types import Mount

    limits = plan.limits(service.name)
    timing = service.health_timing
    return {
        "image": service.image, "name": service.container_name, "detach": True,
        "entrypoint": service.entrypoint, "command": service.command, "user": service.user,
        "working_dir": service.working_dir, "environment": dict(service.environment),
        "ports": {f"{port}/tcp": binding for port, binding in plan.published(service, endpoints).items()},
        "mounts": [Mount(target=m.target, source=str(m.source), type="bind", read_only=m.read_only)
                   for m in service.mounts],
        "read_only": True, "tmpfs": dict(service.tmpfs), "shm_size": service.shm_size, "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": limits["memory"], "mem_reservation": limits["reserve"],
        "nano_cpus": int(float(limits["cpus"]) * NANOSECONDS),
        "healthcheck": {"test": service.health, "interval": timing["interval"] * NANOSECONDS,
                        "timeout": timing["timeout"] * NANOSECONDS, "retries": timing["retries"],
                        "start_period": timing["start_period"] * NANOSECONDS},
        "labels": {plan.LABEL: service.name}, "restart_policy": {"Name": "unless-stopped"},
    }


def _ensure_image(client, image: str) -> None:
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        print(f"{image}: pulling (once; a few hundred MB)")
        name, _, digest = image.partition("@")  # name:tag@sha256:...: the digest is what is pulled
        repository, _, tag = name.partition(":")
        client.images.pull(repository, tag=digest or tag or "latest")


def _start(client, service: plan.Service, endpoints):
    """The service's container, reused when it already runs this image, else (re)created."""
    import docker

    try:
        existing = client.containers.get(service.container_name)
    except docker.errors.NotFound:
        existing = None
    if existing is not None:
        if existing.status == "running" and service.image in existing.image.tags:
            print(f"{service.name}: already running ({existing.short_id})")
            return existing
        existing.remove(force=True)
    _ensure_image(client, service.image)
    container = client.containers.run(**run_options(service, endpoints))
    print(f"{service.name}: started {service.container_name} ({service.image}, {container.short_id})")
    return container


def wait_healthy(container, timeout: float) -> float:
    """Seconds until Docker reports the container healthy; LaunchError when it exits or time runs out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return time.monotonic() - start
        if state["Status"] in ("exited", "dead") or health == "unhealthy":
            break
        time.sleep(1)
    log = container.logs(tail=40).decode(errors="replace")
    raise LaunchError(f"{container.name} is not healthy after {time.monotonic() - start:.0f} s "
                      f"(state {container.attrs['State']['Status']}); last log lines:\n{log}")


def copy_torchserve_key(container, root: Path) -> Path | None:
    """TorchServe's key file, copied where serving/torchserve/client.py looks for it."""
    result = container.exec_run(["cat", f"{plan.TS_WORKDIR}/key_file.json"], user=plan.user("torchserve"))
    if result.exit_code != 0:
        return None
    json.loads(result.output)  # refuse to write anything that is not the key file
    # Created 0600 and renamed into place: never readable by others, not for a moment.
    return paths.write_atomic(root / "run" / "torchserve" / "key_file.json", result.output, mode=0o600)


def endpoint_lines(endpoints, key_file: Path | None, root: Path, names=None) -> list[str]:
    """Where each model server's targets answer (their addresses in core/registry.py), with what to know of it,
    and where the page is: one row of core/servers.py after the other (`names`: only those services)."""
    lines = []
    for service in fleet.services(root):
        if names is not None and service.name not in names:
            continue
        row = table.SERVERS[service.name]
        if row.optional:  # the page: its address only
            lines.append(f"{table.label(row.name)}: " + ", ".join(f"{endpoints.url(key)}/" for key in row.ports))
            continue
        lines.append(f"{table.label(row.name)} ({row.name}):")
        lines += [f"  {line}" for line in plan.answers(row.name, root, endpoints)]
        lines += [f"  {note}" for note in service.notes]
        if row.name == "torchserve" and key_file:
            lines.append(f"  token copied to {key_file}")
    return lines


def up(root: Path, timeout: float = 300.0) -> dict:
    """Start every service whose artifacts exist; {service: seconds to healthy}."""
    preflight.require("docker")  # first: no engine, no work
    client = preflight.docker_client()
    ready = artifacts.ensure(root)
    configs.render(root)  # the model's container configs (the committed ones for the built-in task)
    endpoints = endpoints_mod.resolve(root=root)
    images.build_only(root, ready)
    started = {s.name: _start(client, s, endpoints) for s in fleet.services(root) if s.name in ready}
    times = {}
    for name, container in started.items():
        times[name] = wait_healthy(container, timeout)
        print(f"{name}: healthy after {times[name]:.1f} s")
    key_file = copy_torchserve_key(started["torchserve"], root) if "torchserve" in started else None
    print("\nendpoints (containers):")
    for line in endpoint_lines(endpoints, key_file, root, names=started):
        print(f"  {line}")
    return times


def down() -> list[str]:
    """Remove every container with the project's label; their names."""
    preflight.require("docker")
    client = preflight.docker_client()
    removed = []
    for container in client.containers.list(all=True, filters={"label": plan.LABEL}):
        container.remove(force=True)
        removed.append(container.name)
        print(f"removed {container.name}")
    if not removed:
        print("nothing to remove: no digits container on this engine")
    return removed


def status() -> None:
    preflight.require("docker")
    client = preflight.docker_client()
    containers = client.containers.list(all=True, filters={"label": plan.LABEL})
    for container in containers:
        health = container.attrs["State"].get("Health", {}).get("Status", "no health check")
        print(f"{container.name}: {container.status}, {health}")
    if not containers:
        print("no digits container on this engine")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for each container to be healthy (default: 300)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    actions = {"up": lambda: up(root, args.timeout), "down": down, "status": status}
    cli.guarded(actions[args.action], LaunchError)


if __name__ == "__main__":
    main()
