"""Convert the trained PyTorch model to .tflite with Google's converter, litert-torch.

    python -m edge.litert_torch.convert                  # into artifacts/tflite/<model>_torch_fp32.tflite
    make export-edge                                     # the build graph's `export-litert-torch` step

litert-torch 0.10.0 pulls jax, transformers and litert-converter, and only installs beside
torch==2.13.0 in an environment of its own, `.venv-litert-torch` (`make setup`,
requirements/litert-torch.txt). So this module runs twice: here (the main environment) it
verifies the checkpoint against the manifest, runs itself in `.venv-litert-torch` with
`--in-converter`, which loads the checkpoint, converts it and compares the file with eager PyTorch,
and then records the file as `tflite_torch_fp32` (framework torch, sha256) in the manifest.

The file has a static batch of one: litert-torch 0.10.0 cannot lower a dynamic batch dimension
(`dynamic_shapes` fails in its jax lowering of the first op), and XNNPACK refuses to resize the
batch-1 graph. The TFLite runner (edge/tflite/run.py) therefore runs such a file one image per
`invoke()`, as LiteRT.js does in the page. Its tensors are named by the converter
(`serving_default_args_0`), not by the spec: every runner addresses them by position.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ARTIFACT = "tflite_torch_fp32"
PACKAGE_VERSION = "0.10.0"  # requirements/litert-torch.in
CHECK_ROWS = 16  # random inputs compared with eager PyTorch right after the conversion


def venv_python() -> Path:
    from core import paths

    return paths.REPO_ROOT / ".venv-litert-torch" / "bin" / "python"


def unavailable() -> str | None:
    """Why the converter cannot run on this machine (None when it can)."""
    if not venv_python().exists():
        return (f"{venv_python().parent.parent.name} is missing: run `make setup` "
                f"(it installs litert-torch {PACKAGE_VERSION})")
    return None


def tflite_path(root: Path) -> Path:
    from core import spec as specs

    return root / "tflite" / f"{specs.load(root).model_name}_torch_fp32.tflite"


def convert(root: Path) -> dict:
    """Convert `root`'s torch checkpoint in .venv-litert-torch and record the file; its manifest entry."""
    from core import manifest, paths
    from core.manifest import save_artifact

    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    checkpoint = manifest.verify("torch_checkpoint", root)
    out = tflite_path(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(venv_python()), "-m", "edge.litert_torch.convert", "--in-converter", str(checkpoint), str(out)]
    # The converter's own chatter (TensorFlow, jax, torchao) goes to stderr; its one JSON line to stdout.
    done = subprocess.run(command, cwd=paths.REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise RuntimeError(f"litert-torch conversion failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    return save_artifact(ARTIFACT, out, None, framework="torch", precision="fp32", root=root, source="torch_checkpoint",
                         converter=f"litert-torch {facts['litert_torch']}", batch=1, **{
                             "max_abs_diff_to_eager": facts["max_abs_diff"], "input_tensor": facts["input"],
                             "output_tensor": facts["output"]})


def _in_converter(checkpoint: Path, out: Path) -> None:
    """Runs in .venv-litert-torch: checkpoint -> batch-1 .tflite; prints one JSON line of facts."""
    import importlib.metadata

    import litert_torch
    import numpy as np
    import torch

    from training.model_torch import load_checkpoint

    model, spec = load_checkpoint(checkpoint)
    generator = torch.Generator().manual_seed(0)
    low, high = spec.value_min, spec.value_max
    sample = torch.rand(1, *spec.item_shape, generator=generator) * (high - low) + low
    edge = litert_torch.convert(model, (sample,))
    edge.export(str(out))
    rows = torch.rand(CHECK_ROWS, 1, *spec.item_shape, generator=generator) * (high - low) + low
    with torch.no_grad():
        diff = max(float(np.abs(edge(row) - model(row).numpy()).max()) for row in rows)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    print(json.dumps({"litert_torch": importlib.metadata.version("litert-torch"), "max_abs_diff": diff,
                      "input": interpreter.get_input_details()[0]["name"],
                      "output": interpreter.get_output_details()[0]["name"]}))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--in-converter", nargs=2, type=Path, metavar=("CHECKPOINT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_converter:
        _in_converter(*args.in_converter)
        return
    from core import manifest, paths

    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        entry = convert(root)
    except (RuntimeError, manifest.ManifestError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{ARTIFACT}: max abs diff to eager PyTorch {entry['max_abs_diff_to_eager']:.1e}")


if __name__ == "__main__":
    sys.exit(main())
