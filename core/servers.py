"""Every server the project runs, one row each, in ONE table, beside the table of targets
(core/registry.py): what the local runner, `make setup TARGETS=...` and the tests derive from.

    from core import servers
    for row in servers.SERVERS.values():      # in start order
        row.name, row.env, row.ports

A row names the server's folder, the environment its process runs in (core/environments.py), the system
programs it needs, the ports it binds (their keys and defaults: `DIGITS_<KEY>_PORT` moves one, see
serving/endpoints.py), how the local runner builds its command (`launcher`, "module:function") and how long
it may take to answer. Modules are named as strings, imported only when used: this file imports nothing
above core/.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerRow:
    name: str
    folder: str  # where its code lives (server, handler, client, README)
    launcher: str  # "module:function" -> (root, endpoints, settings) -> deploy.local.servers.Server
    env: str = "main"  # the environment its process runs in (core/environments.py)
    needs: tuple = ()  # more environments or system programs it needs (core/environments.py SYSTEM)
    ports: dict = field(default_factory=dict)  # port key -> default port (DIGITS_<KEY>_PORT moves it)
    start_timeout: float = 180.0  # seconds it may take to answer its readiness check
    # A page, not a model server: its failure leaves the model servers running, and it serves no target.
    optional: bool = False
    # Command lines `make setup` runs once its environments are filled, the main environment's programs first on
    # PATH: the clients' gRPC stubs.
    setup: tuple = ()


# perf_analyzer (the native load generator) is part of every model server's kit: its load tests use it.
LOAD_TOOLS = ("perf", "libb64")
V2_STUBS = ("python -m serving.v2.gen_stubs --if-stale",)  # the V2 gRPC client's stubs, from KServe's proto

SERVERS = {row.name: row for row in (
    ServerRow("torchserve", "serving/torchserve", "deploy.local.servers:torchserve", needs=("java", *LOAD_TOOLS),
              setup=("python -m serving.torchserve.gen_stubs --if-stale",),
              ports={"torchserve_inference": 8080,  # REST predictions (token auth)
                     "torchserve_management": 8081,  # REST management (token auth)
                     "torchserve_metrics": 8082,  # Prometheus metrics
                     "torchserve_grpc_inference": 7070, "torchserve_grpc_management": 7071}),
    ServerRow("tfserving", "serving/tfserving", "deploy.local.servers:tfserving", needs=LOAD_TOOLS,
              ports={"tfserving_grpc": 8500, "tfserving_rest": 8501}),
    # KServe's ModelServer, one per framework (its own defaults, 8080/8081, are TorchServe's).
    ServerRow("kserve-torch", "serving/kserve", "deploy.local.servers:kserve_torch", env="kserve", needs=LOAD_TOOLS,
              setup=V2_STUBS, ports={"kserve_torch_rest": 8090,  # V2 and V1 REST, /metrics
                     "kserve_torch_grpc": 8091}),  # V2 gRPC (inference.GRPCInferenceService)
    ServerRow("kserve-tf", "serving/kserve", "deploy.local.servers:kserve_tf", env="kserve", needs=LOAD_TOOLS,
              setup=V2_STUBS, ports={"kserve_tf_rest": 8092, "kserve_tf_grpc": 8093}),
    # Ray Serve's HTTP proxy: V2 REST from the replicas.
    ServerRow("rayserve", "serving/rayserve", "deploy.local.servers:rayserve", env="ray", needs=LOAD_TOOLS,
              ports={"rayserve_rest": 8094}),
    # The browser demo's static server.
    ServerRow("web", "web/tfjs", "deploy.local.servers:web", ports={"web_demo": 8000}, optional=True),
)}


def model_servers() -> list[str]:
    """The servers that serve the model (every row but the page), in start order."""
    return [name for name, row in SERVERS.items() if not row.optional]


def ports() -> dict[str, int]:
    """Every port key -> its default, over all rows."""
    return {key: port for row in SERVERS.values() for key, port in row.ports.items()}
