"""Every deployment target as a Predictor, in ONE registry: what parity, deploy-all, load tests,
benchmarks and the tests iterate.

    from core import registry
    for name in registry.TARGETS:                        # or registry.names(kind="server")
        predictor = registry.load(name, root=root, endpoints=endpoints)
        probabilities = predictor.predict(batch)          # (N, *item_shape) -> (N, K)

A target names its source framework (whose training produced its weights, the reference its
answers are held to), its precision, its kind, the manifest id of the file it runs (for its size
and its path) and a factory: a callable (root, endpoints) -> Predictor that imports its runtime
only when called. Adding a target is one adapter plus one line in TARGETS.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

KINDS = ("reference", "compiled", "in-process", "edge", "server", "browser")


@dataclass(frozen=True)
class Target:
    name: str
    framework: str  # "torch" or "tensorflow": the source framework, whose eager model is the reference
    precision: str  # "fp32" or "int8"
    kind: str  # one of KINDS
    artifact: str | None  # manifest id of the file it runs (None: TF Serving's newest version, found on disk)
    factory: Callable  # (root: Path, endpoints) -> Predictor
    command: str | None = None  # the module whose main() is its command line (`python -m <command> --model ...`)


def _class(module: str, cls: str) -> Callable:
    """A factory for an adapter class constructed from the artifacts folder alone."""
    return lambda root, endpoints: getattr(importlib.import_module(module), cls)(root)


def _runner(module: str, cls: str, artifact: str) -> Callable:
    """A factory for an edge runner: the Predictor class over the verified file `artifact`."""
    def make(root, endpoints):
        return getattr(importlib.import_module(module), cls)(artifact_path(artifact, root), root=root)
    make.command = module
    return make


def _client(module: str, cls: str) -> Callable:
    """A factory for a server client at `endpoints` (the model name and TorchServe's key come from `root`)."""
    def make(root, endpoints):
        from serving import endpoints as endpoints_mod

        endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        return getattr(importlib.import_module(module), cls)(endpoints, root=root)
    return make


def _chromium(runtime: str) -> Callable:
    """A factory for one of the demo page's runtimes (tfjs, onnxruntime-web, litert, litert-torch) in headless Chromium."""
    def make(root, endpoints):
        from web.tfjs.chromium_predictor import ChromiumPredictor

        # The page as `make serve` serves it when that server runs over this folder, else a private one.
        url = f"{endpoints.url('web_demo')}/" if endpoints is not None and web_running(root) else None
        return ChromiumPredictor(root, url=url, runtime=runtime)
    return make


def _t(name, framework, precision, kind, artifact, factory) -> Target:
    return Target(name, framework, precision, kind, artifact, factory, getattr(factory, "command", None))


TARGETS = {target.name: target for target in (
    # PyTorch-trained weights
    _t("torch-eager", "torch", "fp32", "reference", "torch_checkpoint", _class("edge.eager", "TorchEagerPredictor")),
    _t("torch-compile", "torch", "fp32", "compiled", "torch_checkpoint",
       _class("edge.compiled", "TorchCompilePredictor")),
    _t("executorch-xnnpack-fp32", "torch", "fp32", "edge", "executorch_xnnpack_fp32",
       _runner("edge.executorch.run", "ExecuTorchPredictor", "executorch_xnnpack_fp32")),
    _t("executorch-portable-fp32", "torch", "fp32", "edge", "executorch_portable_fp32",
       _runner("edge.executorch.run", "ExecuTorchPredictor", "executorch_portable_fp32")),
    _t("onnx-fp32", "torch", "fp32", "edge", "onnx_fp32", _runner("edge.onnx.run", "OnnxPredictor", "onnx_fp32")),
    # int8, PyTorch side: PT2E on XNNPACK (edge/executorch/quantize.py), ONNX Runtime QDQ (edge/onnx/quantize.py).
    _t("executorch-xnnpack-int8", "torch", "int8", "edge", "executorch_xnnpack_int8",
       _runner("edge.executorch.run", "ExecuTorchPredictor", "executorch_xnnpack_int8")),
    _t("onnx-int8", "torch", "int8", "edge", "onnx_int8", _runner("edge.onnx.run", "OnnxPredictor", "onnx_int8")),
    _t("onnxruntime-web-chromium", "torch", "fp32", "browser", "onnx_fp32", _chromium("onnxruntime-web")),
    # Google's converter (litert-torch, .venv-litert-torch): a batch-1 .tflite, run one image per invoke.
    _t("litert-torch-fp32", "torch", "fp32", "edge", "tflite_torch_fp32",
       _runner("edge.tflite.run", "TFLitePredictor", "tflite_torch_fp32")),
    _t("litert-torch-chromium", "torch", "fp32", "browser", "tflite_torch_fp32", _chromium("litert-torch")),
    _t("torchserve-rest", "torch", "fp32", "server", "torchserve_mar",
       _client("serving.torchserve.client", "TorchServeRest")),
    _t("torchserve-grpc", "torch", "fp32", "server", "torchserve_mar",
       _client("serving.torchserve.client", "TorchServeGrpc")),
    # TensorFlow-trained weights
    _t("keras-eager", "tensorflow", "fp32", "reference", "keras_model", _class("edge.eager", "KerasEagerPredictor")),
    _t("tf-function", "tensorflow", "fp32", "compiled", "keras_model", _class("edge.compiled", "TfFunctionPredictor")),
    _t("tf-xla", "tensorflow", "fp32", "compiled", "keras_model", _class("edge.compiled", "TfXlaPredictor")),
    _t("savedmodel", "tensorflow", "fp32", "in-process", None, _class("serving.inprocess", "SavedModelInProcess")),
    _t("tfserving-grpc", "tensorflow", "fp32", "server", None, _client("serving.tfserving.client", "TFServingGrpc")),
    _t("tfserving-rest", "tensorflow", "fp32", "server", None, _client("serving.tfserving.client", "TFServingRest")),
    _t("tflite-fp32", "tensorflow", "fp32", "edge", "tflite_fp32",
       _runner("edge.tflite.run", "TFLitePredictor", "tflite_fp32")),
    _t("tflite-int8", "tensorflow", "int8", "edge", "tflite_int8",
       _runner("edge.tflite.run", "TFLitePredictor", "tflite_int8")),
    _t("tfjs-node", "tensorflow", "fp32", "browser", "tfjs_graph_model", _class("web.tfjs.predictor", "TfjsPredictor")),
    _t("tfjs-chromium", "tensorflow", "fp32", "browser", "web_demo", _chromium("tfjs")),
    _t("litert-chromium", "tensorflow", "fp32", "browser", "tflite_fp32_batch1", _chromium("litert")),
)}

REFERENCES = {"torch": "torch-eager", "tensorflow": "keras-eager"}  # source framework -> reference target
# What each server runs, called in-process (no server): the serving benchmarks' baseline.
IN_PROCESS = {"torch": "torch-eager", "tensorflow": "savedmodel"}


def names(kind: str | None = None) -> list[str]:
    """Target names in registry order, all or of one kind."""
    if kind is not None and kind not in KINDS:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return [name for name, target in TARGETS.items() if kind is None or target.kind == kind]


def served() -> list[str]:
    """The served endpoints: torchserve-rest, torchserve-grpc, tfserving-grpc, tfserving-rest."""
    return names("server")


def load(name: str, root: Path | None = None, endpoints=None):
    """The Predictor of target `name` over the artifacts in `root` (servers: at `endpoints`)."""
    from training import paths

    if name not in TARGETS:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    predictor = TARGETS[name].factory((root or paths.artifacts_dir()).resolve(), endpoints)
    predictor.name = name  # one name everywhere, whatever the adapter calls itself
    return predictor


def reference_for(name: str) -> str:
    """The reference target (eager source framework) that target `name` is held to."""
    return REFERENCES[TARGETS[name].framework]


def artifact_id(name: str, root: Path) -> str | None:
    """The manifest id of the file target `name` runs; TF Serving: the newest exported version."""
    target = TARGETS[name]
    if target.artifact is None:
        from serving.tfserving import configs

        found = configs.versions(configs.base_path(root))
        return configs.artifact_id(found[-1]) if found else None
    return target.artifact


def artifact_path(artifact: str, root: Path | None = None) -> Path:
    """Where manifest entry `artifact` lies (ManifestError naming the fix when it is not built)."""
    from training import manifest, paths

    root = (root or paths.artifacts_dir()).resolve()
    entry = manifest.load(root).get(artifact)
    if entry is None:
        raise manifest.ManifestError(f"{artifact!r} is not in {manifest.manifest_path(root)}: run `make export`")
    return root / entry["path"]


def web_running(root: Path) -> bool:
    """Whether the local runner's demo server (`make serve`, `make deploy-all`) runs over `root`."""
    from deploy.local import runner

    return runner.read_pid(runner.run_dir("web", root)) is not None


def where(name: str, root: Path | None = None, endpoints=None) -> str:
    """Where target `name` answers, in words a reader can follow: a URL, a host:port, or a file."""
    from serving import endpoints as endpoints_mod
    from training import manifest, paths

    root = (root or paths.artifacts_dir()).resolve()
    endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
    model = endpoints.model_name
    served = {
        "torchserve-rest": f"POST {endpoints.url('torchserve_inference')}/predictions/{model}",
        "torchserve-grpc": f"grpc://{endpoints.target('torchserve_grpc_inference')} (Predictions)",
        "tfserving-grpc": f"grpc://{endpoints.target('tfserving_grpc')} (Predict)",
        "tfserving-rest": f"POST {endpoints.url('tfserving_rest')}/v1/models/{model}:predict",
    }
    if name in served:
        return served[name]
    if name.endswith("-chromium"):
        page = f"{endpoints.url('web_demo')}/" if web_running(root) else "a private server on a free port"
        return f"Chromium: {page} (page/runtimes.js, {name.removesuffix('-chromium')})"
    entry = manifest.load(root).get(artifact_id(name, root) or "")
    path = root / entry["path"] if entry else Path("(not built)")
    return f"node: {path}" if name == "tfjs-node" else str(path)


def describe_error(name: str, error: Exception) -> str:
    """One line for a target that could not answer, with the likely fix for a server."""
    details = error.details() if callable(getattr(error, "details", None)) else str(error)  # gRPC errors
    text = f"{type(error).__name__}: {(details.strip().splitlines() or [''])[0][:200]}"
    if TARGETS[name].kind == "server" and unreachable(error):
        text += " (is it running? `make serve`)"
    return text


def unreachable(error: BaseException) -> bool:
    """Whether `error` says nothing answered at the address (so "is it running?" is the likely fix).

    A server that answered, even with a 400 or an unknown model, is running: its own message is the cause.
    """
    import requests

    if isinstance(error, (requests.ConnectionError, ConnectionError, FileNotFoundError)):
        return True  # FileNotFoundError: TorchServe's key file, written at its start
    code = getattr(error, "code", None)
    if callable(code):
        try:
            return code().name == "UNAVAILABLE"  # gRPC: no connection could be made
        except Exception:  # not a finished gRPC call
            return False
    return False
