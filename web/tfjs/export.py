"""Build the browser target: the TF.js graph model, the offline demo page and the JS test fixtures.

    python -m web.tfjs.export                 # into artifacts/web (or $DIGITS_ARTIFACTS/web)
    make export-web                           # the same

Writes `<artifacts>/web/`, a folder any static server can serve (`make demo` does):
  index.html style.css app.js model.js             the page (copied from web/tfjs/page/), which adapts to
  preprocess.js contract.js                        spec.json: a drawing pad for the digits, picture upload
                                                   for any task, the spec's labels
  vendor/                                          tfjs, its wasm backend and .wasm binaries; under
                                                   vendor/onnxruntime-web/ and vendor/litert/ the
                                                   other runtimes: all copied from node_modules (no CDN)
  model/model.json + weight shards                 the graph model (see convert.py), run by TF.js
  models/<model>_fp32.onnx                         the PyTorch model (manifest `onnx_fp32`), run by onnxruntime-web
  models/<model>_fp32_batch1.tflite                the Keras model as a phone runs it, with the batch fixed at
                                                   one (LiteRT.js runs static shapes only; manifest
                                                   `tflite_fp32_batch1`, written to tflite/), run by LiteRT.js
  models/<model>_torch_fp32.tflite                 the PyTorch model converted by litert-torch (batch 1,
                                                   manifest `tflite_torch_fp32`, edge/litert_torch), run by
                                                   LiteRT.js in a row of its own (`litert-torch`)
  runtimes.json                                    which runtimes the page runs: package, version, model
                                                   file and its sha256, the files each one may load
  spec.json                                        the spec, read by the page

and, beside it, `<artifacts>/web-fixtures/`: the vectors of the Node and Chromium tests. They hold the
test split (your data, if you trained on your own), so they stay out of the served folder, out of
the `web_demo` manifest entry and out of the web image (deploy/docker/web.Dockerfile copies web/ only).

Every model file is verified against its manifest entry (sha256) before it is copied, and the copy
is checked against that sha256 again. Records two manifest entries: `tfjs_graph_model` (model/) and
`web_demo` (the whole folder, verified by the server before it serves it).
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from core import manifest, paths, registry
from core import spec as specs
from training import data
from web.tfjs import convert, fixtures

TFJS_DIR = Path(__file__).resolve().parent
PAGE_DIR = TFJS_DIR / "page"
NODE_MODULES = TFJS_DIR / "node_modules"
# What the page loads from node_modules: the UMD bundles and every wasm binary the backend may pick.
VENDOR_FILES = (
    "@tensorflow/tfjs/dist/tf.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
)




@dataclass(frozen=True)
class Adapter:
    """One loader of the page (runtimes.js `ADAPTERS`): its npm package and the files it loads."""
    package: str  # the npm package whose version is recorded
    vendor: tuple  # (path under node_modules, where under vendor/) of every script and wasm it may load


# The page's loaders. onnxruntime-web: its wasm-only bundle (a classic script setting the global `ort`),
# which imports its Emscripten glue (.mjs) and one .wasm; LiteRT.js: an ES module (its one import
# rewritten to a relative path, see vendor_litert) that loads `litert_wasm_internal.js` by a script tag,
# or the `compat` build where relaxed SIMD is missing.
ADAPTERS = {
    "tfjs": Adapter("@tensorflow/tfjs", tuple((path, "") for path in VENDOR_FILES)),
    "onnxruntime-web": Adapter("onnxruntime-web", tuple(
        (f"onnxruntime-web/dist/{name}", "onnxruntime-web") for name in
        ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"))),
    "litert": Adapter("@litertjs/core", (
        ("@litertjs/core/dist/index.js", "litert"),
        ("@litertjs/wasm-utils/dist/index.js", "litert/wasm-utils"),
        *((f"@litertjs/core/wasm/litert_wasm_{build}internal.{ext}", "litert")
          for build in ("", "compat_") for ext in ("js", "wasm")))),
}
LITERT_IMPORT = 'from "@litertjs/wasm-utils"'


@dataclass(frozen=True)
class Runtime:
    """One row of the page, from a browser target's row in core/registry.py."""
    name: str  # the row's data-runtime, and `?runtime=` in the page's URL
    title: str  # what the row calls it
    adapter: str  # its loader in ADAPTERS and runtimes.js
    framework: str  # the source framework of the model it runs ("torch" or "tensorflow")
    precision: str  # "fp32" or "int8"
    model: str | None  # manifest id of the model file copied into models/ (None: tfjs's own graph model)
    unavailable: object = None  # "module:function": why its model may be missing here (the row is then left out)

    @property
    def package(self) -> str:
        return ADAPTERS[self.adapter].package

    @property
    def vendor(self) -> tuple:
        return ADAPTERS[self.adapter].vendor


