"""Every server the project runs, one row each, in ONE table, beside the table of targets
(core/registry.py): the local runner, the container plan, compose and Kubernetes, the updater, the settings
search, `make setup TARGETS=...`, the reports and the tests all derive from it.

    from core import servers
    for row in servers.SERVERS.values():      # in start order
        row.name, row.env, row.ports, row.container.image

A row names everything about its server:
  - locally: its folder, the environment its process runs in (core/environments.py), the system programs it
    needs, the ports it binds (their keys and defaults: `DIGITS_<KEY>_PORT` moves one, see
    serving/endpoints.py; core/spec.py SERVING_PORTS is every row's), how the local runner builds its command
    and readiness check (`launcher`), how long it may take to answer; its place in the table is its start order;
  - in a container (`Container`): how it runs there (command, mounts, health check: `service`), its image
    (an official one, pinned, or one built only from its Dockerfile on a pinned base), its user, its resource
    limits and its Kubernetes objects;
  - how a running server takes a new model version (`updater`), its settings (the fields of
    deploy/local/settings.py ServerSettings that are its own) and the grid the settings search measures;
  - what the reports say of it.
Code is named as "module:name" strings, imported only when used: this file imports nothing above core/
(and nothing outside the standard library: core/spec.py, which the TorchServe archive ships, reads the ports).
deploy/README.md ("Add a server") says what a new row takes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# A server's Kubernetes objects, by manifest under deploy/ ("{name}": the row's name): by default a Deployment
# and a Service named after it in deploy/k8s/<name>.yaml, and a CPU autoscaler in deploy/k8s/hpa.yaml.
K8S = {"k8s/{name}.yaml": ("Deployment", "Service"), "k8s/hpa.yaml": ("HorizontalPodAutoscaler",)}
# The same without the autoscaler (a server that scales inside its pod, or the page).
K8S_FIXED = {"k8s/{name}.yaml": ("Deployment", "Service")}
# The base every image of ours builds FROM, pinned by digest (`python -m deploy.pin_images --refresh`).
PYTHON_BASE = "python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"


@dataclass(frozen=True)
class Container:
    """How compose, the Docker launcher and Kubernetes run it (deploy/containers/plan.py derives the plan)."""
    # "module:function" -> (row, artifacts root) -> deploy.containers.plan.Service: its command, mounts, health check.
    service: str
    # The official image it runs, pinned; for an image built only here, the pinned base its Dockerfile builds FROM.
    image: str
    user: str  # uid:gid (never 0)
    # cpus and memory: limits (compose, Docker, Kubernetes); reserve: memory reservation (compose) or request
    # (Kubernetes); cpu_request: the Kubernetes CPU request, which an autoscaler's utilization is measured against.
    limits: dict
    # deploy/docker/<dockerfile>.Dockerfile builds it as digits-<dockerfile>:local with the artifacts baked in
    # (Kubernetes runs that); default: its own name. Rows naming the same Dockerfile share one image.
    dockerfile: str = ""
    built_only: bool = False  # no registry has the image: every path builds it from the Dockerfile
    # Its Kubernetes objects: manifest under deploy/ -> the kinds it holds for this server (tests/deploy holds
    # each manifest to the plan).
    k8s: dict = field(default_factory=lambda: dict(K8S))


@dataclass(frozen=True)
class About:
    """What no benchmark measures, for the report's "Which server to pick" (benchmarks/report/servers.py)."""
    what: str
    protocol: str
    maintenance: str
    needs: str


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
    framework: str | None = None  # the framework of the model it serves: "torch" or "tensorflow"
    model: str | None = None  # the manifest id of the model file it loads (None: TF Serving's newest version)
    container: Container | None = None
    # "module:name" of its updater (deploy/local/update.py Updater): how a running server takes a new model version
    # and goes back. Rows naming the same updater follow one set of versions and are updated together.
    updater: str | None = None
    # The fields of deploy/local/settings.py ServerSettings that are its own: a profile or a grid point of
    # the settings search changes only these for it.
    settings: tuple = ()
    grid: str | None = None  # "module:name" of its settings-search grid (benchmarks/grid.py Grid); None: none
    label: str = ""  # its name in the reports (default: its name)
    about: About | None = None  # the report's "Which server to pick" row (None: not in that table)
    native: bool = False  # the framework's own server: the report's claims set these side by side

    def port(self, kind: str) -> str:
        """Its port key of one kind ("rest", "grpc"): the one key ending in `_<kind>`."""
        (key,) = [key for key in self.ports if key.endswith(f"_{kind}")]
        return key


