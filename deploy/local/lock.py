"""`make lock`: compile every environment's lock file from what it is made of, with uv, hashes included.

    python3.11 -m deploy.local.lock                 # every lock (and uv's own)
    python3.11 -m deploy.local.lock main kserve     # these environments only
    python3.11 -m deploy.local.lock --upgrade       # newest versions the sources allow, not the locked ones

`requirements/<env>.txt` is compiled from `requirements/<env>.in` and the `requirements.in` of every target
or server folder that runs in that environment (core/environments.py `sources`), under
`requirements/constraints.txt` (torch exactly 2.13.0, the CPU build). Versions already in the lock are
kept where the sources still allow them (uv prefers them), so a new dependency changes the lock by that
dependency and what it needs. Run it after editing a `.in` or a folder's `requirements.in`, and commit the
locks; `make setup` installs exactly them, hashes checked. A lock is never edited by hand.
"""
from __future__ import annotations

import argparse
import sys
import time

from core import environments, paths
from deploy.local import uv
from deploy.local.uv import SetupError, say

HEADER = "make lock"  # what each lock names as its maker


def compile_lock(name: str, index_args: list, upgrade: bool = False) -> None:
    started = time.monotonic()
    environment = environments.ENVIRONMENTS[name]
    lock = environments.lock_path(name)
    sources = [str(path.relative_to(paths.REPO_ROOT)) for path in environments.sources(name)]
    uv.run([str(uv.UV), "pip", "compile", "--quiet", "--generate-hashes", "--python-version", environment.python,
            "--custom-compile-command", HEADER, "--constraints", environments.CONSTRAINTS, *index_args,
            *(["--upgrade"] if upgrade else []), "--output-file", str(lock.relative_to(paths.REPO_ROOT)), *sources],
           f"locking {name}")
    count = sum(1 for line in lock.read_text().splitlines() if line and line[0].isalnum())
    say(f"  {lock.relative_to(paths.REPO_ROOT)}: {count} packages from {', '.join(sources)} "
        f"in {time.monotonic() - started:.1f} s")


def lock_uv(upgrade: bool = False) -> None:
    """uv's own lock, from requirements/uv.in (installed by pip, which reads hashes the same way)."""
    source = uv.TOOL_LOCK.with_suffix(".in").relative_to(paths.REPO_ROOT)
    uv.run([str(uv.UV), "pip", "compile", "--quiet", "--generate-hashes", "--custom-compile-command", HEADER,
            *(["--upgrade"] if upgrade else []), "--output-file", str(uv.TOOL_LOCK.relative_to(paths.REPO_ROOT)),
            str(source)], "locking uv")
    say(f"  {uv.TOOL_LOCK.relative_to(paths.REPO_ROOT)}: from {source}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environments", nargs="*", metavar="ENV",
                        help=f"environments to lock (default: all: {', '.join(environments.ENVIRONMENTS)})")
    parser.add_argument("--upgrade", action="store_true", help="take the newest versions the sources allow")
    args = parser.parse_args(argv)
    unknown = [name for name in args.environments if name not in environments.ENVIRONMENTS]
    if unknown:
        parser.error(f"unknown environment(s) {', '.join(unknown)}: choose from {', '.join(environments.ENVIRONMENTS)}")
    try:
        uv.ensure_uv()
        index_args = uv.index_args()
        say(f"lock: with {uv.version()}" + (f" ({' '.join(index_args)})" if index_args else ""))
        if not args.environments:
            lock_uv(args.upgrade)
        for name in args.environments or environments.ENVIRONMENTS:
            compile_lock(name, index_args, args.upgrade)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    say("lock: done; commit requirements/*.txt")


if __name__ == "__main__":
    main()
