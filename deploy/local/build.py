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
Every step's inputs also hold the sha256 of the files of the folder it reads (`Step.reads`: the spec
and the split), and a record the sha256 of the files a step writes besides its outputs (`Step.writes`:
training's spec, split and metrics), so an export is never up to date beside a spec or a split it was
not made from. A step is up to date when its record exists, its inputs are the same now, every
output still matches the manifest with the recorded sha256 and was made for the spec there now, and
it was not interrupted since. Interrupted (Ctrl-C, a crash) a step cannot pass for built:
training (`Step.staged`) runs in `<artifacts>/.staging/train/` and swaps what it wrote in only once
it finished, so an interrupted training leaves the folder as it was; every other step, and the swap
itself, leaves `<artifacts>/built/<step>.unfinished` behind until its record is written, and a step
with that mark is built again (with the training flags it was started with). So a step that stopped
midway runs again; other training flags or another dataset (`make deploy-all DATA=mine.npz`) retrain, and a
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
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core import manifest, paths, registry, selection
from deploy.local import code

Step = registry.Step  # (name, run, after, outputs, ...): declared with the targets, in core/registry.py
STEPS = registry.steps()  # train, one export per runtime, the page: each after the steps it reads
NAMES = tuple(step.name for step in STEPS)
# Names that stand for several steps: `export-edge` (make export-edge) is every edge runtime's export.
GROUPS = {"export-edge": tuple(dict.fromkeys(registry.TARGETS[name].step.name for name in registry.names("edge")))}


def expand(names) -> list[str]:
    """Step names with every group replaced by its steps."""
    return [step for name in names for step in GROUPS.get(name, (name,))]


class BuildError(RuntimeError):
    """One or more steps failed; the message names each and why."""


# Results that are no fault of the build: a step whose tools this machine lacks, a runtime that refuses the network.
NO_FAULT = ("not built", "not supported")


def status_of(result: str) -> str:
    """A step's result as a target's status: "ok" (built or reused), "not built", "not supported", or
    "failed" (failed, or skipped after a failure)."""
    if result.startswith(("built", "reused", "would build")):
        return "ok"
    return next((kind for kind in NO_FAULT if result.startswith(kind)), "failed")


def summary_path(root: Path) -> Path:
    """What the last build from the command line did, step by step ({step: result}): deploy-all's table reads it."""
    return root / "built" / "summary.json"


def outcome(root: Path, step: str) -> str | None:
    """What the last command-line build did with `step` (None: unknown, no build ran here)."""
    try:
        return json.loads(summary_path(root).read_text()).get(step)
    except (OSError, ValueError):
        return None


def record_path(root: Path, name: str) -> Path:
    """The completion record of step `name` in `root`."""
    return root / "built" / f"{name}.json"


def unfinished_path(root: Path, name: str) -> Path:
    """The mark of step `name` under way (or interrupted): written before it touches the folder, removed
    once its record is written."""
    return root / "built" / f"{name}.unfinished"


def staging_path(root: Path, name: str) -> Path:
    """Where a staged step (`Step.staged`) builds before its files are swapped into `root`."""
    return root / ".staging" / name


def _read_record(root: Path, name: str) -> dict | None:
    try:
        return json.loads(record_path(root, name).read_text())
    except (OSError, ValueError):
        return None


def _unfinished(root: Path, name: str) -> dict | None:
    """What the mark of an unfinished step says ({"started", "args", "phase"}), None when there is none."""
    try:
        return json.loads(unfinished_path(root, name).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a mark cut short is still a mark
        return {"started": "?", "args": None, "phase": "?"}


def _file_digests(root: Path, names) -> dict[str, str]:
    """{file: sha256} of files of the artifacts folder ("missing" for one that is not there)."""
    return {name: manifest.sha256_of(root / name) if (root / name).exists() else "missing" for name in names}


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


def _module_of(function) -> str:
    return function.split(":")[0] if isinstance(function, str) else function.__module__


def code_of(step: Step, code_root: Path = paths.REPO_ROOT) -> dict[str, str]:
    """{file: digest} of the code `step` runs: its function's module, `step.code`, what they import
    from the project (deploy/local/code.py), and the files `step.files` names."""
    modules = [_module_of(step.run), *step.code, *([_module_of(step.unavailable)] if step.unavailable else [])]
    return code.digests(modules, step.files, root=code_root)


def inputs_of(step: Step, root: Path, args: list, code_root: Path = paths.REPO_ROOT) -> dict:
    """What `step` is built from now: its upstream steps' records (by digest), its code and its own arguments."""
    found = {"after": {name: _digest(_read_record(root, name)) for name in step.after},
             "code": code_of(step, code_root)}
    if step.reads:  # what it is made from in the folder: the spec and the split
        found["reads"] = _file_digests(root, step.reads)
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
    return registry.named(registry.NEWEST_SAVEDMODEL)(root)


def code_changed(record: dict, now: dict) -> list[str]:
    """The files whose code differs between a record's inputs and `now` (added, removed or edited)."""
    before = record.get("inputs", {}).get("code", {})
    return sorted(path for path in set(before) | set(now["code"]) if before.get(path) != now["code"].get(path))


def stale(step: Step, root: Path, args: list, code_root: Path = paths.REPO_ROOT) -> str | None:
    """Why `step` must run in `root` with `args` (None when it is up to date)."""
    mark = _unfinished(root, step.name)
    if mark is not None:
        return (f"it started {mark.get('started', '?')} and never finished (interrupted or failed"
                f"{' while swapping its files in' if mark.get('phase') == 'swap' else ''})")
    record = _read_record(root, step.name)
    if record is None:
        return "never finished here"
    now = inputs_of(step, root, args, code_root)
    if record.get("inputs") != now:
        changed = [name for name in step.after if record["inputs"].get("after", {}).get(name)
                   != _digest(_read_record(root, name))]
        if changed:
            return f"{', '.join(changed)} was built again"
        if step.reads and "reads" not in record["inputs"]:
            return "its record does not say which spec and split it was made from (an earlier build)"
        moved = [name for name in step.reads if record["inputs"].get("reads", {}).get(name) != now["reads"][name]]
        if moved:
            return f"{', '.join(moved)} changed since it was built (it was made from another)"
        edited = code_changed(record, now)
        if edited:
            shown = ", ".join(edited[:3]) + (f" and {len(edited) - 3} more" if len(edited) > 3 else "")
            return f"its code changed: {shown}"
        if record["inputs"].get("recipe", "") != step.recipe:
            return f"it builds differently now: {step.recipe or 'the earlier way'}"
        return f"its arguments changed (was {shlex.join(record['inputs'].get('args', []))!r})"
    rewritten = [name for name, sha256 in _file_digests(root, record.get("files", {})).items()
                 if record["files"][name] != sha256]
    if rewritten:  # e.g. training run directly and interrupted: a new spec beside the old models
        return f"{', '.join(rewritten)} changed after the step finished"
    entries = manifest.load(root)
    for artifact_id, sha256 in record.get("outputs", {}).items():
        if entries.get(artifact_id, {}).get("sha256") != sha256:
            return f"{artifact_id} was changed after the step finished"
        try:
            manifest.verify(artifact_id, root)
        except manifest.ManifestError as error:
            return str(error)
        mismatch = _contract_mismatch(artifact_id, entries, root)
        if mismatch:
            return mismatch
    return None


def _contract_mismatch(artifact_id: str, entries: dict, root: Path) -> str | None:
    """Why artifact `artifact_id` does not fit the spec in `root` now (None: it was made for this spec)."""
    made_for, now = entries.get(artifact_id, {}).get("input_contract"), manifest.input_contract(root)
    if made_for is None or now is None or made_for == now:
        return None
    return (f"{artifact_id} was made for another spec.json (input {made_for.get('shape')}, "
            f"{len(made_for.get('labels') or [])} labels) than the one there now (input {now.get('shape')}, "
            f"{len(now.get('labels') or [])} labels)")


def _mark(root: Path, step: Step, args: list, phase: str) -> None:
    paths.write_atomic(unfinished_path(root, step.name), json.dumps(
        {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "args": list(args), "phase": phase}) + "\n")


def run_step(step: Step, root: Path, args: list, code_root: Path = paths.REPO_ROOT) -> None:
    """Run one step here and write its completion record (only once it finished).

    A staged step builds in its staging folder, then swaps its files in; any other step is marked
    unfinished before it starts. Either way the mark goes only once the record is written."""
    run = registry.named(step.run)
    paths.unsupported_path(root, step.name).unlink(missing_ok=True)
    out = staging_path(root, step.name) if step.staged else root
    if step.staged:  # what an interrupted run left there is not ours to keep
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    else:
        _mark(root, step, args, "run")
    try:
        run(out, list(args)) if step.takes_args else run(out)
    except registry.NotSupported as error:  # kept for the isolated step's parent and the deploy-all table
        paths.write_atomic(paths.unsupported_path(root, step.name), str(error))
        unfinished_path(root, step.name).unlink(missing_ok=True)  # nothing was written: the step is not built
        raise
    if step.staged:
        _mark(root, step, args, "swap")
        _swap_in(step, out, root)
    _record(step, root, args, code_root)
    unfinished_path(root, step.name).unlink(missing_ok=True)
    if step.staged:
        shutil.rmtree(out, ignore_errors=True)


def _swap_in(step: Step, staging: Path, root: Path) -> None:
    """Move every file a staged step wrote from `staging` into `root` (each by one rename), its
    manifest entries first (a reader that finds a new file finds its entry)."""
    staged = manifest.load(staging)
    manifest.merge({artifact_id: staged[artifact_id] for artifact_id in step.outputs if artifact_id in staged}, root)
    for file in sorted(path for path in staging.rglob("*") if path.is_file() or path.is_symlink()):
        relative = file.relative_to(staging)
        if relative.name in (manifest.manifest_path(staging).name, ".manifest.lock"):
            continue
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, root / relative)


def _verifies(step: Step, root: Path) -> bool:
    """Whether every output of `step` matches the manifest and was made for the spec in `root`."""
    entries = manifest.load(root)
    try:
        ids = [_resolve(output, root) or output for output in step.outputs]
        return all(manifest.verify(i, root) and not _contract_mismatch(i, entries, root) for i in ids)
    except manifest.ManifestError:
        return False


def _trained_outside(step: Step, root: Path, args: list, code_root: Path) -> bool:
    """Whether the model in `root` was trained by running training directly (`python -m training.train`):
    its files verify but were not written by this step (no record, or other outputs than recorded),
    with the same code. Edited code is never "trained outside": it trains again."""
    if _unfinished(root, step.name) is not None or not _verifies(step, root):
        return False  # a model of ours, interrupted: not one trained outside
    record = _read_record(root, step.name)
    if record is None:
        return True
    entries = manifest.load(root)
    rewritten = any(entries.get(key, {}).get("sha256") != sha256 for key, sha256 in record.get("outputs", {}).items())
    return rewritten and not code_changed(record, inputs_of(step, root, args, code_root))


def _record(step: Step, root: Path, args: list, code_root: Path = paths.REPO_ROOT) -> None:
    """Write the completion record of `step` for what it wrote into `root`."""
    entries = manifest.load(root)
    outputs = {}
    for output in step.outputs:
        artifact_id = _resolve(output, root)
        if artifact_id is None or artifact_id not in entries:
            raise BuildError(f"{step.name} finished without writing {output}")
        outputs[artifact_id] = entries[artifact_id]["sha256"]
    record = {"step": step.name, "inputs": inputs_of(step, root, args, code_root), "outputs": outputs,
              "files": _file_digests(root, step.writes), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    paths.write_atomic(record_path(root, step.name), json.dumps(record, indent=2) + "\n")


def _start_isolated(step: Step, root: Path, args: list, log: Path | None = None) -> subprocess.Popen:
    """Step `step` in a process of its own (its output to `log` when given, else to this terminal)."""
    command = [sys.executable, "-m", "deploy.local.build", "--artifacts", str(root), "--run-step", step.name,
               f"--train-args={shlex.join(args)}"]  # one token: a lone "--no-augment" is not read as an option
    output = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        output = open(log, "wb")  # closed by _finish_isolated once the step ends
    return subprocess.Popen(command, cwd=paths.REPO_ROOT, env={**os.environ, "DIGITS_ARTIFACTS": str(root)},
                            stdout=output, stderr=subprocess.STDOUT if output else None)


def _finish_isolated(step: Step, root: Path, process: subprocess.Popen) -> None:
    """Wait for an isolated step; _Unsupported or BuildError as the step ended."""
    process.wait()
    if process.stdout is not None:
        process.stdout.close()
    if process.returncode == NOT_SUPPORTED_EXIT and paths.unsupported_path(root, step.name).exists():
        raise _Unsupported(paths.unsupported_path(root, step.name).read_text())
    if process.returncode != 0:
        raise BuildError(f"exit {process.returncode}")


def log_path(root: Path, name: str) -> Path:
    """Where a step that ran beside others wrote its output."""
    return root / "built" / f"{name}.log"


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join("    " + line for line in path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    (no log)"


class _Unsupported(registry.NotSupported):
    """A NotSupported raised in an isolated step's process, carried back by its message."""

    def __init__(self, message: str):
        RuntimeError.__init__(self, message)


NOT_SUPPORTED_EXIT = 3  # an isolated step's exit status for "not supported by this network"
# Steps built at once from the command line: each imports a framework and mostly uses one core.
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))


def ensure(root: Path, *, only: tuple | list | None = None, args: list | None = None, force: tuple | list = (),
           dry_run: bool = False, isolate: bool = False, keep_going: bool = False, steps: tuple = STEPS,
           progress: Callable[[str], None] = print, code_root: Path = paths.REPO_ROOT, jobs: int = 1) -> dict:
    """Bring `only` (default: every step) and what they read up to date; {step: what happened}.

    `args` are the training flags; None keeps those of the model trained here (so `make deploy-all`
    after `make train TRAIN_ARGS=...` re-exports instead of retraining), [] means the defaults.

    What happened is "reused", "built" (or "would build" in a dry run), "not built: <why>" for a step
    whose tools this machine lacks (`Step.unavailable`; not a failure), or, with `keep_going`,
    "failed: ..." / "skipped: ..." (a step after a failed one); without it the first failure raises
    BuildError. `force` names steps to run even when up to date. `code_root`: where the steps' code
    lies (the repository; another folder in the build graph's own tests). `jobs` > 1 with `isolate`: up
    to that many steps run at once, each as soon as the steps it reads have ended, each writing its output
    to its log (`log_path`), whose last lines are shown when it fails.
    """
    by_name = {step.name: step for step in steps}
    only, force = (expand(only) if only else only), expand(force)
    if args is None:  # no flags given: keep the model trained here, default flags the first time
        trainers = [step for step in steps if step.takes_args]
        record = _read_record(root, trainers[0].name) if trainers else None
        mark = _unfinished(root, trainers[0].name) if trainers else None
        if mark is not None and mark.get("args") is not None:  # interrupted: finish what was started
            args = list(mark["args"])
        else:
            args = list(record["inputs"].get("args", [])) if record else []
        for step in trainers:  # a model trained outside the graph (python -m training.train) is kept
            if not dry_run and step.name not in force and _trained_outside(step, root, args, code_root):
                _record(step, root, args, code_root)
                progress(f"build: {step.name}: the model in {root} was trained outside the build; kept")
    args = list(args)
    wanted = set(only or by_name)
    for name in list(wanted):  # and everything they read
        wanted |= set(_upstream(by_name, name))
    plan = [step for step in registry.ordered(tuple(steps)) if step.name in wanted]  # each after what it reads
    results, failed = {}, {}
    numbers = {step.name: number for number, step in enumerate(plan, 1)}

    def label(step: Step) -> str:
        return f"build: [{numbers[step.name]}/{len(plan)}] {step.name}"

    def decide(step: Step) -> str | None:
        """What happens to `step` without building it (its result, recorded and said), or None: it builds."""
        blocked = [name for name in step.after if name in failed or str(results.get(name, "")).startswith("skipped")]
        if blocked:
            results[step.name] = f"skipped: {', '.join(blocked)} failed"
            progress(f"{label(step)}: skipped ({results[step.name][9:]})")
            return results[step.name]
        missing = registry.named(step.unavailable)() if step.unavailable else None
        if missing:
            results[step.name] = f"not built: {missing}"
            progress(f"{label(step)}: not built ({missing})")
            return results[step.name]
        ran_before = [name for name in step.after if results.get(name) in ("built", "would build")]
        reason = ("forced" if step.name in force else
                  f"{', '.join(ran_before)} will be built first" if dry_run and ran_before else
                  stale(step, root, args, code_root))
        if reason is None:
            results[step.name] = "reused"
            progress(f"{label(step)}: up to date, reused")
            return "reused"
        progress(f"{label(step)}: building ({reason})" + (f"; output in {log_path(root, step.name)}"
                                                           if isolate and jobs > 1 and not dry_run else ""))
        if dry_run:
            results[step.name] = "would build"
            return results[step.name]
        return None

    def settle(step: Step, error: BaseException | None, seconds: float) -> None:
        """Record how a step that ran ended; BuildError on a failure unless `keep_going`."""
        if error is None:
            results[step.name] = "built"
            progress(f"build: {step.name}: done in {seconds:.0f} s")
        elif isinstance(error, registry.NotSupported):  # not a failure: the other targets go on
            results[step.name] = f"not supported by this network: {error}"
            progress(f"{label(step)}: {results[step.name]}")
        else:
            failed[step.name] = f"{type(error).__name__}: {error}"
            results[step.name] = f"failed: {failed[step.name]}"
            tail = f"; last lines of {log_path(root, step.name)}:\n{_log_tail(log_path(root, step.name))}" \
                if isolate and jobs > 1 else ""
            progress(f"build: {step.name} failed ({failed[step.name][:300]}){tail}")
            if not keep_going:
                raise BuildError(f"{step.name} failed: {failed[step.name]}") from error

    if isolate and jobs > 1 and not dry_run:
        _run_parallel(plan, decide, settle, root, args, jobs)
        return results
    for step in plan:
        if decide(step) is not None:
            continue
        started = time.monotonic()
        try:
            if isolate:
                _finish_isolated(step, root, _start_isolated(step, root, args))
            else:
                run_step(step, root, args, code_root)
        except (Exception, SystemExit) as error:  # SystemExit: a step's own "error: ..." exit
            settle(step, error, 0)
            continue
        settle(step, None, time.monotonic() - started)
    return results


def _run_parallel(plan: list, decide, settle, root: Path, args: list, jobs: int) -> None:
    """Run the steps of `plan` in processes of their own, up to `jobs` at once, each once every step it reads
    has ended; each one's output goes to its log (log_path)."""
    # Steps that others wait on go first (the page waits on several exports): the longest chains end sooner.
    readers = {step.name: sum(1 for other in plan if step.name in _upstream({s.name: s for s in plan}, other.name))
               for step in plan}
    waiting = sorted(plan, key=lambda step: -readers[step.name])  # stable: otherwise in plan order
    running = {}  # name -> (step, process, started)
    ended: set[str] = set()
    while waiting or running:
        for step in [step for step in waiting if all(name in ended for name in step.after)]:
            if len(running) >= jobs:
                break
            waiting.remove(step)
            if decide(step) is not None:
                ended.add(step.name)
                continue
            process = _start_isolated(step, root, args, log_path(root, step.name))
            running[step.name] = (step, process, time.monotonic())
        if not running:
            continue
        time.sleep(0.2)
        for name, (step, process, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            ended.add(name)
            try:
                _finish_isolated(step, root, process)
            except (Exception, SystemExit) as error:
                try:
                    settle(step, error, 0)
                except BuildError:
                    for _, other, _ in running.values():  # stop the others: the build has failed
                        other.terminate()
                        other.wait()
                    raise
                continue
            settle(step, None, time.monotonic() - started)


def _upstream(by_name: dict, name: str) -> list:
    found = []
    for parent in by_name[name].after:
        found += [parent, *_upstream(by_name, parent)]
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="*", metavar="STEP",
                        help=f"steps to bring up to date, with what they read (default: all of {', '.join(NAMES)}; "
                        f"{'; '.join(group + ' is ' + ' '.join(names) for group, names in GROUPS.items())})")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be built")
    parser.add_argument("--force", action="store_true", help="run the named steps even when up to date")
    parser.add_argument("--train-args", help="training flags, e.g. \"--epochs 5\" or \"--data mine.npz\" "
                        "(default: those the model here was trained with; the defaults the first time)")
    parser.add_argument("--keep-going", action="store_true",
                        help="exit 0 when a step failed (make deploy-all: its table names what failed and why)")
    parser.add_argument("--targets", default=None, help="with no STEP: build what these targets or groups need "
                        "(default: $DIGITS_TARGETS, or every target)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"steps built at once, each with its output in built/<step>.log (default: {DEFAULT_JOBS}, "
                        "this machine's cores up to 4; 1: one after another, output here)")
    parser.add_argument("--run-step", choices=NAMES, help=argparse.SUPPRESS)  # one step in this process
    args = parser.parse_args(argv)
    unknown = [name for name in args.steps if name not in NAMES and name not in GROUPS]
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}: choose from {', '.join(NAMES)}")
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    train_args = None if args.train_args is None else shlex.split(args.train_args)
    try:
        picked = selection.pick(args.targets)
    except selection.SelectionError as error:
        parser.error(str(error))
    if not args.steps and not selection.picked_all(picked):
        args.steps = selection.steps(picked)
    if args.run_step:
        try:
            run_step(next(step for step in STEPS if step.name == args.run_step), root, train_args or [])
        except registry.NotSupported:  # the parent reads why from unsupported_path and says it
            raise SystemExit(NOT_SUPPORTED_EXIT) from None
        return
    results = ensure(root, only=args.steps or None, args=train_args, force=args.steps if args.force else (),
                     dry_run=args.dry_run, isolate=True, keep_going=True, jobs=args.jobs)
    if not args.dry_run:
        write_summary(root, results)
    report(root, results, dry_run=args.dry_run, keep_going=args.keep_going)


def write_summary(root: Path, results: dict) -> None:
    """Record what a command-line build did, merged into what earlier builds said of the other steps."""
    earlier = {step: outcome(root, step) for step in NAMES if outcome(root, step) is not None}
    paths.write_atomic(summary_path(root), json.dumps({**earlier, **results}, indent=2) + "\n")


def report(root: Path, results: dict, dry_run: bool = False, keep_going: bool = False) -> None:
    """Say what a build did; SystemExit naming what failed, unless `keep_going` (deploy-all serves the rest)."""
    failed = {name: result for name, result in results.items() if result.startswith(("failed", "skipped"))}
    ran = [name for name, result in results.items() if result in ("built", "would build")]
    print("build: " + (f"would build {', '.join(ran)}" if dry_run and ran else
                       f"built {', '.join(ran)}" if ran else "everything up to date"))
    if failed:
        message = "build: " + "; ".join(f"{name} {result}" for name, result in failed.items())
        if keep_going:  # make deploy-all: what failed is in its table, the rest is served
            print(message + f"\nbuild: going on without them (written to {summary_path(root)})")
            return
        raise SystemExit(message)


if __name__ == "__main__":
    main()
