"""Every deployment target as a Predictor: the one list that parity, deploy-all, load tests and reports iterate.

    from deploy import targets
    for target in targets.TARGETS.values():
        predictor = targets.load(target.name, root=root, endpoints=endpoints)
        probabilities = predictor.predict(batch)     # (N, 8, 8) float32 0..16 -> (N, 10)

A target names its source framework (the framework whose training produced its weights, the
reference its answers are held to), its precision, its kind (in-process reference, a compiled
graph of it, edge runtime, server, browser), the manifest id of the file it runs (for its size)
and where it answers. The per-kind registries (serving/registry.py, edge/registry.py,
edge/compiled.py) stay the places that know how to build each Predictor; this module only lists them side by side. Adding a target is one line here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from training import manifest, paths

KINDS = ("reference", "compiled", "edge", "server", "browser")


@dataclass(frozen=True)
class Target:
    name: str
    framework: str  # "torch" or "tensorflow": the source framework, whose eager model is the reference
    precision: str  # "fp32" or "int8"
    kind: str  # one of KINDS
    artifact: str | None  # manifest id of the file it runs (None: a server's own copy)
    needs: str  # "artifacts", "edge", "server" or "node"/"chromium": what must exist before it can answer
    factory: str  # "module:callable" taking (name, root, endpoints) -> Predictor


def _t(name, framework, precision, kind, artifact, needs, factory) -> Target:
    return Target(name, framework, precision, kind, artifact, needs, factory)


TARGETS = {target.name: target for target in (
    # PyTorch-trained weights
    _t("torch-eager", "torch", "fp32", "reference", "torch_checkpoint", "artifacts", "deploy.targets:_eager"),
    _t("torch-compile", "torch", "fp32", "compiled", "torch_checkpoint", "artifacts", "deploy.targets:_compiled"),
    _t("executorch-xnnpack-fp32", "torch", "fp32", "edge", "executorch_xnnpack_fp32", "edge", "deploy.targets:_edge"),
    _t("executorch-portable-fp32", "torch", "fp32", "edge", "executorch_portable_fp32", "edge", "deploy.targets:_edge"),
    _t("onnx-fp32", "torch", "fp32", "edge", "onnx_fp32", "edge", "deploy.targets:_edge"),
    _t("torchserve-rest", "torch", "fp32", "server", "torchserve_mar", "server", "deploy.targets:_served"),
    _t("torchserve-grpc", "torch", "fp32", "server", "torchserve_mar", "server", "deploy.targets:_served"),
    # TensorFlow-trained weights
    _t("keras-eager", "tensorflow", "fp32", "reference", "keras_model", "artifacts", "deploy.targets:_eager"),
    _t("tf-function", "tensorflow", "fp32", "compiled", "keras_model", "artifacts", "deploy.targets:_compiled"),
    _t("tf-xla", "tensorflow", "fp32", "compiled", "keras_model", "artifacts", "deploy.targets:_compiled"),
    _t("tfserving-grpc", "tensorflow", "fp32", "server", None, "server", "deploy.targets:_served"),
    _t("tfserving-rest", "tensorflow", "fp32", "server", None, "server", "deploy.targets:_served"),
    _t("tflite-fp32", "tensorflow", "fp32", "edge", "tflite_fp32", "edge", "deploy.targets:_edge"),
    _t("tflite-int8", "tensorflow", "int8", "edge", "tflite_int8", "edge", "deploy.targets:_edge"),
    _t("tfjs-node", "tensorflow", "fp32", "browser", "tfjs_graph_model", "node", "deploy.targets:_tfjs_node"),
    _t("tfjs-chromium", "tensorflow", "fp32", "browser", "web_demo", "chromium", "deploy.targets:_tfjs_chromium"),
)}

REFERENCES = {"torch": "torch-eager", "tensorflow": "keras-eager"}  # source framework -> reference target


def load(name: str, root: Path | None = None, endpoints=None):
    """The Predictor of target `name` over the artifacts in `root` (servers: at `endpoints`)."""
    if name not in TARGETS:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    module, function = TARGETS[name].factory.split(":")
    predictor = getattr(importlib.import_module(module), function)(name, (root or paths.artifacts_dir()).resolve(),
                                                                   endpoints)
    predictor.name = name  # one name everywhere, whatever the adapter calls itself
    return predictor


def reference_for(name: str) -> str:
    """The reference target (eager source framework) that target `name` is held to."""
    return REFERENCES[TARGETS[name].framework]


def artifact_id(name: str, root: Path) -> str | None:
    """The manifest id of the file target `name` runs; TF Serving: the newest exported version."""
    target = TARGETS[name]
    if target.artifact is None and name.startswith("tfserving"):
        from serving.tfserving import configs

        found = configs.versions(configs.base_path(root))
        return configs.artifact_id(found[-1]) if found else None
    return target.artifact


def web_running(root: Path) -> bool:
    """Whether the local runner's demo server (`make serve`, `make deploy-all`) runs over `root`."""
    from deploy.local import runner

    return runner.read_pid(runner.run_dir("web", root)) is not None


def where(name: str, root: Path | None = None, endpoints=None) -> str:
    """Where target `name` answers, in words a reader can follow: a URL, a host:port, or a file."""
    from serving import endpoints as endpoints_mod

    root = (root or paths.artifacts_dir()).resolve()
    endpoints = endpoints or endpoints_mod.resolve()
    model = endpoints.model_name
    served = {
        "torchserve-rest": f"POST {endpoints.url('torchserve_inference')}/predictions/{model}",
        "torchserve-grpc": f"grpc://{endpoints.target('torchserve_grpc_inference')} (Predictions)",
        "tfserving-grpc": f"grpc://{endpoints.target('tfserving_grpc')} (Predict)",
        "tfserving-rest": f"POST {endpoints.url('tfserving_rest')}/v1/models/{model}:predict",
    }
    if name in served:
        return served[name]
    if name == "tfjs-chromium":
        page = f"{endpoints.url('web_demo')}/" if web_running(root) else "a private server on a free port"
        return f"Chromium: {page} (page/model.js)"
    entry = manifest.load(root).get(artifact_id(name, root) or "")
    path = root / entry["path"] if entry else Path("(not built)")
    return f"node: {path}" if name == "tfjs-node" else str(path)


def describe_error(name: str, error: Exception) -> str:
    """One line for a target that could not answer, with the likely fix for a server."""
    details = error.details() if callable(getattr(error, "details", None)) else str(error)  # gRPC errors
    text = f"{type(error).__name__}: {(details.strip().splitlines() or [''])[0][:200]}"
    if TARGETS[name].kind == "server":
        text += " (is it running? `make serve`)"
    return text


def _eager(name, root, endpoints):
    from edge import eager

    return eager.BASELINES[TARGETS[name].framework](root)


def _compiled(name, root, endpoints):
    from edge import compiled

    return compiled.COMPILED[name](root)


def _edge(name, root, endpoints):
    from edge import registry

    return registry.load_predictor(TARGETS[name].artifact, root)


def _served(name, root, endpoints):
    from serving import registry

    return registry.load_predictor(name, endpoints, root=root)


def _tfjs_node(name, root, endpoints):
    from web.tfjs.predictor import TfjsPredictor

    return TfjsPredictor(root)


def _tfjs_chromium(name, root, endpoints):
    from web.tfjs.chromium_predictor import ChromiumPredictor

    # The page as `make serve` serves it when that server runs over this folder, else a private one.
    url = f"{endpoints.url('web_demo')}/" if endpoints is not None and web_running(root) else None
    return ChromiumPredictor(root, url=url)
