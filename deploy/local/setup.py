"""`make setup`: install what the picked targets need, and nothing else; seconds when nothing changed.

    python3.11 -m deploy.local.setup                               # every target (make setup)
    python3.11 -m deploy.local.setup --targets "onnx-fp32 tflite"  # make setup TARGETS=...
    python3.11 -m deploy.local.setup --only main                   # one environment by name

It runs with the system's Python, before any environment exists. For the targets picked
(core/selection.py) it checks (and on Debian as root installs) the system programs they need
(deploy/local/prereqs.sh), installs the pinned uv (deploy/local/uv.py), creates each environment they
need with uv and makes it exactly its lock (`uv pip sync`, hashes required), installs the page's npm
packages when a page or TF.js row is picked, and generates the servers' gRPC stubs. An environment whose
lock has not changed since it was filled is left alone (`<env>/.installed` holds the lock's sha256): a
second run takes seconds. One line per environment says how long it took.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time

from core import environments, paths, registry, selection, servers
from deploy.local import uv
from deploy.local.uv import SetupError, say

PREREQS = paths.REPO_ROOT / "deploy" / "local" / "prereqs.sh"
WEB = paths.REPO_ROOT / "web" / "tfjs"
VERSION = "import sys; print('%d.%d' % sys.version_info[:2])"  # an interpreter's Python version


def is_current(name: str) -> bool:
    """Whether environment `name` was filled from its lock as it is now."""
    stamp = environments.stamp(name)
    return (environments.python(name).exists() and stamp.exists()
            and stamp.read_text().strip() == uv.paths_digest([environments.lock_path(name)]))


def python_matches(name: str) -> bool:
    """Whether the environment's interpreter is of the Python version its row asks for."""
    try:
        done = subprocess.run([str(environments.python(name)), "-c", VERSION], capture_output=True, text=True,
                              timeout=30)
    except OSError:
        return False
    return done.stdout.strip() == environments.ENVIRONMENTS[name].python


def fill(name: str, index_args: list) -> None:
    """Create environment `name` if needed and make it exactly its lock."""
    environment = environments.ENVIRONMENTS[name]
    folder, lock = environments.folder(name), environments.lock_path(name)
    if is_current(name):
        say(f"  {environment.folder}: up to date with {lock.relative_to(paths.REPO_ROOT)}")
        return
    started = time.monotonic()
    environments.stamp(name).unlink(missing_ok=True)  # an interrupted fill never passes for done
    if not environments.python(name).exists() or not python_matches(name):
        python = os.environ.get("PYTHON") or environment.python  # an interpreter, or a version uv finds on PATH
        uv.run([str(uv.UV), "venv", "--clear", "--python", python, str(folder)],
               f"creating {environment.folder}", quiet=True)
    say(f"  {environment.folder}: installing {lock.relative_to(paths.REPO_ROOT)} ({environment.purpose})")
    python = str(environments.python(name))
    uv.run([str(uv.UV), "pip", "sync", "--python", python, "--require-hashes", *index_args, str(lock)],
           f"installing {lock.name} into {environment.folder}")
    uv.run([str(uv.UV), "pip", "check", "--python", python], f"checking {environment.folder}", quiet=True)
    environments.stamp(name).write_text(uv.paths_digest([lock]) + "\n")
    say(f"  {environment.folder}: ready in {time.monotonic() - started:.1f} s")


def start_system(needs: list) -> subprocess.Popen | None:
    """Check (and on Debian as root install) the system programs among `needs`, in the background: apt-get
    takes a while on a new machine, and the environments do not wait for it."""
    wanted = [need for need in needs if need in environments.SYSTEM]
    if not wanted:
        say("  system programs: none needed")
        return None
    return subprocess.Popen(["bash", str(PREREQS), *wanted])


def finish(process: subprocess.Popen | None, what: str) -> None:
    if process is not None and process.wait() != 0:
        raise SetupError(f"{what} failed (see above)")


def npm_current() -> bool:
    installed, lock = WEB / "node_modules" / ".package-lock.json", WEB / "package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def start_npm() -> subprocess.Popen | None:
    """The page's npm packages, exactly as package-lock.json has them (in the background; None: up to date)."""
    if npm_current():
        say("  web/tfjs/node_modules: up to date")
        return None
    say("  web/tfjs/node_modules: npm ci (package-lock.json)")
    return subprocess.Popen(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                            cwd=WEB)


def setup_commands(names: list) -> list[str]:
    """The set-up command lines of the picked targets' rows and of their servers' rows, each once, in table order."""
    commands = [command for name in names for command in registry.TARGETS[name].setup]
    commands += [command for server in selection.servers_of(names) for command in servers.SERVERS[server].setup]
    return list(dict.fromkeys(commands))


def run_setup_commands(names: list) -> None:
    """Each row's own set-up (gRPC stubs, a runtime's telemetry turned off), the main environment first on PATH."""
    main_bin = environments.python("main").parent
    env = {**os.environ, "PATH": f"{main_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(paths.REPO_ROOT)}
    for command in setup_commands(names):
        done = subprocess.run(shlex.split(command), cwd=paths.REPO_ROOT, env=env)
        if done.returncode != 0:
            raise SetupError(f"`{command}` failed (exit {done.returncode}; see above)")


def setup(names: list, only: list | None = None) -> None:
    started = time.monotonic()
    needs = only or selection.needs(names)
    what = "every target" if selection.picked_all(names) else " ".join(names)
    say(f"setup: for {what}: {' '.join(needs)}")
    system = start_system(needs)
    # npm ci beside the environments when npm is here already; after the system programs when they bring it.
    web = "node" in needs and only is None
    npm = start_npm() if web and shutil.which("npm") else None
    wanted = [need for need in needs if need in environments.ENVIRONMENTS]
    if any(not is_current(name) for name in wanted):
        uv.ensure_uv()
        index_args = uv.index_args()
    else:
        index_args = []
    for name in wanted:
        fill(name, index_args)
    finish(system, "the system programs' check")
    if web and npm is None and not npm_current():
        npm = start_npm()
    finish(npm, "npm ci in web/tfjs")
    if only is None:
        run_setup_commands(names)
    say(f"setup: done in {time.monotonic() - started:.1f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=None, help="targets or groups (default: $DIGITS_TARGETS, or all)")
    parser.add_argument("--only", nargs="+", choices=[*environments.ENVIRONMENTS, *environments.SYSTEM],
                        help="just these environments and system programs, whatever the targets")
    args = parser.parse_args(argv)
    try:
        names = selection.pick(args.targets)
        setup(names, args.only)
    except (selection.SelectionError, SetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
