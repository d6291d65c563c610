"""Every deployment target, one row each, in ONE table: what parity, deploy-all, the build graph, the
demo page, load tests, benchmarks and the tests derive from.

    from core import registry
    for name in registry.TARGETS:                        # or registry.names(kind="server")
        predictor = registry.load(name, root=root, endpoints=endpoints)
        probabilities = predictor.predict(batch)          # (N, *item_shape) -> (N, K)

A row (`Target`) names everything about one target: its source framework (whose training produced
its weights, the reference its answers are held to), precision, kind, folder, the manifest id of
the file (or folder) it runs, the build step that writes it (`Step`: the function, what it reads, what
it writes), its Predictor (`module:Class`), its command line, its row on the demo page (`Page`),
the local server that runs it (a row of core/servers.py) and its Locust user, the environment its code
runs in and what else it needs installed (core/environments.py), and the commands `make setup` runs for
it. Modules are named as strings and imported only when used, so this file imports nothing above
`core/` (the layering test holds it to that). Rows may come in any order: `steps()` orders the build.

Adding a target: its folder (exporter, Predictor, requirements.in, README) and one row below, then
`make lock`; see the README's "Add a target". Everything else finds it here (`TARGETS=` picks it by
name and group: core/selection.py).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.support import NotSupported  # noqa: F401 (raised by exporters, caught by the build: registry.NotSupported)

KINDS = ("reference", "compiled", "in-process", "edge", "server", "browser")
# How a row's Predictor class is constructed (see `load`):
#   class:    Class(root)                                  an in-process model
#   runner:   Class(<path of the artifact>, root=root)     an edge runner over its verified file
#   client:   Class(endpoints, root=root)                  a client of a running server
#   chromium: ChromiumPredictor(root, url=..., runtime=page.runtime), the page in headless Chromium
MAKERS = ("class", "runner", "client", "chromium")


@dataclass(frozen=True)
class Step:
    """One step of the build graph (deploy/local/build.py): writes `outputs` from what `after` wrote.

    The build runs `run` ("module:function", called as function(root), or function(root, args) when
    `takes_args`) and rebuilds it when its inputs change: the records of the steps it reads, its
    arguments, and its code: the module of `run`, the modules in `code`, everything of this project
    they import, and the files matching `files` (globs under the repository root).
    """
    name: str
    run: str | Callable  # "module:function" (a callable in the build graph's own tests)
    after: tuple = ("train",)
    outputs: tuple = ()  # manifest ids it writes ("tfserving": the SavedModel version it exported)
    takes_args: bool = False  # whether the caller's arguments (training flags) are among its inputs
    # How the step builds, in words, for a change its code does not show (none so far: the code is an input).
    recipe: str = ""
    # "module:function" -> why the step cannot run on this machine (None: it can). Such a step is reported
    # "not built: <why>" instead of failing, and the steps after it go on without its outputs.
    unavailable: str | Callable | None = None
    code: tuple = ()  # more modules it runs that its own module does not import (a server's handler)
    files: tuple = ()  # more files it reads: globs under the repository root (the page, npm's lock)
    # Files of the artifacts folder it reads besides the manifest outputs of `after`: their sha256 are among its
    # inputs, so an export is never up to date beside a spec or a split it was not made from.
    reads: tuple = ("spec.json", "data/split.npz")
    # Files it writes besides its manifest `outputs`: their sha256 are kept in its record and checked, so a
    # spec or split rewritten behind its back (an interrupted `python -m training.train`) makes it stale.
    writes: tuple = ()
    # Whether it runs in a staging folder of its own and swaps what it wrote in at the end (it reads nothing of
    # the artifacts folder): interrupted, it leaves the folder as it was.
    staged: bool = False
    # What it needs besides the main environment: environments and system programs (core/environments.py).
    needs: tuple = ()


@dataclass(frozen=True)
class Page:
    """A browser target's row on the demo page (written into runtimes.json by web/tfjs/export.py)."""
    runtime: str  # the row's data-runtime and `?runtime=` in the page's URL
    title: str  # what the row calls it
    adapter: str  # the page's loader in runtimes.js and the npm files it needs: tfjs, onnxruntime-web, litert


