"""The container plan: which image each service runs, with which ports, mounts, command and health check.

Everything here is derived from the spec (`core/spec.py`: SERVING_HOST, SERVING_PORTS; the model
name from the artifacts folder's spec.json) and the serving configs; the Docker launcher (launch.py)
runs exactly this plan, and tests/deploy checks that deploy/docker-compose.yml, the Dockerfiles and
the Kubernetes manifests say the same thing. Inside a container every server listens on the spec's
port; on the host each published port is bound to SERVING_HOST (127.0.0.1) unless
DIGITS_SERVING_HOST says otherwise, with the same DIGITS_<NAME>_PORT overrides as
serving/endpoints.py.

    python -m deploy.containers.plan        # print the plan for ./artifacts
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from core import manifest, paths
from core import spec as specs
from core.spec import SERVING_PORTS
from deploy.local.servers import KSERVE
from serving import endpoints as endpoints_mod
from serving.tfserving import configs as tf_configs

REPO = paths.REPO_ROOT
CONFIG_DIR = REPO / "deploy" / "config"  # the files containers read (see deploy/README.md)

# The official images, pinned: by digest where one was found for the tag (`python -m deploy.pin_images`
# lists them and `--refresh` reads every tag's digest again and writes it here, in the Dockerfiles and
# the compose file). TorchServe 0.12.0 is its last release; its CPU image runs as the
# non-root user `model-server` (uid 1000). TF Serving and nginx run as root by default: the plan
# gives them an unprivileged user.
IMAGES = {
    "torchserve": "pytorch/torchserve:0.12.0-cpu",
    "tfserving": "tensorflow/serving:2.18.0",
    "web": "nginx:1.27-alpine@sha256:65645c7bb6a0661892a8b03b89d0743208a18dd2f3f17a54ef4b76fb8e2f2a10",
}
# Our own kserve.Model classes (serving/kserve/) have no official image: both KServe services run
# one image, built from deploy/docker/kserve.Dockerfile on every path and never pulled; the
# command picks the framework (see that file). Image -> the pinned base it is built FROM.
BUILD_ONLY = {
    "kserve": "python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d",
}
# Images built by deploy/docker/<name>.Dockerfile with the artifacts baked in (Kubernetes uses these).
# `digits-` here, in CONTAINER_PREFIX and LABEL is the project's name (digits-everywhere), not the
# model's: the images and containers keep these names whatever model they serve.
BAKED_IMAGES = {name: f"digits-{name}:local" for name in (*IMAGES, *BUILD_ONLY)}
# Ray Serve (serving/rayserve/) runs from the KServe image too: Ray 2.60 is in the same lock.
RAYSERVE = "rayserve"
IMAGE_OF = dict.fromkeys((*KSERVE, RAYSERVE), "kserve")  # services that share an image not named after them
KSERVE_USER = "10001:10001"  # created in kserve.Dockerfile; the python image has no unprivileged user
USERS = {"torchserve": "1000:1000", "tfserving": "65534:65534", "web": "101:101",
         **dict.fromkeys((*KSERVE, RAYSERVE), KSERVE_USER)}  # uid:gid, none is 0
CONTAINER_PREFIX = "digits-"
LABEL = "io.digits-everywhere.service"  # every container the launcher starts carries it

# Paths inside the containers.
TS_HOME = "/home/model-server"
TS_CONFIG = f"{TS_HOME}/config.properties"
TS_MODEL_STORE = f"{TS_HOME}/model-store"
TS_HEALTH = f"{TS_HOME}/health.py"
TS_WORKDIR = "/tmp"  # TorchServe writes key_file.json, logs and its pid here: a tmpfs
TF_CONFIG_DIR = "/config"
WEB_ROOT = "/usr/share/nginx/html"
WEB_CONFIG = "/etc/nginx/nginx.conf"
KSERVE_HOME = "/app"  # the project modules the KServe server imports
KSERVE_ARTIFACTS = "/artifacts"  # what it serves: the spec, the manifest and the framework's model
# The model file each KServe service serves, by its manifest id (deploy/local/servers.py KSERVE).
MODEL_FILES = {"torch_checkpoint": paths.torch_checkpoint_path, "keras_model": paths.keras_model_path}


def image_name(service: str) -> str:
    """The image (and deploy/docker/<name>.Dockerfile) a service runs: its own name or the one it shares."""
    return IMAGE_OF.get(service, service)


def tf_model_base(model_name: str) -> str:
    """Where TF Serving finds the model's versions inside its container."""
    return f"/models/{model_name}"

