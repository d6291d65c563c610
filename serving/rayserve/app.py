"""The spec's model as a Ray Serve application: the Open Inference Protocol (V2) over REST, on Serve's HTTP
proxy, from replicas that batch (`@serve.batch`) and scale (autoscaling).

    from serving.rayserve import app
    serve.run(app.application(root, app.Options(replicas=2)), name="digits", route_prefix="/")

Each replica runs KServe's own V2 REST routes (kserve.protocol.rest.v2_endpoints: /v2, /v2/health/*,
/v2/models/<name>[/ready|/infer], the repository API refused as on our KServe server) over KServe's
data plane, with KServe's error answers and ours (serving/v2/rest_app.py), and the same model as
KServe's ModelServer (serving/kserve/model.py: verified against the manifest, the newest published
version watched and switched to without a dropped request, the request/contract checks of
serving/v2/protocol.py). So a V2 client cannot tell this server from kserve-torch-v2-rest; what
differs is behind the proxy: several replicas, and batching.

Batching: a request's checked batch waits up to `batch_wait_s` for others (at most `max_batch_size`
requests), they run as one forward pass, each gets its own rows back. `max_batch_size` 1 turns it
off (the request runs alone, no wait). The replica count is fixed (`replicas`) or autoscaled between
`min_replicas` and `max_replicas` on the requests in flight per replica (`target_ongoing_requests`).
Each replica asks Ray for `replica_cpus` of a CPU, so several fit on a 2-core machine.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from kserve.model_repository import ModelRepository
from kserve.protocol.infer_type import InferRequest
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints
from ray import serve

from serving.kserve.bound import ClosedRepository, ReadingDataPlane, served_version
from serving.kserve.model import SpecModel, v2_batch
from serving.rayserve.replicas import DEPLOYMENT
from serving.v2 import rest_app


@dataclass(frozen=True)
class Options:
    """How the application runs: replicas (fixed, or autoscaled when `replicas` is None) and batching."""
    framework: str = "torch"
    replicas: int | None = None  # a fixed count; None: autoscaling between min and max
    min_replicas: int = 2
    max_replicas: int = 4
    target_ongoing_requests: float = 4.0  # requests in flight per replica the autoscaler aims at
    replica_cpus: float = 0.25  # of the node's logical CPUs: four replicas take one core's worth
    max_batch_size: int = 8  # requests per forward pass (1: no batching)
    batch_wait_s: float = 0.002  # how long a request waits for others to batch with
    max_ongoing_requests: int = 64  # per replica; past it the proxy holds the request until one has room
    health_check_period_s: float = 2.0  # a replica that stops answering is replaced within seconds
    health_check_timeout_s: float = 5.0

    def deployment_options(self) -> dict:
        """The deployment's Serve options (the field names of serve.deployment and of serveConfigV2)."""
        options = {"ray_actor_options": {"num_cpus": self.replica_cpus},
                   "max_ongoing_requests": self.max_ongoing_requests,
                   "health_check_period_s": self.health_check_period_s,
                   "health_check_timeout_s": self.health_check_timeout_s, "graceful_shutdown_timeout_s": 5.0}
        if self.replicas is not None:
            return {**options, "num_replicas": self.replicas}
        return {**options, "autoscaling_config": {
            "min_replicas": self.min_replicas, "initial_replicas": self.min_replicas,
            "max_replicas": self.max_replicas, "target_ongoing_requests": self.target_ongoing_requests}}

    def to_dict(self) -> dict:
        return asdict(self)


class BatchedModel(SpecModel):
    """KServe's model with V2 requests batched across callers: each request's batch is checked alone, the
    forward pass is shared (one version answers them all), each answer built alone."""

    def configure(self, options: Options) -> None:
        self.batching = options.max_batch_size > 1
        self.run_batch.set_max_batch_size(options.max_batch_size)
        self.run_batch.set_batch_wait_timeout_s(options.batch_wait_s)

    async def predict(self, payload, headers=None):
        if not isinstance(payload, InferRequest) or not self.batching:
            return await super().predict(payload, headers)
        batch = await self.on_model_thread(v2_batch, self.spec, payload)
        version, probabilities = await self.run_batch(batch)
        return self.v2_response(payload, batch, version, probabilities)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def run_batch(self, batches: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        version, predictor = self.served
        joined = np.concatenate(batches)  # (sum of N, *item_shape)
        # On a model thread with the watchdog, as KServe's answers run (serving/watchdog.py): when it
        # sticks, every request of the batch is answered 504.
        probabilities = await self.on_model_thread(self.forward, predictor, joined)
        bounds = np.cumsum([len(batch) for batch in batches])[:-1]
        return [(version, rows) for rows in np.split(probabilities, bounds)]

    def forward(self, predictor, joined: np.ndarray) -> np.ndarray:
        """The probabilities of a joined batch, in pieces the predictor's batch limit allows."""
        limit = self.spec.max_batch_size
        return np.concatenate([predictor.predict(joined[at:at + limit]) for at in range(0, len(joined), limit)])


@serve.deployment(name=DEPLOYMENT)
@serve.ingress()  # the app is built in each replica, over its model (__serve_build_asgi_app__)
class V2Model:
    """One replica: the model (watching for new versions) behind KServe's V2 REST routes."""

    def __init__(self, root: str, options: dict):
        import torch

        _loopback_replica_server()
        torch.set_num_threads(1)  # a replica is a fraction of a core: one thread each, the replicas in parallel
        options = Options(**options)
        self.model = BatchedModel(Path(root), options.framework)
        self.model.configure(options)
        self.model.load()  # verified, warmed up; a thread watches for published versions

    def __serve_build_asgi_app__(self) -> FastAPI:
        return v2_app(self.model)


def v2_app(model: SpecModel) -> FastAPI:
    """KServe's V2 REST routes over a data plane serving `model`, with KServe's error answers and then
    ours, as on the KServe server (serving/kserve/bound.py)."""
    repository = ModelRepository()
    repository.update(model)
    # As kserve.model_server's app: orjson answers, no /docs.
    app = FastAPI(title="KServe ModelServer", docs_url=None, redoc_url=None, default_response_class=ORJSONResponse)
    register_v2_endpoints(app, ReadingDataPlane(model_registry=repository), ClosedRepository(repository))
    RESTServer._add_exception_handlers(None, app)  # kserve's answers for its errors (unknown model, ...)
    rest_app.install(app, model.spec, lambda: served_version(model))
    return app


def _loopback_replica_server() -> None:
    """Bind the replica's inter-deployment gRPC server to 127.0.0.1: Ray Serve 2.60 binds it to "[::]:0"
    (every interface) in code, with no option (ray/serve/_private/replica.py, `_on_initialized`, which
    runs after this constructor). tests/integration/test_rayserve.py fails on any listener beyond loopback,
    so a Ray version that changes this is caught."""
    from ray.serve._private import replica

    bind = replica.add_port_to_grpc_server
    if getattr(bind, "loopback", False):
        return

    def loopback(server, address: str):
        return bind(server, address.replace("[::]", "127.0.0.1"))

    loopback.loopback = True
    replica.add_port_to_grpc_server = loopback


def application(root: Path, options: Options):
    """The bound Serve application over the artifacts folder `root`."""
    return V2Model.options(**options.deployment_options()).bind(str(root), options.to_dict())


def build(args: dict):
    """Serve's application builder, for a Serve config file (`import_path: serving.rayserve.app:build`, the
    RayService's serveConfigV2 in deploy/kuberay/): `args` names the artifacts folder and any Options field."""
    args = dict(args)
    return application(Path(args.pop("artifacts")), Options(**args))
