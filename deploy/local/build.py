"""The build graph: every artifact is built by one declared step, and only when missing or stale.

    python -m deploy.local.build                          # make deploy-build: what is missing or stale
    python -m deploy.local.build --train-args "--epochs 5"   # and train with these flags unless it was
    python -m deploy.local.build --dry-run                # say what would be built, build nothing
    python -m deploy.local.build --train-args "--data /abs/mine.npz"   # make deploy-all DATA=mine.npz
    python -m deploy.local.build --force export-web       # make export-web: rebuild that step now

A step declares the steps whose outputs it reads (`after`), the manifest ids it writes (`outputs`)
and the function that builds them. When a step finishes, its completion record
`<artifacts>/built/<step>.json` is written, atomically (a temporary file, then a rename), holding
its inputs and the sha256 of every output. Its inputs are the completion records of the steps it
reads and its own arguments: for training, the flags it was given and the sha256 of a `--data` file;
and its `recipe`, where it declares one (a changed export builds the step again in every folder).
A step is up to date when its record exists, its inputs are the same now, and every output still
matches the manifest with the recorded sha256. So a step that stopped midway (no record) runs
again; other training flags or another dataset (`make deploy-all DATA=mine.npz`) retrain, and a
retrained model rebuilds every export once; a second run builds nothing. Without training flags
(no TRAIN_ARGS, no DATA) the model already trained in the folder is kept, also one trained by
running `python -m training.train` directly.

One graph for everything that builds: `make deploy-all` and the `make train`/`make export-*`
targets (through this command), the width sweep (benchmarks/widths.py), `make bench-all`
(benchmarks/all.py) and the tests' session folders (tests/conftest.py). Steps run in a process of
their own from the command line (TensorFlow and PyTorch free their memory between steps), in
this process when called as `ensure(..., isolate=False)`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from training import manifest, paths


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Path, list], None]  # (artifacts folder, the step's arguments)
    after: tuple  # names of the steps whose outputs it reads
    outputs: tuple  # manifest ids it writes ("tfserving": the SavedModel version it exported)
    takes_args: bool = False  # whether the caller's arguments (training flags) are among its inputs
    # How the step builds, in words; changed when its outputs change for the same inputs (a new export
    # recipe), so folders built the old way build it again once. Empty: not among its inputs.
    recipe: str = ""
    # Why the step cannot run on this machine (None: it can); such a step is reported "not built: <why>"
    # instead of failing, and the steps after it go on without its outputs.
    unavailable: Callable[[], str | None] | None = None


def _train(root: Path, args: list) -> None:
    from training import train

    train.main([*args, "--artifacts", str(root)])


def _export_web(root: Path, args: list) -> None:
    from web.tfjs import export

    export.build(root)


def _export_edge(root: Path, args: list) -> None:
    from edge.export import export_all

    export_all(root)


def _export_litert_torch(root: Path, args: list) -> None:
    from edge.litert_torch import convert

    convert.convert(root)


def _litert_torch_unavailable() -> str | None:
    from edge.litert_torch import convert

    return convert.unavailable()


def _export_torchserve(root: Path, args: list) -> None:
    from serving.torchserve import archive

    archive.build(root)


def _export_tfserving(root: Path, args: list) -> None:
    from serving.tfserving import export

    export.export(root)


# int8 on the PyTorch side (edge/executorch/quantize.py, edge/onnx/quantize.py).
def _export_executorch_int8(root: Path, args: list) -> None:
    from edge.executorch import quantize

    quantize.export(root)


def _export_onnx_int8(root: Path, args: list) -> None:
    from edge.onnx import quantize

    quantize.export(root)


STEPS = (
    Step("train", _train, (), ("torch_checkpoint", "keras_model"), takes_args=True,
         recipe="the digits are trained with augmentation unless --no-augment (training/augment.py)"),
    Step("export-edge", _export_edge, ("train",),
         ("tflite_fp32", "tflite_int8", "executorch_xnnpack_fp32", "executorch_portable_fp32", "onnx_fp32"),
         recipe="tflite int8 takes and gives float32 (quantizes inside the model)"),
    # Google's PyTorch -> .tflite converter, run in its own environment (.venv-litert-torch).
    Step("export-litert-torch", _export_litert_torch, ("train",), ("tflite_torch_fp32",),
         unavailable=_litert_torch_unavailable),
    # The page runs the ONNX and .tflite files too (onnxruntime-web, LiteRT.js), copied from the exports.
    Step("export-web", _export_web, ("train", "export-edge", "export-litert-torch"),
         ("tfjs_graph_model", "tflite_fp32_batch1", "web_demo")),
    Step("export-torchserve", _export_torchserve, ("train",), ("torchserve_mar",)),
    Step("export-tfserving", _export_tfserving, ("train",), ("tfserving",)),
    # int8 on the PyTorch side; the ONNX one quantizes the fp32 file export-edge writes.
    Step("export-executorch-int8", _export_executorch_int8, ("train",), ("executorch_xnnpack_int8",)),
    Step("export-onnx-int8", _export_onnx_int8, ("train", "export-edge"), ("onnx_int8",)),
)
NAMES = tuple(step.name for step in STEPS)


class BuildError(RuntimeError):
    """One or more steps failed; the message names each and why."""


def record_path(root: Path, name: str) -> Path:
    """The completion record of step `name` in `root`."""
    return root / "built" / f"{name}.json"


def _read_record(root: Path, name: str) -> dict | None:
    try:
        return json.loads(record_path(root, name).read_text())
    except (OSError, ValueError):
        return None


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _data_file(args: list) -> Path | None:
    """The `--data` file among training flags, if any."""
    for index, arg in enumerate(args):
        if arg == "--data" and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith("--data="):
            return Path(arg.split("=", 1)[1])
    return None


def inputs_of(step: Step, root: Path, args: list) -> dict:
    """What `step` is built from now: its upstream steps' records (by digest) and its own arguments."""
    found = {"after": {name: _digest(_read_record(root, name)) for name in step.after}}
    if step.recipe:
        found["recipe"] = step.recipe
    if step.takes_args:
        found["args"] = list(args)
        data_file = _data_file(args)
        if data_file is not None:  # the same path with other contents is another dataset
            found["data_sha256"] = manifest.sha256_of(data_file) if data_file.exists() else "missing"
    return found