# Resources per container: `cpus`/`memory` are limits (compose `deploy.resources.limits`, Kubernetes
# `limits`); `reserve` is the memory reservation (compose) or request (Kubernetes); `cpu_request`
# is the Kubernetes CPU request, which the autoscaler's utilization target is measured against.
LIMITS = {
    # Java frontend + one Python worker: about 420 MB resident measured on the local runner.
    "torchserve": {"cpus": "2", "memory": "1536M", "reserve": "512M", "cpu_request": "500m"},
    "tfserving": {"cpus": "2", "memory": "1024M", "reserve": "256M", "cpu_request": "250m"},
    "web": {"cpus": "0.5", "memory": "128M", "reserve": "16M", "cpu_request": "50m"},
    # Estimates, not measured in a container (no engine here): the local servers (`make serve`)
    # showed about 340 MB (PyTorch) and 670 MB (TensorFlow) resident when idle, one `ps` reading;
    # the limits leave room for batches and the reservations cover the idle size.
    "kserve-torch": {"cpus": "2", "memory": "1024M", "reserve": "384M", "cpu_request": "500m"},
    "kserve-tf": {"cpus": "2", "memory": "1536M", "reserve": "768M", "cpu_request": "500m"},
    # The local cluster with 2 replicas (the head's GCS, raylet and agents, the Serve controller and
    # proxy, two torch replicas) was about 1.9 GB resident (make bench-scale); the limit leaves room
    # for the autoscaler's third and fourth replica to start, and the tmpfs and /dev/shm count in it.
    RAYSERVE: {"cpus": "2", "memory": "2560M", "reserve": "2048M", "cpu_request": "1"},
}
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

    @property
    def container_name(self) -> str:
        return CONTAINER_PREFIX + self.name


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


# Both KServe services: the same command, the framework and ports after it. Inside a container the
# servers bind every interface (compose publishes them on the host's 127.0.0.1 only).
KSERVE_ENTRYPOINT = ["python", "-m", "serving.kserve.server", "--artifacts", KSERVE_ARTIFACTS, "--host", "0.0.0.0"]


def kserve_command(name: str) -> list:
    framework, rest, grpc, _ = KSERVE[name]
    return ["--framework", framework, "--http-port", str(SERVING_PORTS[rest]), "--grpc-port", str(SERVING_PORTS[grpc])]


def kserve_health(name: str) -> list:
    # The image has Python but no curl: urllib raises (exit 1) unless V2 readiness answers 200,
    # which KServe's ModelServer does once every model it serves is loaded.
    port = SERVING_PORTS[KSERVE[name][1]]
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
            "--http-port", str(SERVING_PORTS["rayserve_rest"]), "--num-cpus", LIMITS[RAYSERVE]["cpus"],
            "--object-store-mb", str(RAY_OBJECT_STORE_MB)]


def rayserve_health() -> list:
    # Serve's proxy answers V2 readiness once the application's replicas run (the KServe check, on its port).
    url = f"http://127.0.0.1:{SERVING_PORTS['rayserve_rest']}/v2/health/ready"
    return ["CMD", "python", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=2)"]


def rayserve_service(root: Path) -> Service:
    """Ray Serve over the PyTorch checkpoint: a one-container Ray cluster from the KServe image, the
    artifacts folder's spec, manifest and checkpoint mounted over the baked ones (as for kserve-torch)."""
    inside = Path(KSERVE_ARTIFACTS)
    return Service(
        name=RAYSERVE, image=BAKED_IMAGES[image_name(RAYSERVE)],
        ports={"rayserve_rest": SERVING_PORTS["rayserve_rest"]},
        mounts=tuple(Mount(where(root), str(where(inside))) for where in kserve_files("torch_checkpoint")),
        entrypoint=RAYSERVE_ENTRYPOINT, command=rayserve_command(), health=rayserve_health(),
        user=USERS[RAYSERVE], environment={"RAY_USAGE_STATS_ENABLED": "0"},
        # Ray's session folder (logs rotated at 16 MiB, two old files each) and sockets.
        tmpfs={"/tmp": "rw,nosuid,nodev,size=512m"}, shm_size=RAY_SHM,
        # A Ray cluster takes longer to come up than one server: its start period and retries together
        # are cluster.py's own --start-timeout (240 s), after which it gives up by itself.
        health_timing={**HEALTH_TIMING, "start_period": RAY_START_PERIOD})


def kserve_files(artifact: str) -> tuple:
    """What a KServe service serves, as functions of an artifacts folder: its spec, manifest and model file."""
    return paths.spec_path, manifest.manifest_path, MODEL_FILES[artifact]