@dataclass(frozen=True)
class Target:
    name: str
    framework: str  # "torch" or "tensorflow": the source framework, whose eager model is the reference
    precision: str  # "fp32" or "int8"
    kind: str  # one of KINDS
    folder: str  # where its code lives (exporter, Predictor, README)
    artifact: str | None  # manifest id of the file it runs (None: TF Serving's newest version, found on disk)
    step: Step | None  # the build step that writes that file (None: the page's, see `requires` and `page`)
    predictor: str  # "module:Class" of its Predictor
    make: str = "class"  # one of MAKERS: how the Predictor is constructed
    command: str | None = None  # the module whose main() is its command line (`python -m <command> --model F x.png`)
    page: Page | None = None  # its row on the demo page (browser targets)
    # The local server that runs it (deploy/local/servers.py): torchserve, tfserving, kserve-*.
    server: str | None = None
    address: str | None = None  # where it answers: a template over the endpoints' names and {model}
    load_user: str | None = None  # its Locust user class in benchmarks/locust/locustfile.py
    # A server row: "module:Class" of what it would serve, loaded in-process (make check-network judges it
    # without starting the server).
    offline: str | None = None
    requires: tuple = field(default=())  # more steps it needs built (the page for the browser rows)
    # The environment its code runs in (core/environments.py): its folder's requirements.in is locked there.
    env: str = "main"
    # More environments and system programs it needs (core/environments.py), beyond those of its build steps,
    # its server and its page (a page row needs Node and Chromium).
    needs: tuple = ()
    # Command lines `make setup` runs once its environments are filled, the main environment's programs first on
    # PATH (e.g. "opt_in_out --opt_out": a runtime's usage statistics turned off).
    setup: tuple = ()

    @property
    def factory(self) -> Callable:
        """(root, endpoints) -> its Predictor, importing its runtime only when called."""
        return lambda root, endpoints: _make(self, root, endpoints)


def named(name: str | Callable) -> Callable:
    """The function a "module:function" string names (a callable is itself)."""
    if callable(name):
        return name
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


# ---- the build steps: training, then one export per runtime, then the page ----
TRAIN = Step("train", "training.train:build", after=(), outputs=("torch_checkpoint", "keras_model"), takes_args=True,
             reads=(), writes=("spec.json", "data/split.npz", "metrics.json"), staged=True)
TFLITE = Step("export-tflite", "edge.tflite.convert:convert", outputs=("tflite_fp32", "tflite_int8"))
EXECUTORCH_XNNPACK = Step("export-executorch-xnnpack", "edge.executorch.export:export_xnnpack",
                          outputs=("executorch_xnnpack_fp32",))
EXECUTORCH_PORTABLE = Step("export-executorch-portable", "edge.executorch.export:export_portable",
                           outputs=("executorch_portable_fp32",))
ONNX = Step("export-onnx", "edge.onnx.export:export", outputs=("onnx_fp32",))
# int8 on the PyTorch side: PT2E with XNNPACK's quantizer; ONNX Runtime's static QDQ from the fp32 file.
EXECUTORCH_INT8 = Step("export-executorch-int8", "edge.executorch.quantize:export",
                       outputs=("executorch_xnnpack_int8",))
ONNX_INT8 = Step("export-onnx-int8", "edge.onnx.quantize:export", after=("train", "export-onnx"),
                 outputs=("onnx_int8",))
# OpenVINO's IR from the ONNX file, run on its CPU plugin in float32; NNCF's int8 IR from that IR.
OPENVINO = Step("export-openvino", "edge.openvino.export:export", after=("train", "export-onnx"),
                outputs=("openvino_fp32",))
OPENVINO_INT8 = Step("export-openvino-int8", "edge.openvino.quantize:export", after=("train", "export-openvino"),
                     outputs=("openvino_int8",))
# OpenVINO's and NNCF's usage statistics off (one consent file for both): nothing leaves the machine.
OPENVINO_TELEMETRY_OFF = "opt_in_out --opt_out"
# Google's PyTorch -> .tflite converter, run in its own environment (.venv-litert-torch).
LITERT_TORCH = Step("export-litert-torch", "edge.litert_torch.convert:convert", outputs=("tflite_torch_fp32",),
                    unavailable="edge.litert_torch.convert:unavailable", needs=("litert-torch",))
TORCHSERVE = Step("export-torchserve", "serving.torchserve.archive:build", outputs=("torchserve_mar",),
                  code=("serving.torchserve.handler",), files=("serving/torchserve/config.properties",))
