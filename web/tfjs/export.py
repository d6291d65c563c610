"""Build the browser target: the TF.js graph model, the offline demo page and the JS test fixtures.

    python -m web.tfjs.export                 # into artifacts/web (or $DIGITS_ARTIFACTS/web)
    make export-web                           # the same

Writes `<artifacts>/web/`, a folder any static server can serve (`make demo` does):
  index.html style.css app.js model.js             the page (copied from web/tfjs/page/), which adapts to
  preprocess.js contract.js                        spec.json: a drawing pad for the digits, picture upload
                                                   for any task, the spec's labels
  vendor/                                          tfjs, its wasm backend and .wasm binaries,
                                                   copied from web/tfjs/node_modules (no CDN)
  model/model.json + weight shards                 the graph model (see convert.py)
  spec.json                                        the spec, read by the page
  fixtures/                                        vectors for the Node and Chromium tests

and records two manifest entries: `tfjs_graph_model` (model/) and `web_demo` (the whole folder,
verified by the server before it serves it).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from training import data, manifest, paths
from core import spec as specs
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


def web_dir(root: Path | None = None) -> Path:
    return (root or paths.artifacts_dir()) / "web"


def copy_page(out: Path) -> None:
    """The page's own files, then the vendored tfjs files from node_modules."""
    for source in sorted(PAGE_DIR.iterdir()):
        shutil.copy2(source, out / source.name)
    vendor = out / "vendor"
    vendor.mkdir()
    for relative in VENDOR_FILES:
        source = NODE_MODULES / relative
        if not source.exists():
            raise SystemExit(f"error: {source} not found: run `make setup-web` (npm ci in web/tfjs)")
        shutil.copy2(source, vendor / source.name)


def tfjs_version() -> str:
    return json.loads((NODE_MODULES / "@tensorflow/tfjs/package.json").read_text())["version"]


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

    print(f"[1/4] converting {keras_path} to a TF.js graph model", flush=True)
    model = keras.models.load_model(keras_path)
    model_json = convert.convert(model, out / "model", task, converter)
    print(f"[2/4] copying the page, spec.json and tfjs {tfjs_version()} from node_modules", flush=True)
    shutil.copy2(spec_file, out / "spec.json")
    copy_page(out)
    print("[3/4] writing the JavaScript test fixtures", flush=True)
    test = data.load_split(paths.split_path(root))["test"]
    fixtures.write_all(out, model, test.x, test.y, task)
    print("[4/4] recording the manifest", flush=True)
    manifest.record("tfjs_graph_model", model_json.parent, framework="tensorflow", precision="fp32", root=root,
                    format="tfjs_graph_model", tfjs_version=tfjs_version(), source="keras_model")
    manifest.record("web_demo", out, framework="tensorflow", precision="fp32", root=root,
                    entry="index.html", tfjs_version=tfjs_version())
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
        raise SystemExit(f"error: {error}")
    print(f"wrote {out} (serve it with `make demo`)")


if __name__ == "__main__":
    main()