def runtimes() -> tuple[Runtime, ...]:
    """The page's rows: every registry row with a `page`, in the table's order."""
    return tuple(Runtime(t.page.runtime, t.page.title, t.page.adapter, t.framework, t.precision,
                         None if t.page.adapter == "tfjs" else t.artifact,
                         t.step.unavailable if t.step is not None else None) for t in registry.pages())


def web_dir(root: Path | None = None) -> Path:
    return (root or paths.artifacts_dir()) / "web"


def fixtures_dir(root: Path | None = None) -> Path:
    """Where the JavaScript tests' vectors go: beside the served folder, never inside it."""
    return (root or paths.artifacts_dir()) / "web-fixtures"


def copy_page(out: Path) -> None:
    """The page's own files, then every runtime's scripts and wasm binaries from node_modules."""
    for source in sorted(PAGE_DIR.iterdir()):
        shutil.copy2(source, out / source.name)
    for adapter in ADAPTERS.values():
        for relative, folder in adapter.vendor:
            source = NODE_MODULES / relative
            if not source.exists():
                raise SystemExit(f"error: {source} not found: run `make setup` (npm ci in web/tfjs)")
            (out / "vendor" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / "vendor" / folder / source.name)
    vendor_litert(out / "vendor" / "litert" / "index.js")


def vendor_litert(path: Path) -> None:
    """LiteRT.js imports its helper by package name, which a browser cannot resolve without an import
    map (an inline script the page's policy forbids): point the one import at the copied file."""
    text = path.read_text()
    if text.count(LITERT_IMPORT) != 1:
        raise SystemExit(f"error: {path}: expected one `{LITERT_IMPORT}`; "
                         "the @litertjs/core version changed its imports")
    path.write_text(text.replace(LITERT_IMPORT, 'from "./wasm-utils/index.js"'))


def package_version(package: str) -> str:
    return json.loads((NODE_MODULES / package / "package.json").read_text())["version"]


def tfjs_version() -> str:
    return package_version("@tensorflow/tfjs")


def fixed_batch_tflite(keras_model, task, root: Path) -> Path:
    """The Keras model as fp32 .tflite with the input fixed at (1, *item_shape), recorded as
    `tflite_fp32_batch1`: edge/tflite/convert.py keeps the batch dynamic (-1), which LiteRT.js refuses."""
    import keras
    import tensorflow as tf

    from core.manifest import save_artifact

    # The trained model called on a batch-1 Input: the same layers and weights, a static input shape.
    image = keras.Input(batch_shape=(1, *task.item_shape), name=task.input_name)
    fixed = keras.Model(image, keras_model(image, training=False))
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    path = root / "tflite" / f"{task.model_name}_fp32_batch1.tflite"
    save_artifact("tflite_fp32_batch1", path, converter.convert(), framework="tensorflow", precision="fp32",
                  root=root, source="keras_model", batch=1)
    return path


def not_built(runtime: Runtime, root: Path) -> str | None:
    """Why a row's model file is missing when that is no fault (its tools are missing here, or its runtime
    does not run this network: the build said so); None: it should be there, and the build fails."""
    missing = registry.named(runtime.unavailable)() if runtime.unavailable else None
    if missing:
        return f"not built: {missing}"
    step = next((t.step.name for t in registry.pages() if t.page.runtime == runtime.name and t.step), None)
    refused = paths.unsupported_path(root, step) if step else None
    return f"not supported by this network: {refused.read_text()}" if refused and refused.exists() else None