TFSERVING = Step("export-tfserving", "serving.tfserving.export:export", outputs=("tfserving",))
# The page copies the model file of every row with a `page` (after their steps, see `steps()`); it also
# writes the TF.js graph model and the batch-1 .tflite LiteRT.js runs (static shapes only).
WEB_OUTPUTS = ("tfjs_graph_model", "tflite_fp32_batch1", "web_demo")
WEB_FILES = ("web/tfjs/page/*", "web/tfjs/package-lock.json")
WEB_NEEDS = ("tfjs", "node")  # the TF.js converter's environment; the page's npm packages
PAGE_NEEDS = ("node", "chromium")  # what a page row runs in

# The .tflite runner as on a device (ai-edge-litert alone), and the legacy tflite-runtime beside it.
TFLITE_DEVICE = ("edge", "tflite-runtime")

_SERVED = "{model}"  # the model name in an address template
ARCHIVE, SAVEDMODEL = "serving.inprocess:ArchiveInProcess", "serving.inprocess:SavedModelInProcess"
# KServe serves the framework's own model, as the reference runs it.
TORCH_EAGER, KERAS_EAGER = "edge.eager:TorchEagerPredictor", "edge.eager:KerasEagerPredictor"
# A row with no fixed artifact (TF Serving) runs the newest SavedModel version exported: its manifest id.
NEWEST_SAVEDMODEL = "serving.tfserving.configs:newest_artifact_id"

