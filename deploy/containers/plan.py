"""The container plan: which image each service runs, with which ports, mounts, command and health check.

Everything here is derived from the table of servers (core/servers.py: each row's `container`: its image,
user, limits and the function below that plans its service), the spec (the model name from the artifacts
folder's spec.json; the ports are the rows') and the serving configs; the Docker launcher (launch.py) runs
exactly this plan, and tests/deploy checks that deploy/docker-compose.yml, the Dockerfiles and the
Kubernetes manifests say the same thing. Inside a container every server listens on the spec's port; on the
host each published port is bound to SERVING_HOST (127.0.0.1) unless DIGITS_SERVING_HOST says otherwise,
with the same DIGITS_<KEY>_PORT overrides as serving/endpoints.py. The table is read when the plan is asked
for, so a row added to it is planned without another edit.

The services of an artifacts folder, with the configs rendered for its model: fleet.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import manifest, paths
from core import servers as table
from core.spec import SERVING_PORTS
from serving import endpoints as endpoints_mod
from serving.tfserving import configs as tf_configs

REPO = paths.REPO_ROOT
CONFIG_DIR = REPO / "deploy" / "config"  # the files containers read (see deploy/README.md)
# `digits-` here, in baked_image and LABEL is the project's name (digits-everywhere), not the model's: the
# images and containers keep these names whatever model they serve.
CONTAINER_PREFIX = "digits-"
LABEL = "io.digits-everywhere.service"  # every container the launcher starts carries it
RAYSERVE = "rayserve"  # the Ray Serve row: its command and memory are planned apart (rayserve_service)


def rows() -> dict[str, table.ServerRow]:
    """The servers that run in a container, in start order (the rows of core/servers.py with a `container`)."""
    return table.with_container()


def image_name(service: str) -> str:
    """The image (and deploy/docker/<name>.Dockerfile) a service runs: its own name, or the one its row shares."""
    return table.SERVERS[service].container.dockerfile or service


def baked_image(image: str) -> str:
    """The tag deploy/docker/<image>.Dockerfile is built as, with the artifacts baked in (Kubernetes runs it)."""
    return f"{CONTAINER_PREFIX}{image}:local"


def official_images() -> dict[str, str]:
    """{image: the official image, pinned}: what compose and the Docker launcher pull (and its Dockerfile
    builds FROM). Pinned by digest where one was found for the tag (`python -m deploy.pin_images`)."""
    return {image_name(name): row.container.image for name, row in rows().items() if not row.container.built_only}


def build_only_images() -> dict[str, str]:
    """{image: the pinned base it is built FROM} of the images no registry has: built from their Dockerfile on
    every path (our own kserve.Model classes and Ray Serve application), never pulled."""
    return {image_name(name): row.container.image for name, row in rows().items() if row.container.built_only}


def user(service: str) -> str:
    """uid:gid the service runs as (none is 0)."""
    return table.SERVERS[service].container.user


def limits(service: str) -> dict:
    """Its resources: `cpus`/`memory` are limits (compose `deploy.resources.limits`, Kubernetes `limits`);
    `reserve` is the memory reservation (compose) or request (Kubernetes); `cpu_request` is the Kubernetes CPU
    request, which the autoscaler's utilization target is measured against."""
    return table.SERVERS[service].container.limits


# Paths inside the containers.
TS_HOME = "/home/model-server"
TS_CONFIG = f"{TS_HOME}/config.properties"
TS_MODEL_STORE = f"{TS_HOME}/model-store"
TS_HEALTH = f"{TS_HOME}/health.py"
TS_WORKDIR = "/tmp"  # TorchServe writes key_file.json, logs and its pid here: a tmpfs
TF_CONFIG_DIR = "/config"
WEB_ROOT = "/usr/share/nginx/html"
WEB_CONFIG = "/etc/nginx/nginx.conf"
KSERVE_HOME = "/app"  # the project modules our own images hold (KServe's and Ray Serve's)
KSERVE_ARTIFACTS = "/artifacts"  # what it serves: the spec, the manifest and the framework's model
# The model file a KServe or Ray Serve service serves, by its manifest id (its row's `model`).
MODEL_FILES = {"torch_checkpoint": paths.torch_checkpoint_path, "keras_model": paths.keras_model_path}