# perf_analyzer (the native load generator) is part of every model server's kit: its load tests use it.
LOAD_TOOLS = ("perf", "libb64")
V2_STUBS = ("python -m serving.v2.gen_stubs --if-stale",)  # the V2 gRPC client's stubs, from KServe's proto
KSERVE_ABOUT = About("KServe 0.21 ModelServer", "Open Inference Protocol V2 (REST, gRPC), V1 REST",
                     "maintained; the protocol is shared by Triton, MLServer, Ray Serve apps, OpenVINO Model Server",
                     ".venv-kserve (kserve pins protobuf<7); no authentication: a gateway in front")
APP_USER = "10001:10001"  # our images' user (kserve.Dockerfile, rayserve.Dockerfile): the python base has none

SERVERS = {row.name: row for row in (
    ServerRow("torchserve", "serving/torchserve", "deploy.local.servers:torchserve", needs=("java", *LOAD_TOOLS),
              setup=("python -m serving.torchserve.gen_stubs --if-stale",),
              ports={"torchserve_inference": 8080,  # REST predictions (token auth)
                     "torchserve_management": 8081,  # REST management (token auth)
                     "torchserve_metrics": 8082,  # Prometheus metrics
                     "torchserve_grpc_inference": 7070, "torchserve_grpc_management": 7071},
              framework="torch", model="torchserve_mar",
              # 0.12.0 is its last release; the CPU image runs as its non-root user `model-server` (uid 1000).
              # Java frontend + one Python worker: about 420 MB resident measured on the local runner.
              container=Container("deploy.containers.plan:torchserve_service", "pytorch/torchserve:0.12.0-cpu",
                                  "1000:1000", {"cpus": "2", "memory": "1536M", "reserve": "512M",
                                                "cpu_request": "500m"}),
              updater="deploy.local.update:TORCHSERVE", settings=("torchserve", "torchserve_env", "torchserve_config"),
              grid="benchmarks.grid:TORCHSERVE", label="TorchServe", native=True,
              about=About("TorchServe 0.12.0", "its own REST and gRPC",
                          "limited maintenance: 0.12.0 is its last release, no security fixes promised; KServe is "
                          "removing its TorchServe runtime",
                          "Java 17 (its frontend) and Python workers; management and inference keys (token auth)")),
    ServerRow("tfserving", "serving/tfserving", "deploy.local.servers:tfserving", needs=LOAD_TOOLS,
              ports={"tfserving_grpc": 8500, "tfserving_rest": 8501}, framework="tensorflow",
              # The official image runs as root by default: the plan gives it nobody (65534).
              container=Container("deploy.containers.plan:tfserving_service", "tensorflow/serving:2.18.0",
                                  "65534:65534", {"cpus": "2", "memory": "1024M", "reserve": "256M",
                                                  "cpu_request": "250m"},
                                  # And on KServe, its built-in TF Serving runtime (deploy/kserve/).
                                  k8s={**K8S, "kserve/tfserving.yaml": ("InferenceService",)}),
              updater="deploy.local.update:TFSERVING", settings=("tfserving_batching", "tfserving", "tfserving_flags"),
              grid="benchmarks.grid:TFSERVING", label="TF Serving", native=True,
              about=About("TF Serving API", "TF Serving REST and gRPC (tensorflow_serving.apis)",
                          "TF Serving is Google's; here the project's compatible server stands in (the binary cannot "
                          "be installed on this machine)",
                          "the tensorflow_model_server binary, or the compatible server in Python")),
    # KServe's ModelServer, one per framework (its own defaults, 8080/8081, are TorchServe's). Our own
    # kserve.Model classes have no official image: both run digits-kserve:local, built from kserve.Dockerfile
    # on every path; the command picks the framework. Memory: estimates, not measured in a container (no
    # engine here): the local servers showed about 340 MB (PyTorch) and 670 MB (TensorFlow) resident when
    # idle; the limits leave room for batches and the reservations cover the idle size.
    ServerRow("kserve-torch", "serving/kserve", "deploy.local.servers:kserve_torch", env="kserve", needs=LOAD_TOOLS,
              setup=V2_STUBS, ports={"kserve_torch_rest": 8090,  # V2 and V1 REST, /metrics
                                     "kserve_torch_grpc": 8091},  # V2 gRPC (inference.GRPCInferenceService)
              framework="torch", model="torch_checkpoint",
              container=Container("deploy.containers.plan:kserve_service", PYTHON_BASE, APP_USER,
                                  {"cpus": "2", "memory": "1024M", "reserve": "384M", "cpu_request": "500m"},
                                  dockerfile="kserve", built_only=True,
                                  # And on KServe itself, as a custom predictor (deploy/kserve/).
                                  k8s={**K8S, "kserve/kserve-torch.yaml": ("InferenceService",)}),
              # The KServe servers and Ray Serve hold the same kserve.Model, which follows one version folder.
              updater="deploy.local.update:KSERVE", settings=("kserve_flags",), label="KServe (PyTorch)",
              about=KSERVE_ABOUT),
    ServerRow("kserve-tf", "serving/kserve", "deploy.local.servers:kserve_tf", env="kserve", needs=LOAD_TOOLS,
              setup=V2_STUBS, ports={"kserve_tf_rest": 8092, "kserve_tf_grpc": 8093},
              framework="tensorflow", model="keras_model",
              container=Container("deploy.containers.plan:kserve_service", PYTHON_BASE, APP_USER,
                                  {"cpus": "2", "memory": "1536M", "reserve": "768M", "cpu_request": "500m"},
                                  dockerfile="kserve", built_only=True),
              updater="deploy.local.update:KSERVE", settings=("kserve_flags",), label="KServe (TensorFlow)",
              about=KSERVE_ABOUT),
    # Ray Serve's HTTP proxy: V2 REST from the replicas, a one-container Ray cluster from its own image
    # (rayserve.Dockerfile: Ray's lock, requirements/ray.txt). Memory: the local cluster with 2 replicas (the
    # head's GCS, raylet and agents, the Serve controller and proxy, two torch replicas) was about 1.9 GB
    # resident (make bench TOOL=scale); the limit leaves room for the autoscaler's third and fourth replica, and the
    # tmpfs and /dev/shm count in it. It scales its replicas inside the pod (no autoscaler object); across
    # nodes, KubeRay's RayService (deploy/kuberay/).
    ServerRow("rayserve", "serving/rayserve", "deploy.local.servers:rayserve", env="ray", needs=LOAD_TOOLS,
              ports={"rayserve_rest": 8094}, framework="torch", model="torch_checkpoint",
              container=Container("deploy.containers.plan:rayserve_service", PYTHON_BASE, APP_USER,
                                  {"cpus": "2", "memory": "2560M", "reserve": "2048M", "cpu_request": "1"},
                                  built_only=True,
                                  k8s={**K8S_FIXED, "kuberay/rayservice.yaml": ("RayService",)}),
              updater="deploy.local.update:KSERVE", settings=("rayserve_flags",), label="Ray Serve"),
    # The browser demo's static server (nginx in a container; it runs as root by default: the plan gives it
    # nginx's own user).
    ServerRow("web", "web/tfjs", "deploy.local.servers:web", ports={"web_demo": 8000}, optional=True,
              model="web_demo",
              container=Container("deploy.containers.plan:web_service",
                                  "nginx:1.27-alpine@sha256:65645c7bb6a0661892a8b03b89d0743208a18dd2f3f17a54ef4b76fb8e2f2a10",
                                  "101:101", {"cpus": "0.5", "memory": "128M", "reserve": "16M", "cpu_request": "50m"},
                                  k8s=dict(K8S_FIXED)),
              label="the demo page"),
)}


