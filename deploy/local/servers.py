"""What the runner starts: the command, environment, readiness check and endpoints of each server.

TorchServe runs from `artifacts/run/torchserve/` (its working directory, where it writes the token
key file and its logs) with `serving/torchserve/config.properties`, addresses overridden from
serving/endpoints.py. TF Serving is the real `tensorflow_model_server` when one is found
(`$TFSERVING_BIN`, else on PATH), otherwise the project's TF-Serving-compatible server; both get
the same flags and the same models.config, batching and monitoring files. The browser demo
(`artifacts/web/`, built by `make export-web`) is served by `python -m web.tfjs.serve`, the same
static server `make demo` runs, on the spec's `web_demo` port. With DIGITS_GRPC_TLS_CERT and
DIGITS_GRPC_TLS_KEY set (serving/tls.py), both model servers serve gRPC over TLS with that certificate.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import requests

from core import environments, manifest, paths
from core import servers as table
from core import spec as specs
from deploy.local.settings import ServerSettings
from serving import tls
from serving.tfserving import configs as tf_configs
from serving.torchserve import archive
from serving.torchserve.client import read_token

# From the table of servers (core/servers.py), as it is at import: what serves the model (benchmarks and soaks
# watch these), everything the runner may start (the page's server too), and what may fail without taking the
# rest down. The runner itself reads the table when it runs.
MODEL_SERVERS = tuple(table.model_servers())
NAMES = tuple(table.SERVERS)
OPTIONAL = tuple(name for name, row in table.SERVERS.items() if row.optional)
REPO = paths.REPO_ROOT


class PrepareError(RuntimeError):
    """An artifact a server needs is missing or does not match the manifest."""


@dataclass(eq=False)
class Server:
    name: str
    describe: str  # what runs, in words (printed by `make serve`)
    command: list
    cwd: Path
    marker: str  # part of the command line that identifies the process later
    ready: Callable[[], bool]
    prepare: Callable[[], None]
    endpoint_lines: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # name in SERVING_PORTS -> port it binds (checked free before launch)
    # The manifest ids of the files it loads once, at start (with spec.json: what it was started over; a running
    # server is restarted when they changed). TF Serving polls its versions itself: only the spec is its.
    serves: tuple = ()


def _answers(check: Callable[[], bool]) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return check()
        except (requests.RequestException, OSError, KeyError, ValueError):
            return False
    return ready


def torchserve_config(root: Path, endpoints, settings: ServerSettings | None = None) -> Path:
    """serving/torchserve/config.properties with this run's addresses, a private tmpdir and the settings' model keys."""
    folder = root / "run" / "torchserve"
    tmp = folder / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    host, ports = endpoints.host, endpoints.ports
    overrides = {
        "inference_address": f"http://{host}:{ports['torchserve_inference']}",
        "management_address": f"http://{host}:{ports['torchserve_management']}",
        "metrics_address": f"http://{host}:{ports['torchserve_metrics']}",
        "grpc_inference_address": host,
        "grpc_management_address": host,
        "grpc_inference_port": str(ports["torchserve_grpc_inference"]),
        "grpc_management_port": str(ports["torchserve_grpc_management"]),
    }
    tls_files = tls.from_environment()
    if tls_files:  # gRPC over TLS (REST stays http on 127.0.0.1)
        overrides.update({"enable_grpc_ssl": "true", "certificate_file": str(tls_files.cert.resolve()),
                          "private_key_file": str(tls_files.key.resolve())})
    # Only archives in this run's model store can be registered (serving/torchserve/archive.py).
    overrides["allowed_urls"] = archive.store_only_urls(archive.model_store(root).resolve())
    record = archive.published(root)  # the versions in service when it last ran, and the default
    lines = []
    source = (REPO / "serving" / "torchserve" / "config.properties").read_text()
    for line in Template(source).substitute(MODEL_NAME=specs.load(root).model_name).splitlines():
        key = line.split("=", 1)[0].strip()
        if key in overrides:
            line = f"{key}={overrides[key]}"
        elif key == "vmargs":
            # A setting's vmargs come after the file's, e.g. a log4j2 file ({repo}: this checkout).
            more = settings.torchserve_config.get("vmargs", "") if settings else ""
            line = " ".join(filter(None, [line, more.format(repo=REPO), f"-Djava.io.tmpdir={tmp}"]))
        elif key == "load_models":
            # TorchServe makes the first version it loads the default: the published default first.
            order = [record["default"], *(v for v in record["versions"] if v != record["default"])]
            line = f"{key}={','.join(archive.mar_path(root, v).name for v in order)}"
        elif key == "models":
            models = json.loads(line.split("=", 1)[1])
            for name, versions in models.items():
                (base,) = versions.values()
                base = {**base, **(settings.torchserve if settings else {})}
                models[name] = {v: {**base, "marName": archive.mar_path(root, v).name,
                                    "defaultVersion": v == record["default"]} for v in record["versions"]}
            line = f"models={json.dumps(models)}"
        elif key == "default_workers_per_model" and settings and "minWorkers" in settings.torchserve:
            line = f"{key}={settings.torchserve['minWorkers']}"
        elif settings and key in settings.torchserve_config:  # e.g. number_of_netty_threads
            line = f"{key}={settings.torchserve_config[key]}"
        lines.append(line)
    extra = {**(settings.torchserve_config if settings else {}), **overrides}
    lines += [f"{key}={value}" for key, value in extra.items()
              if not any(line.startswith(f"{key}=") for line in lines)]  # keys the file does not have
    out = folder / "config.properties"
    out.write_text("\n".join(lines) + "\n")
    return out


def torchserve(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    folder = root / "run" / "torchserve"
    config = folder / "config.properties"
    management = endpoints.url("torchserve_management")

    def prepare() -> None:
        try:
            for version in archive.published(root)["versions"]:  # version 1.0, and any published since
                manifest.verify(archive.artifact_id(version), root)
        except (manifest.ManifestError, archive.PublishedError) as error:
            raise PrepareError(str(error)) from None
        torchserve_config(root, endpoints, settings)
        (folder / "key_file.json").unlink(missing_ok=True)  # a fresh key file proves this start wrote it

    def check() -> bool:
        headers = {"Authorization": f"Bearer {read_token(root, 'management')}"}
        models = requests.get(f"{management}/models/{endpoints.model_name}", headers=headers, timeout=2).json()
        return any(worker["status"] == "READY" for worker in models[0]["workers"])

    # Under its key keeper: TorchServe's inference and management keys are renewed before they expire.
    command = [sys.executable, str(REPO / "serving" / "torchserve" / "keys.py"), "--",
               str(Path(sys.executable).with_name("torchserve")), "--start", "--foreground", "--ncs",
               "--ts-config", str(config), "--model-store", str(archive.model_store(root))]
    return Server(
        name="torchserve", describe="TorchServe 0.12 (Java frontend, Python worker; keys renewed at half-life)",
        command=command, cwd=folder,
        marker=str(config), ready=_answers(check), prepare=prepare,
        serves=("torchserve_mar",),
        env={"TEMP": str(folder / "tmp"), "TMPDIR": str(folder / "tmp"), "LOG_LOCATION": str(folder / "logs"),
             "METRICS_LOCATION": str(folder / "logs"), **(settings.torchserve_env if settings else {})},
        ports={name: endpoints.ports[name] for name in endpoints.ports if name.startswith("torchserve")},
        endpoint_lines=[
            f"REST      POST {endpoints.url('torchserve_inference')}/predictions/{endpoints.model_name}",
            f"gRPC      {endpoints.target('torchserve_grpc_inference')} (inference), "
            f"{endpoints.target('torchserve_grpc_management')} (management)",
            f"metrics   {endpoints.url('torchserve_metrics')}/metrics",
            f"token     {folder / 'key_file.json'} (\"inference\" key, header Authorization: Bearer <key>; "
            "renewed while it runs: read it again when it changes)",
        ])


def tfserving_binary() -> str | None:
    """The real tensorflow_model_server: $TFSERVING_BIN, else PATH; None when neither has it."""
    configured = os.environ.get("TFSERVING_BIN")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("tensorflow_model_server")


def tfserving(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    folder = root / "run" / "tfserving"
    rest = endpoints.url("tfserving_rest")
    files = tf_configs.rendered_paths(folder)
    binary = tfserving_binary()
    flags = [f"--port={endpoints.ports['tfserving_grpc']}", f"--rest_api_port={endpoints.ports['tfserving_rest']}",
             f"--model_config_file={files['models']}", "--enable_batching",
             f"--batching_parameters_file={files['batching']}", f"--monitoring_config_file={files['monitoring']}",
             "--file_system_poll_wait_seconds=1"]
    if settings and not settings.tfserving_batching:
        flags = [f for f in flags if not f.startswith(("--enable_batching", "--batching_parameters_file"))]
    if settings:  # e.g. --tensorflow_intra_op_parallelism=1: flags of the real binary, which the compatible
        # server takes too
        flags += [f"--{name}={value}" for name, value in settings.tfserving_flags.items()]
    tls_files = tls.from_environment()
    ssl_config = folder / "ssl.config"
    if tls_files:  # the real server's flag; the compatible server reads the same file
        flags.append(f"--ssl_config_file={ssl_config}")
    if binary:
        command, marker = [binary, *flags], binary
        describe = f"the real tensorflow_model_server ({binary})"
    else:
        # The compatible server also binds a host; the real binary listens on every interface.
        command = [sys.executable, "-m", "serving.tfserving.compat_server", *flags, f"--host={endpoints.host}"]
        marker = f"--model_config_file={files['models']}"
        describe = ("the project's TF-Serving-compatible server (serving/tfserving/compat_server.py): "
                    "tensorflow_model_server not found on PATH or $TFSERVING_BIN")

    def prepare() -> None:
        try:
            versions = tf_configs.verified_versions(root)
        except manifest.ManifestError as error:
            raise PrepareError(str(error)) from None
        if not versions:
            raise PrepareError(f"no SavedModel version under {tf_configs.base_path(root)}: run `make export`")
        tf_configs.render(root, folder, batching=settings.tfserving if settings else None)
        if tls_files:
            ssl_config.write_text(tls.tfserving_ssl_config(tls_files))
            ssl_config.chmod(0o600)  # it holds the private key

    def check() -> bool:
        status = requests.get(f"{rest}/v1/models/{endpoints.model_name}", timeout=2).json()
        return any(v["state"] == "AVAILABLE" for v in status["model_version_status"])

    return Server(
        name="tfserving", describe=describe, command=command, cwd=folder, marker=marker, ready=_answers(check),
        prepare=prepare, env={"PYTHONPATH": str(REPO)},
        ports={name: endpoints.ports[name] for name in ("tfserving_grpc", "tfserving_rest")},
        endpoint_lines=[
            f"gRPC      {endpoints.target('tfserving_grpc')} (PredictionService, ModelService; "
            f"model {endpoints.model_name!r})",
            f"REST      POST {rest}/v1/models/{endpoints.model_name}:predict   "
            f"GET {rest}/v1/models/{endpoints.model_name}[/metadata]",
            f"metrics   {rest}{tf_configs.metrics_path()}",
        ])


KSERVE_PYTHON = environments.python("kserve")
RAY_PYTHON = environments.python("ray")


def kserve(name: str, root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    """KServe's ModelServer over one framework's model (serving/kserve/server.py, in .venv-kserve): the row's
    framework, REST and gRPC ports and model file (core/servers.py)."""
    row = table.SERVERS[name]
    framework, rest_key, grpc_key, artifact = row.framework, row.port("rest"), row.port("grpc"), row.model
    rest = endpoints.url(rest_key)
    command = [str(KSERVE_PYTHON), "-m", "serving.kserve.server", "--framework", framework,
               "--artifacts", str(root), "--host", endpoints.host,
               "--http-port", str(endpoints.ports[rest_key]), "--grpc-port", str(endpoints.ports[grpc_key]),
               *(f"--{flag}={value}" for flag, value in (settings.kserve_flags if settings else {}).items())]

    def prepare() -> None:
        if not KSERVE_PYTHON.exists():
            raise PrepareError(f"{KSERVE_PYTHON} not found: run `make setup` (KServe has an environment of its own)")
        try:
            manifest.verify(artifact, root)
        except manifest.ManifestError as error:
            raise PrepareError(str(error)) from None

    def check() -> bool:
        model = requests.get(f"{rest}/v2/models/{endpoints.model_name}/ready", timeout=2)
        return model.status_code == 200 and model.json().get("ready") is True

    return Server(
        name=name, describe=f"KServe 0.21 ModelServer ({framework}; V2 REST + gRPC, V1 REST)", command=command,
        cwd=REPO, marker=f"serving.kserve.server --framework {framework} --artifacts {root}", ready=_answers(check),
        prepare=prepare, env={"PYTHONPATH": str(REPO)}, serves=(artifact,),
        ports={key: endpoints.ports[key] for key in (rest_key, grpc_key)},
        endpoint_lines=[
            f"V2 REST   POST {rest}/v2/models/{endpoints.model_name}/infer   "
            f"GET {rest}/v2/models/{endpoints.model_name}",
            f"V2 gRPC   {endpoints.target(grpc_key)} (inference.GRPCInferenceService)",
            f"V1 REST   POST {rest}/v1/models/{endpoints.model_name}:predict",
            f"metrics   {rest}/metrics   (no authentication: put a gateway in front, deploy/kserve/README.md)",
        ])


def kserve_torch(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    return kserve("kserve-torch", root, endpoints, settings)


def kserve_tf(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    return kserve("kserve-tf", root, endpoints, settings)


def rayserve(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    """A local Ray cluster (head in this process tree) serving the PyTorch model on Ray Serve
    (serving/rayserve/cluster.py, in .venv-ray): ready once every replica runs and the model answers."""
    folder = root / "run" / "rayserve"
    rest = endpoints.url("rayserve_rest")
    artifact = table.SERVERS["rayserve"].model  # the PyTorch checkpoint
    command = [str(RAY_PYTHON), "-m", "serving.rayserve.cluster", "--artifacts", str(root), "--run", str(folder),
               "--host", endpoints.host, "--http-port", str(endpoints.ports["rayserve_rest"]),
               *(f"--{flag}={value}" for flag, value in (settings.rayserve_flags if settings else {}).items())]

    def prepare() -> None:
        if not RAY_PYTHON.exists():
            raise PrepareError(f"{RAY_PYTHON} not found: run `make setup` (Ray Serve has an environment of its own)")
        try:
            manifest.verify(artifact, root)
        except manifest.ManifestError as error:
            raise PrepareError(str(error)) from None

    def check() -> bool:
        if not (folder / "ready.json").exists():  # written once every replica runs
            return False
        model = requests.get(f"{rest}/v2/models/{endpoints.model_name}/ready", timeout=2)
        return model.status_code == 200 and model.json().get("ready") is True

    return Server(
        name="rayserve", describe="Ray 2.60 Serve on a local Ray cluster (PyTorch; V2 REST, replicas, @serve.batch)",
        command=command, cwd=REPO, marker=f"serving.rayserve.cluster --artifacts {root}", ready=_answers(check),
        prepare=prepare, env={"PYTHONPATH": str(REPO)}, ports={"rayserve_rest": endpoints.ports["rayserve_rest"]},
        serves=(artifact,),
        endpoint_lines=[
            f"V2 REST   POST {rest}/v2/models/{endpoints.model_name}/infer   "
            f"GET {rest}/v2/models/{endpoints.model_name}",
            f"replicas  {folder / 'ready.json'} (Ray's logs under {folder / 'ray'}; no dashboard, no job API)",
        ])


def web_built(root: Path) -> bool:
    """Whether the demo page was built, whole, into `root` (`make export-web`): a build that stopped
    midway leaves files but no matching manifest entry, and does not count."""
    from web.tfjs.export import is_built

    return is_built(root)


def web(root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    url = endpoints.url("web_demo")
    command = [sys.executable, "-m", "web.tfjs.serve", "--host", endpoints.host,
               "--port", str(endpoints.ports["web_demo"]), "--artifacts", str(root)]

    def prepare() -> None:
        try:
            manifest.verify("web_demo", root)  # the server checks again; this fails before launching
        except manifest.ManifestError as error:
            raise PrepareError(str(error)) from None

    def check() -> bool:
        # The page reads spec.json first: when that answers with this model, the page can load.
        return requests.get(f"{url}/spec.json", timeout=2).json()["model_name"] == endpoints.model_name

    return Server(
        name="web", describe="the browser demo (python -m web.tfjs.serve, static files)", command=command,
        cwd=REPO, marker=f"web.tfjs.serve --host {endpoints.host} --port {endpoints.ports['web_demo']} "
                         f"--artifacts {root}",
        ready=_answers(check), prepare=prepare, ports={"web_demo": endpoints.ports["web_demo"]}, serves=("web_demo",),
        endpoint_lines=[f"page      {url}/  (draw a digit; the model runs in the browser)"])


def build(name: str, root: Path, endpoints, settings: ServerSettings | None = None) -> Server:
    """Server `name` of the table (core/servers.py) over `root`: its row's launcher, called."""
    from core.registry import named

    return named(table.SERVERS[name].launcher)(root, endpoints, settings)