def copy_models(root: Path, out: Path, left_out: list | None = None) -> list[dict]:
    """Each runtime's model file into models/ (verified against the manifest, before and after the
    copy); returns what runtimes.json lists for the page. Rows left out, with why, go to `left_out`."""
    listed, left_out = [], left_out if left_out is not None else []
    built = manifest.load(root)
    for runtime in runtimes():
        why = not_built(runtime, root) if runtime.model and runtime.model not in built else None
        if why:
            print(f"  {runtime.name}: left out of the page ({runtime.model} {why})", flush=True)
            left_out.append({"name": runtime.name, "title": runtime.title, "reason": f"{runtime.model} {why}"})
            continue
        entry = {"name": runtime.name, "title": runtime.title, "adapter": runtime.adapter, "package": runtime.package,
                 "precision": runtime.precision,
                 "version": package_version(runtime.package), "framework": runtime.framework,
                 "files": sorted(f"vendor/{folder}/{Path(relative).name}".replace("//", "/")
                                 for relative, folder in runtime.vendor)}
        if runtime.model is None:
            entry |= {"model": "model/model.json", "source": "tfjs_graph_model"}
        else:
            source = manifest.verify(runtime.model, root)  # ManifestError: missing, or not what was recorded
            target = out / "models" / source.name
            target.parent.mkdir(exist_ok=True)
            shutil.copy2(source, target)
            sha256 = manifest.load(root)[runtime.model]["sha256"]
            if manifest.sha256_of(target) != sha256:
                raise manifest.ManifestError(f"{target}: the copy of {runtime.model} does not match its sha256")
            entry |= {"model": f"models/{source.name}", "model_sha256": sha256, "source": runtime.model}
        entry["files"].append(entry["model"])
        listed.append(entry)
    return listed


def is_built(root: Path) -> bool:
    """Whether the page was built, whole, into `root`: a build that stopped midway leaves files but
    no matching manifest entry (recorded last), and does not count."""
    try:
        manifest.verify("web_demo", root)
        return True
    except manifest.ManifestError:
        return False


def build(root: Path, converter: Path = convert.DEFAULT_CONVERTER) -> Path:
    """Build `<root>/web` from the trained Keras model in `root`; returns the folder."""
    import keras  # imported here: `--help` answers without loading TensorFlow

    spec_file = paths.spec_path(root)
    task = specs.from_file(spec_file)  # refuses a missing or foreign spec
    keras_path = manifest.verify("keras_model", root)
    out = web_dir(root)
    if out.exists():
        shutil.rmtree(out)  # rebuilt whole, so no stale file is served
    out.mkdir(parents=True)

    print(f"[1/5] converting {keras_path} to a TF.js graph model", flush=True)
    model = keras.models.load_model(keras_path)
    model_json = convert.convert(model, out / "model", task, converter)
    print(f"[2/5] copying the page, spec.json and the runtimes from node_modules: "
          f"{', '.join(f'{a.package} {package_version(a.package)}' for a in ADAPTERS.values())}", flush=True)
    shutil.copy2(spec_file, out / "spec.json")
    copy_page(out)
    print("[3/5] the model files of onnxruntime-web and LiteRT.js: a batch-1 .tflite, copies (sha256 checked)",
          flush=True)
    fixed_batch_tflite(model, task, root)
    left_out = []
    runtimes = copy_models(root, out, left_out)
    (out / "runtimes.json").write_text(json.dumps({"runtimes": runtimes, "left_out": left_out}, indent=2) + "\n")
    print("[4/5] writing the JavaScript test fixtures", flush=True)
    test = data.load_split(paths.split_path(root))["test"]
    fixtures.write_all(fixtures_dir(root), model, test.x, test.y, task)
    print("[5/5] recording the manifest", flush=True)
    manifest.record("tfjs_graph_model", model_json.parent, framework="tensorflow", precision="fp32", root=root,
                    format="tfjs_graph_model", tfjs_version=tfjs_version(), source="keras_model")
    manifest.record("web_demo", out, framework="tensorflow", precision="fp32", root=root,
                    entry="index.html", tfjs_version=tfjs_version(),
                    runtimes={entry["name"]: entry["version"] for entry in runtimes})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--converter", type=Path, default=convert.DEFAULT_CONVERTER,
                        help="tensorflowjs_converter executable (default: .venv-tfjs/bin/tensorflowjs_converter)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        out = build(root, args.converter)
    except (FileNotFoundError, ValueError, specs.SpecError, manifest.ManifestError, convert.ConversionError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {out} (serve it with `make demo`)")


if __name__ == "__main__":
    main()