def tf_model_base(model_name: str) -> str:
    """Where TF Serving finds the model's versions inside its container."""
    return f"/models/{model_name}"


HEALTH_TIMING = {"interval": 5, "timeout": 3, "retries": 12, "start_period": 30}  # seconds


@dataclass(frozen=True)
class Mount:
    source: Path  # on the host
    target: str  # in the container
    read_only: bool = True


@dataclass(frozen=True)
class Service:
    name: str  # the compose service name; the container is CONTAINER_PREFIX + name
    image: str
    ports: dict  # spec port name -> container port (published as host_ip:<same or override>)
    mounts: tuple
    entrypoint: list | None
    command: list
    health: list  # a Docker health check test, ["CMD", ...]
    user: str
    environment: dict = field(default_factory=dict)
    working_dir: str | None = None
    tmpfs: dict = field(default_factory=lambda: {"/tmp": "rw,nosuid,nodev,size=64m"})  # the only writable path
    # Ports it listens on for the container network only, never published (TorchServe's metrics: no authentication).
    internal_ports: dict = field(default_factory=dict)
    shm_size: str | None = None  # /dev/shm, when the engine's default (64 MB) is too small (Ray's object store)
    health_timing: dict = field(default_factory=lambda: dict(HEALTH_TIMING))
    notes: tuple = ()  # what a user should know beside its addresses (printed by the launchers)

    @property
    def container_name(self) -> str:
        return CONTAINER_PREFIX + self.name


@dataclass(frozen=True)
class Artifacts:
    """What every service is planned over: an artifacts folder, its model's name, its container configs."""
    root: Path
    model: str  # the spec's model name
    config_dir: Path  # deploy/config/ for the built-in task, else the configs rendered for the model (configs.py)


def torchserve_command() -> list:
    return ["--start", "--foreground", "--ncs", "--ts-config", TS_CONFIG, "--model-store", TS_MODEL_STORE]


def torchserve_health(model_name: str) -> list:
    # Ready = the model has a READY worker, asked over the management API, which the container
    # binds to its own loopback only (never published).
    management = f"http://127.0.0.1:{SERVING_PORTS['torchserve_management']}"
    return ["CMD", "python", TS_HEALTH, management, model_name, f"{TS_WORKDIR}/key_file.json"]


def tfserving_command() -> list:
    config = {key: f"{TF_CONFIG_DIR}/{name}" for key, name in tf_configs.CONFIG_FILES.items()}
    return [f"--port={SERVING_PORTS['tfserving_grpc']}", f"--rest_api_port={SERVING_PORTS['tfserving_rest']}",
            f"--model_config_file={config['models']}", "--enable_batching",
            f"--batching_parameters_file={config['batching']}", f"--monitoring_config_file={config['monitoring']}",
            "--file_system_poll_wait_seconds=5"]


def tfserving_health(model_name: str) -> list:
    # The image has neither curl nor Python: bash's /dev/tcp asks the model status endpoint and
    # the check passes once a version is AVAILABLE.
    request = f"GET /v1/models/{model_name} HTTP/1.0\\r\\n\\r\\n"
    script = (f"exec 3<>/dev/tcp/127.0.0.1/{SERVING_PORTS['tfserving_rest']} && printf '{request}' >&3 "
              f"&& grep -q AVAILABLE <&3")
    return ["CMD", "bash", "-c", script]


def web_health() -> list:
    return ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{SERVING_PORTS['web_demo']}/"]


NO_AUTHENTICATION = "no authentication: published on loopback only (on Kubernetes, the NetworkPolicy guards it)"
# Both KServe services: the same command, the framework and ports after it. Inside a container the
# servers bind every interface (compose publishes them on the host's 127.0.0.1 only).
KSERVE_ENTRYPOINT = ["python", "-m", "serving.kserve.server", "--artifacts", KSERVE_ARTIFACTS, "--host", "0.0.0.0"]


