"""uv, the tool that creates, fills and locks every environment (`make setup`, `make lock`).

uv is pinned in `requirements/uv.txt` (with its hashes) and installed by pip into a small environment of
its own, `.venv-uv`; everything else is uv's work. uv keeps one cache (UV_CACHE_DIR, by default
~/.cache/uv) and links each package's files from it into every environment that holds it, so torch in three
environments is stored once (keep the cache on the same disk as the checkout, or uv copies instead).

uv does not read pip's configuration, and on some machines that is where the CPU build of torch is found:
`index_args()` reads pip's `find-links` and `index-url` (`pip config list`, which includes the PIP_*
variables) and hands them to uv. pip's `extra-index-url`s are left out: uv's default strategy takes a
package from the first index that has it, and mirrors that hold older versions than the locks pin make
the locks unresolvable. Where no find-links folder holds the CPU wheel of the pinned torch, PyTorch's CPU
index (`TORCH_CPU_INDEX`, or $DIGITS_TORCH_INDEX) is added for it. Standard library only.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from core import environments, paths

TOOL_VENV = paths.REPO_ROOT / ".venv-uv"
TOOL_LOCK = paths.REPO_ROOT / environments.REQUIREMENTS / "uv.txt"
UV = TOOL_VENV / "bin" / "uv"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class SetupError(RuntimeError):
    """A step of the set-up failed; the message says which and what to do."""


def say(line: str) -> None:
    print(line, flush=True)


def base_python() -> str:
    """The Python that runs pip for uv's own environment and `pip config list` ($PYTHON, default python3.11)."""
    return os.environ.get("PYTHON") or "python3.11"


def ensure_uv() -> Path:
    """uv at the pinned version in `.venv-uv` (installed by pip from the hashed lock the first time)."""
    stamp = TOOL_VENV / ".installed"
    want = paths_digest([TOOL_LOCK])
    if UV.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return UV
    started = time.monotonic()
    python = base_python()
    run([python, "-m", "venv", "--clear", str(TOOL_VENV)], f"creating {TOOL_VENV.name} with {python}")
    # --isolated: pip's own configuration (mirrors, find-links) has no say in installing uv from PyPI.
    run([str(TOOL_VENV / "bin" / "python"), "-m", "pip", "--isolated", "install", "--quiet",
         "--disable-pip-version-check", "--require-hashes", "--no-deps", "-r", str(TOOL_LOCK)],
        f"installing uv from {TOOL_LOCK.name}")
    stamp.write_text(want + "\n")
    say(f"  {TOOL_VENV.name}: {version()} in {time.monotonic() - started:.1f} s")
    return UV


def version() -> str:
    return subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def paths_digest(files) -> str:
    import hashlib

    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


def pip_config(python: str | None = None) -> dict[str, list[str]]:
    """pip's settings as `pip config list` prints them (its files and PIP_* variables): key -> values."""
    try:
        done = subprocess.run([python or base_python(), "-m", "pip", "config", "list"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        matched = re.match(r"^[^.]*\.([a-z-]+)='(.*)'$", line.strip())
        if matched:
            found.setdefault(matched.group(1), []).extend(matched.group(2).split())
    return found


def torch_pin() -> str | None:
    """The torch version the constraints pin ("2.13.0+cpu"), None without one."""
    text = (paths.REPO_ROOT / environments.CONSTRAINTS).read_text()
    matched = re.search(r"^torch==(\S+)", text, re.MULTILINE)
    return matched.group(1) if matched else None


def has_wheel(folders, project: str, release: str) -> bool:
    """Whether a local folder among `folders` holds a wheel of `project` at `release`."""
    for folder in folders:
        local = Path(folder.removeprefix("file://"))
        if local.is_dir() and any(local.glob(f"{project}-{release}-*.whl")):
            return True
    return False


def index_args(config: dict | None = None) -> list[str]:
    """uv's flags for where packages come from, taken from pip's configuration (see the module's text)."""
    config = pip_config() if config is None else config
    args: list[str] = []
    find_links = list(dict.fromkeys(config.get("find-links", [])))
    for link in find_links:
        args += ["--find-links", link]
    if config.get("index-url"):
        args += ["--index-url", config["index-url"][-1]]
    pin = torch_pin()
    if pin and "+" in pin and not has_wheel(find_links, "torch", pin):
        # The CPU build is not on PyPI: take it from PyTorch's index, the rest as usual.
        args += ["--extra-index-url", os.environ.get("DIGITS_TORCH_INDEX", TORCH_CPU_INDEX),
                 "--index-strategy", "unsafe-best-match"]
    return args


def uv_env() -> dict:
    """The environment uv runs with: never a Python download, never a telemetry call (uv has none)."""
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def run(command: list, what: str, prefix: str = "    ", quiet: bool = False) -> str:
    """Run `command`, its output indented under the progress (unless `quiet`); SetupError when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, env=uv_env(), cwd=paths.REPO_ROOT)
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        tail = "\n".join(text.splitlines()[-30:])
        raise SetupError(f"{what} failed (exit {done.returncode}): {shlex.join(map(str, command))}\n{tail}")
    if text and not quiet:
        for line in text.splitlines():
            if line.strip() and not line.startswith((" + ", " - ", "Using Python")):
                say(prefix + line.strip())
    return text