def model_servers() -> list[str]:
    """The servers that serve the model (every row but the page), in start order."""
    return [name for name, row in SERVERS.items() if not row.optional]


def ports() -> dict[str, int]:
    """Every port key -> its default, over all rows."""
    return {key: port for row in SERVERS.values() for key, port in row.ports.items()}


def label(name: str) -> str:
    """Server `name` as the reports call it."""
    return SERVERS[name].label or name


def with_container() -> dict[str, ServerRow]:
    """The rows that run in a container (compose, the Docker launcher, Kubernetes), in start order."""
    return {name: row for name, row in SERVERS.items() if row.container is not None}


def manifests(name: str) -> dict[str, tuple]:
    """Server `name`'s Kubernetes objects: {manifest path under deploy/: kinds}."""
    return {path.format(name=name): kinds for path, kinds in SERVERS[name].container.k8s.items()}


def sharing(updater: str) -> list[str]:
    """The servers whose rows name `updater` ("module:name"), in start order: they are updated together."""
    return [name for name, row in SERVERS.items() if row.updater == updater]


def searched() -> list[str]:
    """The servers the settings search measures: the rows that name a grid."""
    return [name for name, row in SERVERS.items() if row.grid]


def native(framework: str) -> str | None:
    """The framework's own server (TorchServe for torch, TF Serving for tensorflow), if a row is one."""
    return next((name for name, row in SERVERS.items() if row.native and row.framework == framework), None)