def kserve_command(name: str) -> list:
    row = table.SERVERS[name]
    return ["--framework", row.framework, "--http-port", str(row.ports[row.port("rest")]),
            "--grpc-port", str(row.ports[row.port("grpc")])]


def kserve_health(name: str) -> list:
    # The image has Python but no curl: urllib raises (exit 1) unless V2 readiness answers 200,
    # which KServe's ModelServer does once every model it serves is loaded.
    row = table.SERVERS[name]
    port = row.ports[row.port("rest")]
    script = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v2/health/ready', timeout=2)"
    return ["CMD", "python", "-c", script]


# Ray Serve: the local cluster's command (deploy/local/servers.py `rayserve`) in one container. Every Ray
# address stays 127.0.0.1 (the head, its raylet and the replicas are all in this container and talk
# over its loopback); only Serve's HTTP proxy binds every interface, for the published port (compose
# and the launcher publish it on the host's 127.0.0.1 only). Ray's session folder and logs go to the
# run folder on the /tmp tmpfs (the artifacts are read-only); no dashboard, hence no job API, and no
# usage statistics (cluster.py LOCKED_DOWN; the environment says it again for anything Ray spawns).
RAY_RUN = "/tmp/rayserve"  # cluster.py --run: ready.json and Ray's temp folder (<run>/ray)
RAY_OBJECT_STORE_MB = 128  # cluster.py --object-store-mb: Ray's shared-memory object store, in /dev/shm
RAY_SHM = "256m"  # /dev/shm: the object store and room for Ray's own segments (Docker's default is 64 MB)
RAYSERVE_ENTRYPOINT = ["python", "-m", "serving.rayserve.cluster"]
RAY_START_PERIOD = 240 - HEALTH_TIMING["retries"] * HEALTH_TIMING["interval"]  # seconds


def rayserve_command() -> list:
    # --num-cpus: the container's CPU limit, not the host's count (os.cpu_count(), cluster.py's default).
    return ["--artifacts", KSERVE_ARTIFACTS, "--run", RAY_RUN, "--host", "0.0.0.0",
            "--http-port", str(SERVING_PORTS["rayserve_rest"]), "--num-cpus", limits(RAYSERVE)["cpus"],
            "--object-store-mb", str(RAY_OBJECT_STORE_MB)]


def rayserve_health() -> list:
    # Serve's proxy answers V2 readiness once the application's replicas run (the KServe check, on its port).
    url = f"http://127.0.0.1:{SERVING_PORTS['rayserve_rest']}/v2/health/ready"
    return ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"]


def rayserve_service(row: table.ServerRow, over: Artifacts) -> Service:
    """Ray Serve over the PyTorch checkpoint: a one-container Ray cluster from its own image, the artifacts
    folder's spec, manifest and checkpoint mounted over the baked ones (as for kserve-torch)."""
    inside = Path(KSERVE_ARTIFACTS)
    return Service(
        name=row.name, image=baked_image(image_name(row.name)), ports=dict(row.ports),
        mounts=tuple(Mount(where(over.root), str(where(inside))) for where in kserve_files(row.model)),
        entrypoint=RAYSERVE_ENTRYPOINT, command=rayserve_command(), health=rayserve_health(),
        user=user(row.name), environment={"RAY_USAGE_STATS_ENABLED": "0"}, notes=(NO_AUTHENTICATION,),
        # Ray's session folder (logs rotated at 16 MiB, two old files each) and sockets.
        tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"}, shm_size=RAY_SHM,
        # A Ray cluster takes longer to come up than one server: its start period and retries together
        # are cluster.py's own --start-timeout (240 s), after which it gives up by itself.
        health_timing={**HEALTH_TIMING, "start_period": RAY_START_PERIOD})


def kserve_files(artifact: str) -> tuple:
    """What a KServe service serves, as functions of an artifacts folder: its spec, manifest and model file."""
    return paths.spec_path, manifest.manifest_path, MODEL_FILES[artifact]


