"""Build every edge artifact from the trained models: TFLite, ExecuTorch, ONNX (`make export-edge`).

    python -m edge.export                       # all of them, into artifacts/
    python -m edge.export --only tflite onnx    # some of them

Each step verifies its source model against the manifest and records what it writes there.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core import paths

TARGETS = ("tflite", "executorch", "onnx")


def export_all(root: Path | None = None, targets=TARGETS) -> dict[str, dict]:
    """Run the chosen exporters into `root`; returns every new manifest entry by id."""
    from edge.executorch.export import export as export_executorch
    from edge.onnx.export import export as export_onnx
    from edge.tflite.convert import convert as convert_tflite

    steps = {"tflite": convert_tflite, "executorch": export_executorch, "onnx": export_onnx}
    root = (root or paths.artifacts_dir()).resolve()
    entries = {}
    for number, target in enumerate(targets, 1):
        start = time.perf_counter()
        print(f"== [{number}/{len(targets)}] {target}")
        entries.update(steps[target](root))
        print(f"== {target}: done in {time.perf_counter() - start:.1f} s")
    return entries


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=TARGETS, default=list(TARGETS),
                        help="targets to build (default: all)")
    args = parser.parse_args(argv)
    entries = export_all(targets=args.only)
    print(f"\n{'artifact':<28}{'precision':<10}{'bytes':>9}  path")
    for artifact_id, entry in entries.items():
        print(f"{artifact_id:<28}{entry['precision']:<10}{entry['bytes']:>9,}  {entry['path']}")


if __name__ == "__main__":
    main()