TARGETS = {target.name: target for target in (
    # PyTorch-trained weights
    Target("torch-eager", "torch", "fp32", "reference", "training", "torch_checkpoint", TRAIN,
           "edge.eager:TorchEagerPredictor"),
    Target("torch-compile", "torch", "fp32", "compiled", "edge", "torch_checkpoint", TRAIN,
           "edge.compiled:TorchCompilePredictor", needs=("g++",)),
    Target("executorch-xnnpack-fp32", "torch", "fp32", "edge", "edge/executorch", "executorch_xnnpack_fp32",
           EXECUTORCH_XNNPACK, "edge.executorch.run:ExecuTorchPredictor", "runner", "edge.executorch.run"),
    Target("executorch-portable-fp32", "torch", "fp32", "edge", "edge/executorch", "executorch_portable_fp32",
           EXECUTORCH_PORTABLE, "edge.executorch.run:ExecuTorchPredictor", "runner", "edge.executorch.run"),
    Target("onnx-fp32", "torch", "fp32", "edge", "edge/onnx", "onnx_fp32", ONNX,
           "edge.onnx.run:OnnxPredictor", "runner", "edge.onnx.run"),
    Target("openvino-fp32", "torch", "fp32", "edge", "edge/openvino", "openvino_fp32", OPENVINO,
           "edge.openvino.run:OpenVinoPredictor", "runner", "edge.openvino.run", setup=(OPENVINO_TELEMETRY_OFF,)),
    Target("executorch-xnnpack-int8", "torch", "int8", "edge", "edge/executorch", "executorch_xnnpack_int8",
           EXECUTORCH_INT8, "edge.executorch.run:ExecuTorchPredictor", "runner", "edge.executorch.run"),
    Target("onnx-int8", "torch", "int8", "edge", "edge/onnx", "onnx_int8", ONNX_INT8,
           "edge.onnx.run:OnnxPredictor", "runner", "edge.onnx.run"),
    Target("openvino-int8", "torch", "int8", "edge", "edge/openvino", "openvino_int8", OPENVINO_INT8,
           "edge.openvino.run:OpenVinoPredictor", "runner", "edge.openvino.run", setup=(OPENVINO_TELEMETRY_OFF,)),
    Target("onnxruntime-web-chromium", "torch", "fp32", "browser", "web/tfjs", "onnx_fp32", ONNX,
           "web.tfjs.chromium_predictor:ChromiumPredictor", "chromium",
           page=Page("onnxruntime-web", "ONNX Runtime Web", "onnxruntime-web")),
    Target("onnxruntime-web-int8-chromium", "torch", "int8", "browser", "web/tfjs", "onnx_int8", ONNX_INT8,
           "web.tfjs.chromium_predictor:ChromiumPredictor", "chromium",
           page=Page("onnxruntime-web-int8", "ONNX Runtime Web (int8)", "onnxruntime-web")),
    # A batch-1 .tflite, run one image per invoke.
    Target("litert-torch-fp32", "torch", "fp32", "edge", "edge/litert_torch", "tflite_torch_fp32", LITERT_TORCH,
           "edge.tflite.run:TFLitePredictor", "runner", "edge.tflite.run", needs=("edge",)),
    Target("litert-torch-chromium", "torch", "fp32", "browser", "web/tfjs", "tflite_torch_fp32", LITERT_TORCH,
           "web.tfjs.chromium_predictor:ChromiumPredictor", "chromium",
           page=Page("litert-torch", "LiteRT.js (litert-torch)", "litert")),
    Target("torchserve-rest", "torch", "fp32", "server", "serving/torchserve", "torchserve_mar", TORCHSERVE,
           "serving.torchserve.client:TorchServeRest", "client", server="torchserve",
           address="POST {torchserve_inference}/predictions/" + _SERVED, load_user="TorchServeRestUser",
           offline=ARCHIVE),
    Target("torchserve-grpc", "torch", "fp32", "server", "serving/torchserve", "torchserve_mar", TORCHSERVE,
           "serving.torchserve.client:TorchServeGrpc", "client", server="torchserve",
           address="grpc://{torchserve_grpc_inference} (Predictions)", load_user="TorchServeGrpcUser",
           offline=ARCHIVE),
    # KServe's ModelServer over the checkpoint, in PyTorch: the Open Inference Protocol (V2).
    Target("kserve-torch-v2-rest", "torch", "fp32", "server", "serving/kserve", "torch_checkpoint", TRAIN,
           "serving.kserve.client:KServeTorchRest", "client", server="kserve-torch",
           address="POST {kserve_torch_rest}/v2/models/" + _SERVED + "/infer", load_user="KServeTorchRestUser",
           offline=TORCH_EAGER),
    Target("kserve-torch-v2-grpc", "torch", "fp32", "server", "serving/kserve", "torch_checkpoint", TRAIN,
           "serving.kserve.client:KServeTorchGrpc", "client", server="kserve-torch",
           address="grpc://{kserve_torch_grpc} (ModelInfer)", load_user="KServeTorchGrpcUser", offline=TORCH_EAGER),
    # The same model on Ray Serve: replicas behind Serve's proxy, V2 REST as KServe answers it.
    Target("rayserve-v2-rest", "torch", "fp32", "server", "serving/rayserve", "torch_checkpoint", TRAIN,
           "serving.rayserve.client:RayServeRest", "client", server="rayserve",
           address="POST {rayserve_rest}/v2/models/" + _SERVED + "/infer", load_user="RayServeRestUser",
           offline=TORCH_EAGER),
    # TensorFlow-trained weights
    Target("keras-eager", "tensorflow", "fp32", "reference", "training", "keras_model", TRAIN,
           "edge.eager:KerasEagerPredictor"),
    Target("tf-function", "tensorflow", "fp32", "compiled", "edge", "keras_model", TRAIN,
           "edge.compiled:TfFunctionPredictor"),
    Target("tf-xla", "tensorflow", "fp32", "compiled", "edge", "keras_model", TRAIN, "edge.compiled:TfXlaPredictor"),
    Target("savedmodel", "tensorflow", "fp32", "in-process", "serving/tfserving", None, TFSERVING, SAVEDMODEL),
    Target("tfserving-grpc", "tensorflow", "fp32", "server", "serving/tfserving", None, TFSERVING,
           "serving.tfserving.client:TFServingGrpc", "client", server="tfserving",
           address="grpc://{tfserving_grpc} (Predict)", load_user="TFServingGrpcUser", offline=SAVEDMODEL),
    Target("tfserving-rest", "tensorflow", "fp32", "server", "serving/tfserving", None, TFSERVING,
           "serving.tfserving.client:TFServingRest", "client", server="tfserving",
           address="POST {tfserving_rest}/v1/models/" + _SERVED + ":predict", load_user="TFServingRestUser",
           offline=SAVEDMODEL),
    Target("kserve-tf-v2-rest", "tensorflow", "fp32", "server", "serving/kserve", "keras_model", TRAIN,
           "serving.kserve.client:KServeTfRest", "client", server="kserve-tf",
           address="POST {kserve_tf_rest}/v2/models/" + _SERVED + "/infer", load_user="KServeTfRestUser",
           offline=KERAS_EAGER),
    Target("kserve-tf-v2-grpc", "tensorflow", "fp32", "server", "serving/kserve", "keras_model", TRAIN,
           "serving.kserve.client:KServeTfGrpc", "client", server="kserve-tf",
           address="grpc://{kserve_tf_grpc} (ModelInfer)", load_user="KServeTfGrpcUser", offline=KERAS_EAGER),
    Target("tflite-fp32", "tensorflow", "fp32", "edge", "edge/tflite", "tflite_fp32", TFLITE,
           "edge.tflite.run:TFLitePredictor", "runner", "edge.tflite.run", needs=TFLITE_DEVICE),
    Target("tflite-int8", "tensorflow", "int8", "edge", "edge/tflite", "tflite_int8", TFLITE,
           "edge.tflite.run:TFLitePredictor", "runner", "edge.tflite.run", needs=TFLITE_DEVICE),
    Target("tfjs-node", "tensorflow", "fp32", "browser", "web/tfjs", "tfjs_graph_model", None,
           "web.tfjs.predictor:TfjsPredictor", requires=("export-web",), needs=("node",)),
    Target("tfjs-chromium", "tensorflow", "fp32", "browser", "web/tfjs", "web_demo", None,
           "web.tfjs.chromium_predictor:ChromiumPredictor", "chromium", page=Page("tfjs", "TF.js", "tfjs")),
    Target("litert-chromium", "tensorflow", "fp32", "browser", "web/tfjs", "tflite_fp32_batch1", None,
           "web.tfjs.chromium_predictor:ChromiumPredictor", "chromium", page=Page("litert", "LiteRT.js", "litert")),
)}