def kserve_service(row: table.ServerRow, over: Artifacts) -> Service:
    """A KServe server over one framework's model (its row's): the image holds the code and every model;
    the folder's own spec, manifest and model file are mounted over the baked ones, so a new training is
    served without a new image (Kubernetes runs the baked ones)."""
    inside = Path(KSERVE_ARTIFACTS)
    return Service(
        name=row.name, image=baked_image(image_name(row.name)), ports=dict(row.ports),
        mounts=tuple(Mount(where(over.root), str(where(inside))) for where in kserve_files(row.model)),
        entrypoint=KSERVE_ENTRYPOINT, command=kserve_command(row.name), health=kserve_health(row.name),
        user=user(row.name), notes=(NO_AUTHENTICATION,))


def torchserve_service(row: table.ServerRow, over: Artifacts) -> Service:
    """TorchServe's official image over the artifacts folder's model store, with the model's config."""
    return Service(
        name=row.name, image=row.container.image,
        # Metrics (no authentication) stay on the container network: not published on the host.
        ports={key: row.ports[key] for key in ("torchserve_inference", "torchserve_grpc_inference")},
        internal_ports={"torchserve_metrics": row.ports["torchserve_metrics"]},
        mounts=(Mount(over.root / "torchserve" / "model-store", TS_MODEL_STORE),
                Mount(over.config_dir / "torchserve.properties", TS_CONFIG),
                Mount(CONFIG_DIR / "torchserve_health.py", TS_HEALTH)),
        entrypoint=["torchserve"], command=torchserve_command(), health=torchserve_health(over.model),
        user=user(row.name), working_dir=TS_WORKDIR,
        notes=("metrics: not published (inside the container network only)",
               f"token: docker exec {CONTAINER_PREFIX}{row.name} cat {TS_WORKDIR}/key_file.json "
               "(\"inference\" key, header Authorization: Bearer <key>)"),
        # exec: Java's native libraries (netty epoll) are unpacked into java.io.tmpdir and loaded.
        tmpfs={"/tmp": "rw,exec,nosuid,nodev,size=512m"},
        environment={"LOG_LOCATION": f"{TS_WORKDIR}/logs", "METRICS_LOCATION": f"{TS_WORKDIR}/logs",
                     "TEMP": TS_WORKDIR})


def tfserving_service(row: table.ServerRow, over: Artifacts) -> Service:
    """TF Serving's official image over the artifacts folder's SavedModel versions, with the model's config."""
    return Service(
        name=row.name, image=row.container.image, ports=dict(row.ports),
        mounts=(Mount(tf_configs.base_path(over.root), tf_model_base(over.model)),
                Mount(over.config_dir / tf_configs.CONFIG_FILES["models"], f"{TF_CONFIG_DIR}/models.config"),
                Mount(tf_configs.CONFIG_DIR / tf_configs.CONFIG_FILES["batching"],
                      f"{TF_CONFIG_DIR}/batching.config"),
                Mount(tf_configs.CONFIG_DIR / tf_configs.CONFIG_FILES["monitoring"],
                      f"{TF_CONFIG_DIR}/monitoring.config")),
        entrypoint=["tensorflow_model_server"], command=tfserving_command(), health=tfserving_health(over.model),
        user=user(row.name))


def web_service(row: table.ServerRow, over: Artifacts) -> Service:
    """nginx over the built page (artifacts/web/)."""
    return Service(
        name=row.name, image=row.container.image, ports=dict(row.ports),
        mounts=(Mount(over.root / "web", WEB_ROOT), Mount(CONFIG_DIR / "nginx.conf", WEB_CONFIG)),
        entrypoint=None, command=["nginx", "-g", "daemon off;"], health=web_health(), user=user(row.name))


def answers(server: str, root: Path, endpoints) -> list[str]:
    """Where each target of `server` (core/registry.py) answers at `endpoints`, one line each."""
    from core import registry

    return [f"{name:<24}{registry.where(name, root, endpoints)}" for name in registry.served()
            if registry.TARGETS[name].server == server]


def published(service: Service, endpoints=None) -> dict:
    """{container port: (host ip, host port)} with the DIGITS_* overrides of serving/endpoints.py."""
    endpoints = endpoints or endpoints_mod.resolve()
    return {port: (endpoints.host, endpoints.ports[name]) for name, port in service.ports.items()}
