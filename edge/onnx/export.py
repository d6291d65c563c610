"""Export the trained PyTorch model to one self-contained ONNX file with a dynamic batch.

    python -m edge.onnx.export          # into artifacts/onnx/<model>_fp32.onnx (manifest id `onnx_fp32`)

`torch.onnx.export` (the dynamo exporter, which needs onnxscript), weights inside the file
(`external_data=False`), input and output named by the spec.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core import manifest, paths
from core import spec as specs
from core.manifest import save_artifact
from training import data


def onnx_path(root: Path | None = None) -> Path:
    root = root or paths.artifacts_dir()
    return root / "onnx" / f"{specs.load(root).model_name}_fp32.onnx"


def export(root: Path | None = None) -> dict[str, dict]:
    """Write the .onnx file under `root` and record it; returns the manifest entry by id."""
    import torch

    from training.model_torch import load_checkpoint

    root = (root or paths.artifacts_dir()).resolve()
    model, task = load_checkpoint(manifest.verify("torch_checkpoint", root))
    example = torch.tensor(data.load_split(paths.split_path(root))["train"].x[:2])
    out = onnx_path(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    print("onnx: exporting (dynamo)")
    torch.onnx.export(model, (example,), str(out), input_names=[task.input_name], output_names=[task.output_name],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False, dynamo=True,
                      verbose=False)
    entry = save_artifact("onnx_fp32", out, None, framework="torch", precision="fp32", root=root,
                          source="torch_checkpoint", batch="dynamic")
    return {"onnx_fp32": entry}


def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    export()


if __name__ == "__main__":
    main()
