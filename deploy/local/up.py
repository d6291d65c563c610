"""`make deploy-all` on this machine: build what the picked targets need and start their servers, the servers
as soon as what they serve is built, while the other exports are still building; then the page.

    python -m deploy.local.up                          # every target (make deploy-all)
    python -m deploy.local.up --targets "onnx-fp32 kserve" --settings throughput
    python -m deploy.local.up --train-args "--data /abs/mine.npz"

1. The steps the picked servers read (training, TorchServe's archive, the SavedModel) are built first.
2. The model servers start (`python -m deploy.local.runner start --servers ...`, a process of its own) while
   every other step of the pick builds beside them (deploy/local/build.py, a step per core): a server takes
   tens of seconds to come up, mostly waiting, and the edge exports use that time.
3. Once both ended, the runner starts what is left (the page's server, now that the page is built) and prints
   where everything answers. A step that fails stops only what reads it, as `make deploy-build` does; a model
   server that does not come up ends the command with its log's tail.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

from core import paths, registry, selection
from core import servers as table
from deploy.local import build, runner, servers
from deploy.local import settings as settings_mod


def model_servers(names: list[str]) -> list[str]:
    """The model servers the targets `names` need (not the page's), in start order."""
    return [name for name in selection.servers_of(names) if not table.SERVERS[name].optional]


def up(root: Path, names: list[str], settings: str = "default", train_args: list | None = None,
       jobs: int = build.DEFAULT_JOBS) -> int:
    """Build and serve the targets `names` over `root`; the exit status (0: everything that could, came up)."""
    served = model_servers(names)
    first = selection.steps([name for name in names if registry.TARGETS[name].server in served])
    results = build.ensure(root, only=first, args=train_args, isolate=True, keep_going=True, jobs=jobs) \
        if first else {}
    starting = None
    if served:
        command = [sys.executable, "-m", "deploy.local.runner", "start", "--artifacts", str(root), "--settings",
                   settings, "--keep-going", "--servers", *served]
        print(f"deploy-all: starting {', '.join(served)} while the other steps build")
        starting = subprocess.Popen(command, cwd=paths.REPO_ROOT)
    try:
        results.update(build.ensure(root, only=selection.steps(names), args=train_args, isolate=True,
                                    keep_going=True, jobs=jobs))
    finally:
        build.write_summary(root, results)
        status = starting.wait() if starting is not None else 0
    build.report(root, results, keep_going=True)
    if status != 0:
        return status
    # The rest (the page's server, once built) and every endpoint's address, servers already up included.
    rest = selection.servers_of(names)
    if not servers.web_built(root):
        pages = [name for name in rest if table.SERVERS[name].optional]
        rest = [name for name in rest if name not in pages]
        if pages:
            print(f"{', '.join(pages)}: the demo page is not built under {root}: not served")
    try:
        runner.start(root, settings=settings_mod.preset(settings), only=tuple(rest), keep_going=True)
    except (runner.StartError, servers.PrepareError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--targets", default=None, help="targets or groups (default: $DIGITS_TARGETS, or all)")
    parser.add_argument("--settings", default="default", choices=settings_mod.PRESET_NAMES,
                        help="named server settings (deploy/local/settings.py; default: default)")
    parser.add_argument("--train-args", help="training flags (default: those the model here was trained with)")
    parser.add_argument("--jobs", type=int, default=build.DEFAULT_JOBS, help="steps built at once")
    args = parser.parse_args(argv)
    try:
        names = selection.pick(args.targets)
    except selection.SelectionError as error:
        parser.error(str(error))
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    train_args = None if args.train_args is None else shlex.split(args.train_args)
    raise SystemExit(up(root, names, args.settings, train_args, args.jobs))


if __name__ == "__main__":
    main()