REFERENCES = {"torch": "torch-eager", "tensorflow": "keras-eager"}  # source framework -> reference target
# What each server runs, called in-process (no server): the serving benchmarks' baseline.
IN_PROCESS = {"torch": "torch-eager", "tensorflow": "savedmodel"}


def pages() -> list[Target]:
    """The rows with a page runtime: what the demo page shows, TF.js first (the page's headline answer),
    then the others in table order."""
    rows = [target for target in TARGETS.values() if target.page is not None]
    return sorted(rows, key=lambda target: target.page.adapter != "tfjs")


def steps() -> tuple[Step, ...]:
    """Every build step, derived from the rows: training, each export, the page; ordered so that each step
    comes after the steps it reads, whatever the order of the rows."""
    found = {TRAIN.name: TRAIN}
    for target in TARGETS.values():
        if target.step is not None:
            found.setdefault(target.step.name, target.step)
    page_steps = tuple(dict.fromkeys(t.step.name for t in pages() if t.step is not None and t.step is not TRAIN))
    web = Step("export-web", "web.tfjs.export:build", after=(TRAIN.name, *page_steps), outputs=WEB_OUTPUTS,
               files=WEB_FILES, needs=WEB_NEEDS)
    found[web.name] = web
    return ordered(tuple(found.values()))


class StepOrderError(ValueError):
    """A step reads a step no row builds, or steps read each other in a circle; the message names them."""


def ordered(steps: tuple) -> tuple:
    """`steps` with each after every step it reads (`Step.after`), otherwise in the order given.

    StepOrderError when a step reads one that is not among them, or when steps read each other in a circle,
    naming the rows' steps involved."""
    by_name = {step.name: step for step in steps}
    for step in steps:
        missing = [name for name in step.after if name not in by_name]
        if missing:
            raise StepOrderError(f"step {step.name!r} reads {', '.join(map(repr, missing))}, which no row builds: "
                                 f"add the row that builds it, or correct {step.name!r}'s `after`")
    done, result = set(), []

    def visit(step: Step, path: tuple) -> None:
        if step.name in done:
            return
        if step.name in path:
            circle = [*path[path.index(step.name):], step.name]
            raise StepOrderError(f"steps read each other in a circle: {' -> '.join(circle)}")
        for name in step.after:
            visit(by_name[name], (*path, step.name))
        done.add(step.name)
        result.append(step)

    for step in steps:
        visit(step, ())
    return tuple(result)


def step_of(name: str) -> str | None:
    """The build step target `name` needs (its own, or the page's for a browser row)."""
    target = TARGETS[name]
    if target.requires:
        return target.requires[0]
    if target.page is not None:
        return "export-web"
    return target.step.name if target.step is not None else None


def names(kind: str | None = None) -> list[str]:
    """Target names in registry order, all or of one kind."""
    if kind is not None and kind not in KINDS:
        raise KeyError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return [name for name, target in TARGETS.items() if kind is None or target.kind == kind]


