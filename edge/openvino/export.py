"""Convert the ONNX model to OpenVINO's IR: a folder holding `model.xml` (the graph) and `model.bin` (weights).

    python -m edge.openvino.export      # into artifacts/openvino/<model>_fp32/ (manifest id `openvino_fp32`)

`openvino.convert_model` reads the ONNX file written by `make export-edge` (checked against its manifest
entry first), dynamic batch kept; `openvino.save_model` writes the weights as float32
(`compress_to_fp16=False`: its default halves them to fp16, and the answers then drift past parity's 1e-4).
The IR is two files, so the manifest records the folder (its sha256 covers both). It is written into a
staging folder and moved into place whole, so an interrupted export leaves no half an IR behind.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from core import manifest, paths
from core import spec as specs
from core.manifest import save_artifact

ARTIFACT = "openvino_fp32"
GRAPH = "model.xml"  # inside the IR folder, beside model.bin


def ir_path(root: Path | None = None, precision: str = "fp32") -> Path:
    root = root or paths.artifacts_dir()
    return root / "openvino" / f"{specs.load(root).model_name}_{precision}"


def save_ir(model, out: Path) -> None:
    """Write `model` as the IR folder `out`, whole or not at all: into a staging folder, then moved into place.
    Weights as written in the model (`compress_to_fp16=False`: no float32 constant is halved to fp16)."""
    import openvino as ov

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    ov.save_model(model, staging / GRAPH, compress_to_fp16=False)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def export(root: Path | None = None) -> dict[str, dict]:
    """Write the IR folder under `root` and record it; returns the manifest entry by id."""
    import openvino as ov

    root = (root or paths.artifacts_dir()).resolve()
    source = manifest.verify("onnx_fp32", root)
    out = ir_path(root)
    print(f"openvino: converting {source.name} (openvino {ov.__version__})")
    save_ir(ov.convert_model(source), out)
    entry = save_artifact(ARTIFACT, out, None, framework="torch", precision="fp32", root=root, source="onnx_fp32",
                          batch="dynamic", weights="float32", openvino=ov.__version__)
    return {ARTIFACT: entry}


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    export()


if __name__ == "__main__":
    main()
