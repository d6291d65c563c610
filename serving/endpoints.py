"""Where the model servers listen: the spec's defaults, overridden by environment variables.

The defaults live once, in the table of servers (`core/servers.py`: each row's ports; `core.spec.SERVING_PORTS`
is all of them, and `artifacts/spec.json` records them under `serving`); the model name is the trained
model's, from the spec of the artifacts folder. At run time each address can be overridden:

    DIGITS_SERVING_HOST                 every address (default 127.0.0.1)
    DIGITS_<KEY>_PORT                   one port, e.g. DIGITS_TFSERVING_GRPC_PORT=9500

where KEY is a port key of a row of core/servers.py in capitals (TORCHSERVE_INFERENCE, TFSERVING_GRPC,
KSERVE_TORCH_REST, RAYSERVE_REST, WEB_DEMO, ...; `python -c "from core import servers; print(servers.ports())"`
lists them). The process runner, the clients, the tests and the benchmark all resolve addresses here, so one
set of variables moves everything together.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from core import servers
from core import spec as specs
from core.ports import free_ports
from core.spec import SERVING_HOST


def port_variable(name: str) -> str:
    """The environment variable that overrides port `name` (a port key of core/servers.py)."""
    return f"DIGITS_{name.upper()}_PORT"


@dataclass(frozen=True)
class Endpoints:
    host: str
    ports: dict
    model_name: str | None = None  # the served model's name: the spec's (see for_root)

    def for_root(self, root: Path | None) -> Endpoints:
        """These endpoints serving the model trained into artifacts folder `root` (its spec names it);
        without a root, endpoints that already name their model stay as they are."""
        if root is None and self.model_name is not None:
            return self
        return replace(self, model_name=model_name_of(root))

    def url(self, name: str) -> str:
        """http://host:port for a REST port."""
        return f"http://{self.host}:{self.ports[name]}"

    def target(self, name: str) -> str:
        """host:port for a gRPC port."""
        return f"{self.host}:{self.ports[name]}"

    def as_environment(self) -> dict:
        """These endpoints as the environment variables above (to hand to a subprocess)."""
        env = {"DIGITS_SERVING_HOST": self.host}
        env.update({port_variable(name): str(port) for name, port in self.ports.items()})
        return env


def model_name_of(root: Path | None) -> str:
    """The model name in the spec of artifacts folder `root` (the one in force when None)."""
    return specs.load(root).model_name


def resolve(environ=None, root: Path | None = None) -> Endpoints:
    """The endpoints in force now: spec defaults, then environment overrides; the model name is the
    one trained into `root` (the artifacts folder in force when None), if one is trained yet."""
    environ = os.environ if environ is None else environ
    ports = {}
    for name, default in servers.ports().items():  # the table's, read now: a row added later is seen
        value = environ.get(port_variable(name), str(default))
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError(f"{port_variable(name)}={value!r} is not a port number (1..65535)")
        ports[name] = int(value)
    try:
        model = model_name_of(root)
    except specs.SpecError:  # nothing trained yet: addresses only (a server needs a trained model anyway)
        model = None
    return Endpoints(host=environ.get("DIGITS_SERVING_HOST", SERVING_HOST), ports=ports, model_name=model)


def free_endpoints(host: str = SERVING_HOST, root: Path | None = None) -> Endpoints:
    """The spec's endpoints with every port moved to a free one (tests, benchmarks, side-by-side servers);
    the model name is the one trained into `root`, when given."""
    names = servers.ports()
    ports = dict(zip(names, free_ports(len(names), host), strict=False))
    return Endpoints(host=host, ports=ports, model_name=model_name_of(root) if root is not None else None)