def _resolve(output: str, root: Path) -> str | None:
    """The manifest id an output stands for now ("tfserving": the newest SavedModel version)."""
    if output != "tfserving":
        return output
    from serving.tfserving import configs

    found = configs.versions(configs.base_path(root))
    return configs.artifact_id(found[-1]) if found else None


def stale(step: Step, root: Path, args: list) -> str | None:
    """Why `step` must run in `root` with `args` (None when it is up to date)."""
    record = _read_record(root, step.name)
    if record is None:
        return "never finished here"
    if record.get("inputs") != inputs_of(step, root, args):
        changed = [name for name in step.after if record["inputs"].get("after", {}).get(name)
                   != _digest(_read_record(root, name))]
        if not changed and record["inputs"].get("recipe", "") != step.recipe:
            return f"it builds differently now: {step.recipe or 'the earlier way'}"
        return (f"{', '.join(changed)} was built again" if changed else
                f"its arguments changed (was {shlex.join(record['inputs'].get('args', []))!r})")
    entries = manifest.load(root)
    for artifact_id, sha256 in record.get("outputs", {}).items():
        if entries.get(artifact_id, {}).get("sha256") != sha256:
            return f"{artifact_id} was changed after the step finished"
        try:
            manifest.verify(artifact_id, root)
        except manifest.ManifestError as error:
            return str(error)
    return None


def run_step(step: Step, root: Path, args: list) -> None:
    """Run one step here and write its completion record (only once it finished)."""
    step.run(root, list(args) if step.takes_args else [])
    _record(step, root, args)


def _verifies(step: Step, root: Path) -> bool:
    try:
        return all(manifest.verify(_resolve(output, root) or output, root) for output in step.outputs)
    except manifest.ManifestError:
        return False


