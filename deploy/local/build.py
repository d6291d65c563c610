"""Build what `make deploy-all` needs, and only what is missing or older than its source.

    python -m deploy.local.build           # train if no model is trained, then each stale export
    python -m deploy.local.build --dry-run # say what would be built, build nothing

The rule is make's, over the manifest: a step is up to date when every artifact it writes is in
the manifest, matches its sha256, and is newer than the trained model it was built from. So a
second `make deploy-all` builds nothing and a retrained model (`make train`) rebuilds every export
once. Training itself runs only when no trained model verifies (retrain with `make train`).
`make export` (and each `make export-*`) still rebuilds unconditionally, on request.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from training import manifest, paths


@dataclass(frozen=True)
class Step:
    name: str
    command: tuple  # python -m ... arguments
    sources: tuple  # manifest ids it reads
    outputs: tuple  # manifest ids it writes ("tfserving": the newest SavedModel version)


STEPS = (
    Step("train", ("training.train",), (), ("torch_checkpoint", "keras_model")),
    Step("export-web", ("web.tfjs.export",), ("keras_model",), ("tfjs_graph_model", "web_demo")),
    Step("export-edge", ("edge.export",), ("keras_model", "torch_checkpoint"),
         ("tflite_fp32", "tflite_int8", "executorch_xnnpack_fp32", "executorch_portable_fp32", "onnx_fp32")),
    Step("export-torchserve", ("serving.torchserve.archive",), ("torch_checkpoint",), ("torchserve_mar",)),
    Step("export-tfserving", ("serving.tfserving.export",), ("keras_model",), ("tfserving",)),
)


def _resolve(artifact_id: str, root: Path) -> str | None:
    if artifact_id != "tfserving":
        return artifact_id
    from serving.tfserving import configs

    found = configs.versions(configs.base_path(root))
    return configs.artifact_id(found[-1]) if found else None


def stale(step: Step, root: Path) -> str | None:
    """Why `step` must run (None when it is up to date)."""
    newest_source = 0.0
    for source in step.sources:
        try:
            newest_source = max(newest_source, manifest.verify(source, root).stat().st_mtime)
        except manifest.ManifestError:
            return f"after its source {source}"
    for output in step.outputs:
        artifact_id = _resolve(output, root)
        if artifact_id is None:
            return f"no {output} artifact yet"
        try:
            built = manifest.verify(artifact_id, root).stat().st_mtime
        except manifest.ManifestError as error:
            return str(error)
        if built < newest_source:
            return f"{artifact_id} is older than the model it was built from"
    return None


def ensure(root: Path, dry_run: bool = False, train_args: list | None = None) -> list[str]:
    """Run every stale step in order; returns the names of the steps that ran (or would run)."""
    ran, train_args = [], list(train_args or [])
    for number, step in enumerate(STEPS, 1):
        reason = stale(step, root)
        if reason is None:
            print(f"build: [{number}/{len(STEPS)}] {step.name}: up to date, reused")
            continue
        print(f"build: [{number}/{len(STEPS)}] {step.name}: building ({reason})", flush=True)
        ran.append(step.name)
        if dry_run:
            continue
        start = time.monotonic()
        command = [sys.executable, "-m", *step.command, *(train_args if step.name == "train" else [])]
        # Each step is its own `make` step's command, pointed at this folder the way all of them read it.
        done = subprocess.run(command, cwd=paths.REPO_ROOT, env={**os.environ, "DIGITS_ARTIFACTS": str(root)})
        if done.returncode != 0:
            raise SystemExit(f"build: {step.name} failed (exit {done.returncode}): {' '.join(command)}")
        print(f"build: {step.name}: done in {time.monotonic() - start:.0f} s", flush=True)
    return ran


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be built")
    parser.add_argument("--train-args", default="", help="flags for training when it has to run, e.g. \"--epochs 5\"")
    args = parser.parse_args(argv)
    ran = ensure((args.artifacts or paths.artifacts_dir()).resolve(), args.dry_run, shlex.split(args.train_args))
    print("build: " + (f"built {', '.join(ran)}" if ran and not args.dry_run else
                       f"would build {', '.join(ran)}" if ran else "everything up to date"))


if __name__ == "__main__":
    main()
