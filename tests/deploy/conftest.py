"""Helpers for the static deploy/ checks: the compose file as Compose itself would read it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from training import paths

DEPLOY = paths.REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value, environ: dict):
    """Compose's `${NAME}` / `${NAME:-default}` substitution, applied to every string in `value`."""
    if isinstance(value, str):
        def substitute(match):
            name, default = match.group(1), match.group(2)
            if environ.get(name):
                return environ[name]
            if default is None:
                raise KeyError(f"{name} has no default in the compose file")
            return default
        return VARIABLE.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    return value


def parse_port(text: str) -> tuple[str, int, int]:
    """"host_ip:host_port:container_port" -> (host_ip, host_port, container_port)."""
    host_ip, host_port, container_port = text.rsplit(":", 2)
    return host_ip, int(host_port), int(container_port.split("/")[0])


def bind_source(source: str) -> Path:
    """A bind mount's source as Compose resolves it: relative to the compose file's folder."""
    return (COMPOSE_FILE.parent / source).resolve()


@pytest.fixture(scope="session")
def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def compose_for():
    """compose_for(environ) -> the compose file interpolated with that environment."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return lambda environ: interpolate(raw, environ)