def _record(step: Step, root: Path, args: list) -> None:
    """Write the completion record of `step` for what it wrote into `root`."""
    entries = manifest.load(root)
    outputs = {}
    for output in step.outputs:
        artifact_id = _resolve(output, root)
        if artifact_id is None or artifact_id not in entries:
            raise BuildError(f"{step.name} finished without writing {output}")
        outputs[artifact_id] = entries[artifact_id]["sha256"]
    record = {"step": step.name, "inputs": inputs_of(step, root, args), "outputs": outputs,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    paths.write_atomic(record_path(root, step.name), json.dumps(record, indent=2) + "\n")


def _run_isolated(step: Step, root: Path, args: list) -> None:
    command = [sys.executable, "-m", "deploy.local.build", "--artifacts", str(root), "--run-step", step.name,
               f"--train-args={shlex.join(args)}"]  # one token: a lone "--no-augment" is not read as an option
    done = subprocess.run(command, cwd=paths.REPO_ROOT, env={**os.environ, "DIGITS_ARTIFACTS": str(root)})
    if done.returncode != 0:
        raise BuildError(f"exit {done.returncode}")


def ensure(root: Path, *, only: tuple | list | None = None, args: list | None = None, force: tuple | list = (),
           dry_run: bool = False, isolate: bool = False, keep_going: bool = False, steps: tuple = STEPS,
           progress: Callable[[str], None] = print) -> dict:
    """Bring `only` (default: every step) and what they read up to date; {step: what happened}.

    `args` are the training flags; None keeps those of the model trained here (so `make deploy-all`
    after `make train TRAIN_ARGS=...` re-exports instead of retraining), [] means the defaults.

    What happened is "reused", "built" (or "would build" in a dry run), "not built: <why>" for a step
    whose tools this machine lacks (`Step.unavailable`; not a failure), or, with `keep_going`,
    "failed: ..." / "skipped: ..." (a step after a failed one); without it the first failure raises
    BuildError. `force` names steps to run even when up to date.
    """
    by_name = {step.name: step for step in steps}
    if args is None:  # no flags given: keep the model trained here, default flags the first time
        trainers = [step for step in steps if step.takes_args]
        record = _read_record(root, trainers[0].name) if trainers else None
        args = list(record["inputs"].get("args", [])) if record else []
        for step in trainers:  # a model trained outside the graph (python -m training.train) is kept
            if not dry_run and step.name not in force and _verifies(step, root) and stale(step, root, args):
                _record(step, root, args)
                progress(f"build: {step.name}: the model in {root} was trained outside the build; kept")
    args = list(args)
    wanted = set(only or by_name)
    for name in list(wanted):  # and everything they read
        wanted |= set(_upstream(by_name, name))
    plan = [step for step in steps if step.name in wanted]
    results, failed = {}, {}
    for number, step in enumerate(plan, 1):
        label = f"build: [{number}/{len(plan)}] {step.name}"
        blocked = [name for name in step.after if name in failed or str(results.get(name, "")).startswith("skipped")]
        if blocked:
            results[step.name] = f"skipped: {', '.join(blocked)} failed"
            progress(f"{label}: skipped ({results[step.name][9:]})")
            continue
        missing = step.unavailable() if step.unavailable else None
        if missing:
            results[step.name] = f"not built: {missing}"
            progress(f"{label}: not built ({missing})")
            continue
        ran_before = [name for name in step.after if results.get(name) in ("built", "would build")]
        reason = ("forced" if step.name in force else
                  f"{', '.join(ran_before)} will be built first" if dry_run and ran_before else
                  stale(step, root, args))
        if reason is None:
            results[step.name] = "reused"
            progress(f"{label}: up to date, reused")
            continue
        progress(f"{label}: building ({reason})")
        if dry_run:
            results[step.name] = "would build"
            continue
        started = time.monotonic()
        try:
            (_run_isolated if isolate else run_step)(step, root, args)
        except (Exception, SystemExit) as error:  # SystemExit: a step's own "error: ..." exit
            failed[step.name] = f"{type(error).__name__}: {error}"
            results[step.name] = f"failed: {failed[step.name]}"
            progress(f"build: {step.name} failed ({failed[step.name][:300]})")
            if not keep_going:
                raise BuildError(f"{step.name} failed: {failed[step.name]}") from error
            continue
        results[step.name] = "built"
        progress(f"build: {step.name}: done in {time.monotonic() - started:.0f} s")
    return results


def _upstream(by_name: dict, name: str) -> list:
    found = []
    for parent in by_name[name].after:
        found += [parent, *_upstream(by_name, parent)]
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", metavar="STEP",
                        help=f"steps to bring up to date, with what they read (default: all of {', '.join(NAMES)})")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be built")
    parser.add_argument("--force", action="store_true", help="run the named steps even when up to date")
    parser.add_argument("--train-args", help="training flags, e.g. \"--epochs 5\" or \"--data mine.npz\" "
                        "(default: those the model here was trained with; the defaults the first time)")
    parser.add_argument("--run-step", choices=NAMES, help=argparse.SUPPRESS)  # one step in this process
    args = parser.parse_args(argv)
    unknown = [name for name in args.steps if name not in NAMES]
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}: choose from {', '.join(NAMES)}")
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    train_args = None if args.train_args is None else shlex.split(args.train_args)
    if args.run_step:
        run_step(next(step for step in STEPS if step.name == args.run_step), root, train_args or [])
        return
    results = ensure(root, only=args.steps or None, args=train_args, force=args.steps if args.force else (),
                     dry_run=args.dry_run, isolate=True, keep_going=True)
    failed = {name: result for name, result in results.items() if result.startswith(("failed", "skipped"))}
    ran = [name for name, result in results.items() if result in ("built", "would build")]
    print("build: " + (f"would build {', '.join(ran)}" if args.dry_run and ran else
                       f"built {', '.join(ran)}" if ran else "everything up to date"))
    if failed:
        raise SystemExit("build: " + "; ".join(f"{name} {result}" for name, result in failed.items()))


if __name__ == "__main__":
    main()