def served() -> list[str]:
    """The served endpoints: every row of kind "server"."""
    return names("server")


def _endpoints(endpoints, root: Path):
    """`endpoints` (default: the addresses in force, serving/endpoints.py) for the model trained in `root`."""
    return (endpoints or named("serving.endpoints:resolve")(root=root)).for_root(root)


def _make(target: Target, root: Path, endpoints):
    cls = named(target.predictor)
    if target.make == "class":
        return cls(root)
    if target.make == "runner":
        return cls(artifact_path(target.artifact, root), root=root)
    if target.make == "client":
        return cls(_endpoints(endpoints, root), root=root)
    if target.make == "chromium":
        # The page as `make serve` serves it when that server runs over this folder, else a private one.
        url = f"{endpoints.url('web_demo')}/" if endpoints is not None and web_running(root) else None
        return cls(root, url=url, runtime=target.page.runtime)
    raise ValueError(f"{target.name}: unknown make {target.make!r}; known: {', '.join(MAKERS)}")


def load(name: str, root: Path | None = None, endpoints=None, offline: bool = False):
    """The Predictor of target `name` over the artifacts in `root` (servers: at `endpoints`; with
    `offline`, what the server would serve, loaded here without it)."""
    from core import paths

    if name not in TARGETS:
        raise KeyError(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    root = (root or paths.artifacts_dir()).resolve()
    target = TARGETS[name]
    if offline and target.offline:
        predictor = named(target.offline)(root)
    else:
        predictor = target.factory(root, endpoints)
    predictor.name = name  # one name everywhere, whatever the adapter calls itself
    return predictor


def reference_for(name: str) -> str:
    """The reference target (eager source framework) that target `name` is held to."""
    return REFERENCES[TARGETS[name].framework]


def artifact_id(name: str, root: Path) -> str | None:
    """The manifest id of the file target `name` runs; TF Serving: the newest exported version."""
    target = TARGETS[name]
    return named(NEWEST_SAVEDMODEL)(root) if target.artifact is None else target.artifact


def artifact_path(artifact: str, root: Path | None = None) -> Path:
    """Where manifest entry `artifact` lies (ManifestError naming the fix when it is not built)."""
    from core import manifest, paths

    root = (root or paths.artifacts_dir()).resolve()
    entry = manifest.load(root).get(artifact)
    if entry is None:
        raise manifest.ManifestError(f"{artifact!r} is not in {manifest.manifest_path(root)}: run `make export`")
    return root / entry["path"]


def web_running(root: Path) -> bool:
    """Whether the local runner's demo server (`make serve`, `make deploy-all`) runs over `root`."""
    return named("deploy.local.runner:web_running")(root)


def where(name: str, root: Path | None = None, endpoints=None) -> str:
    """Where target `name` answers, in words a reader can follow: a URL, a host:port, or a file."""
    from core import manifest, paths

    root = (root or paths.artifacts_dir()).resolve()
    target = TARGETS[name]
    if target.address is not None:
        return target.address.format_map(_Addresses(_endpoints(endpoints, root)))
    if target.page is not None:
        page = f"{endpoints.url('web_demo')}/" if endpoints is not None and web_running(root) else \
            "a private server on a free port"
        return f"Chromium: {page} (page/runtimes.js, {target.page.runtime})"
    entry = manifest.load(root).get(artifact_id(name, root) or "")
    path = root / entry["path"] if entry else Path("(not built)")
    return f"node: {path}" if name == "tfjs-node" else str(path)


def base_address(name: str, root: Path | None = None, endpoints=None) -> str | None:
    """A served target's base address, what a client is pointed at: `http://127.0.0.1:8090`,
    `grpc://127.0.0.1:8091`; None for a target that is not a server."""
    import re

    if TARGETS[name].address is None:
        return None
    found = re.search(r"(https?|grpc)://[^/\s]+", where(name, root, endpoints))
    return found.group(0) if found else None


class _Addresses(dict):
    """An address template's names: {model}, an endpoint's URL ({torchserve_inference}) or, for
    gRPC names, its host:port."""
    def __init__(self, endpoints):
        super().__init__()
        self.endpoints = endpoints

    def __missing__(self, key):
        if key == "model":
            return self.endpoints.model_name
        return self.endpoints.target(key) if "grpc" in key else self.endpoints.url(key)


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
