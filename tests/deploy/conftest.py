"""Helpers for the static deploy/ checks: the compose file as Compose itself would read it, and
artifacts folders holding only a spec: the built-in task's, and a different one (`bars`:
non-square colour input, five named classes) that every container file must follow."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core import paths
from training.spec import RESIZE_REDUCTION, ModelConfig, derive_spec, digits_spec, write_spec

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


OTHER_MODEL = "bars"


def other_spec() -> dict:
    """A task unlike the built-in one: (12, 16, 3) values 0..255, five named classes, model `bars`."""
    return derive_spec(ModelConfig(arch="resnet"), item_shape=(12, 16, 3),
                       labels=["red", "green", "blue", "grey", "none"], value_range=(0.0, 255.0),
                       model_name=OTHER_MODEL, reduction=RESIZE_REDUCTION, data_source="bars.npz")


def artifacts_with(folder: Path, spec: dict) -> Path:
    write_spec(spec, folder / "spec.json")
    return folder


@pytest.fixture
def digits_root(tmp_path) -> Path:
    """An artifacts folder trained (as far as its spec goes) on the built-in task."""
    return artifacts_with(tmp_path / "artifacts", digits_spec())


@pytest.fixture
def bars_root(tmp_path) -> Path:
    """An artifacts folder of a model of one's own, named `bars`."""
    return artifacts_with(tmp_path / "bars-artifacts", other_spec())


@pytest.fixture(params=["built-in task", "own model"])
def any_root(request, tmp_path) -> Path:
    """Each of the two artifacts folders above, in turn."""
    spec = digits_spec() if request.param == "built-in task" else other_spec()
    return artifacts_with(tmp_path / request.param.replace(" ", "-"), spec)


@pytest.fixture(scope="session")
def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def compose_for():
    """compose_for(environ) -> the compose file interpolated with that environment."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return lambda environ: interpolate(raw, environ)