def kserve_service(name: str, root: Path) -> Service:
    """A KServe server over one framework's model: the image holds the code and every model; the
    folder's own spec, manifest and model file are mounted over the baked ones, so a new training
    is served without a new image (Kubernetes runs the baked ones)."""
    _, rest, grpc, artifact = KSERVE[name]
    inside = Path(KSERVE_ARTIFACTS)
    return Service(
        name=name, image=BAKED_IMAGES[image_name(name)], ports={key: SERVING_PORTS[key] for key in (rest, grpc)},
        mounts=tuple(Mount(where(root), str(where(inside))) for where in kserve_files(artifact)),
        entrypoint=KSERVE_ENTRYPOINT, command=kserve_command(name), health=kserve_health(name), user=USERS[name])


def services(root: Path) -> list[Service]:
    """The services for the model trained into artifacts folder `root` (its spec names it).

    The model's config files are the committed deploy/config/ ones when they were rendered for
    this spec (the built-in task), else the copies `configs.render(root)` writes under
    <root>/run/containers/ (deploy/containers/configs.py).
    """
    from deploy.containers import configs  # configs builds its files from this plan

    model = specs.load(root).model_name
    config_dir = configs.folder(root) / "config"
    model_store = root / "torchserve" / "model-store"
    return [
        Service(
            name="torchserve", image=IMAGES["torchserve"],
            # Metrics (no authentication) stay on the container network: not published on the host.
            ports={name: SERVING_PORTS[name] for name in ("torchserve_inference", "torchserve_grpc_inference")},
            internal_ports={"torchserve_metrics": SERVING_PORTS["torchserve_metrics"]},
            mounts=(Mount(model_store, TS_MODEL_STORE), Mount(config_dir / "torchserve.properties", TS_CONFIG),
                    Mount(CONFIG_DIR / "torchserve_health.py", TS_HEALTH)),
            entrypoint=["torchserve"], command=torchserve_command(), health=torchserve_health(model),
            user=USERS["torchserve"], working_dir=TS_WORKDIR,
            # exec: Java's native libraries (netty epoll) are unpacked into java.io.tmpdir and loaded.
            tmpfs={"/tmp": "rw,exec,nosuid,nodev,size=512m"},
            environment={"LOG_LOCATION": f"{TS_WORKDIR}/logs", "METRICS_LOCATION": f"{TS_WORKDIR}/logs",
                         "TEMP": TS_WORKDIR}),
        Service(
            name="tfserving", image=IMAGES["tfserving"],
            ports={name: SERVING_PORTS[name] for name in ("tfserving_grpc", "tfserving_rest")},
            mounts=(Mount(tf_configs.base_path(root), tf_model_base(model)),
                    Mount(config_dir / tf_configs.CONFIG_FILES["models"], f"{TF_CONFIG_DIR}/models.config"),
                    Mount(tf_configs.CONFIG_DIR / tf_configs.CONFIG_FILES["batching"],
                          f"{TF_CONFIG_DIR}/batching.config"),
                    Mount(tf_configs.CONFIG_DIR / tf_configs.CONFIG_FILES["monitoring"],
                          f"{TF_CONFIG_DIR}/monitoring.config")),
            entrypoint=["tensorflow_model_server"], command=tfserving_command(), health=tfserving_health(model),
            user=USERS["tfserving"]),
        Service(
            name="web", image=IMAGES["web"], ports={"web_demo": SERVING_PORTS["web_demo"]},
            mounts=(Mount(root / "web", WEB_ROOT), Mount(CONFIG_DIR / "nginx.conf", WEB_CONFIG)),
            entrypoint=None, command=["nginx", "-g", "daemon off;"], health=web_health(), user=USERS["web"]),
        *(kserve_service(name, root) for name in KSERVE),
        rayserve_service(root),
    ]


def published(service: Service, endpoints=None) -> dict:
    """{container port: (host ip, host port)} with the DIGITS_* overrides of serving/endpoints.py."""
    endpoints = endpoints or endpoints_mod.resolve()
    return {port: (endpoints.host, endpoints.ports[name]) for name, port in service.ports.items()}


def describe(root: Path) -> dict:
    """The plan as plain data (printed by `main`, compared with the compose file by the tests)."""
    return {s.name: {"image": s.image, "ports": s.ports, "user": s.user, "command": s.command,
                     "mounts": [f"{m.source} -> {m.target} ({'ro' if m.read_only else 'rw'})" for m in s.mounts]}
            for s in services(root)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    print(json.dumps(describe((args.artifacts or paths.artifacts_dir()).resolve()), indent=2))


if __name__ == "__main__":
    main()
