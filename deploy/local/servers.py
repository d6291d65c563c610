"""What the runner starts: the command, environment, readiness check and endpoints of each server.

TorchServe runs from `artifacts/run/torchserve/` (its working directory, where it writes the token
key file and its logs) with `serving/torchserve/config.properties`, addresses overridden from
serving/endpoints.py. TF Serving is the real `tensorflow_model_server` when one is found
(`$TFSERVING_BIN`, else on PATH), otherwise the project's TF-Serving-compatible server; both get
the same flags and the same models.config, batching and monitoring files. With DIGITS_GRPC_TLS_CERT and
DIGITS_GRPC_TLS_KEY set (serving/tls.py), both serve gRPC over TLS with that certificate.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from serving import tls
from serving.tfserving import configs as tf_configs
from serving.torchserve import archive
from serving.torchserve.client import read_token
from training import manifest, paths

NAMES = ("torchserve", "tfserving")
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


def _answers(check: Callable[[], bool]) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return check()
        except (requests.RequestException, OSError, KeyError, ValueError):
            return False
    return ready


def torchserve_config(root: Path, endpoints) -> Path:
    """serving/torchserve/config.properties with this run's addresses and a private tmpdir."""
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
    lines = []
    for line in (REPO / "serving" / "torchserve" / "config.properties").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key in overrides:
            line = f"{key}={overrides[key]}"
        elif key == "vmargs":
            line = f"{line} -Djava.io.tmpdir={tmp}"
        lines.append(line)
    lines += [f"{key}={value}" for key, value in overrides.items()
              if not any(line.startswith(f"{key}=") for line in lines)]  # keys the file does not have
    out = folder / "config.properties"
    out.write_text("\n".join(lines) + "\n")
    return out


def torchserve(root: Path, endpoints) -> Server:
    folder = root / "run" / "torchserve"
    config = folder / "config.properties"
    management = endpoints.url("torchserve_management")

    def prepare() -> None:
        try:
            manifest.verify("torchserve_mar", root)
        except manifest.ManifestError as error:
            raise PrepareError(str(error)) from None
        torchserve_config(root, endpoints)
        (folder / "key_file.json").unlink(missing_ok=True)  # a fresh key file proves this start wrote it

    def check() -> bool:
        headers = {"Authorization": f"Bearer {read_token(root, 'management')}"}
        models = requests.get(f"{management}/models/{endpoints.model_name}", headers=headers, timeout=2).json()
        return any(worker["status"] == "READY" for worker in models[0]["workers"])

    command = [str(Path(sys.executable).with_name("torchserve")), "--start", "--foreground", "--ncs",
               "--ts-config", str(config), "--model-store", str(archive.model_store(root))]
    return Server(
        name="torchserve", describe="TorchServe 0.12 (Java frontend, Python worker)", command=command, cwd=folder,
        marker=str(config), ready=_answers(check), prepare=prepare,
        env={"TEMP": str(folder / "tmp"), "TMPDIR": str(folder / "tmp"), "LOG_LOCATION": str(folder / "logs"),
             "METRICS_LOCATION": str(folder / "logs")},
        endpoint_lines=[
            f"REST      POST {endpoints.url('torchserve_inference')}/predictions/{endpoints.model_name}",
            f"gRPC      {endpoints.target('torchserve_grpc_inference')} (inference), "
            f"{endpoints.target('torchserve_grpc_management')} (management)",
            f"metrics   {endpoints.url('torchserve_metrics')}/metrics",
            f"token     {folder / 'key_file.json'} (\"inference\" key, header Authorization: Bearer <key>)",
        ])


def tfserving_binary() -> str | None:
    """The real tensorflow_model_server: $TFSERVING_BIN, else PATH; None when neither has it."""
    configured = os.environ.get("TFSERVING_BIN")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("tensorflow_model_server")


def tfserving(root: Path, endpoints) -> Server:
    folder = root / "run" / "tfserving"
    rest = endpoints.url("tfserving_rest")
    files = tf_configs.rendered_paths(folder)
    binary = tfserving_binary()
    flags = [f"--port={endpoints.ports['tfserving_grpc']}", f"--rest_api_port={endpoints.ports['tfserving_rest']}",
             f"--model_config_file={files['models']}", "--enable_batching",
             f"--batching_parameters_file={files['batching']}", f"--monitoring_config_file={files['monitoring']}",
             "--file_system_poll_wait_seconds=1"]
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
        tf_configs.render(root, folder)
        if tls_files:
            ssl_config.write_text(tls.tfserving_ssl_config(tls_files))
            ssl_config.chmod(0o600)  # it holds the private key

    def check() -> bool:
        status = requests.get(f"{rest}/v1/models/{endpoints.model_name}", timeout=2).json()
        return any(v["state"] == "AVAILABLE" for v in status["model_version_status"])

    return Server(
        name="tfserving", describe=describe, command=command, cwd=folder, marker=marker, ready=_answers(check),
        prepare=prepare, env={"PYTHONPATH": str(REPO)},
        endpoint_lines=[
            f"gRPC      {endpoints.target('tfserving_grpc')} (PredictionService, ModelService; model {endpoints.model_name!r})",
            f"REST      POST {rest}/v1/models/{endpoints.model_name}:predict   GET {rest}/v1/models/{endpoints.model_name}[/metadata]",
            f"metrics   {rest}{tf_configs.metrics_path()}",
        ])
