"""Every Python environment and system program the project can need, one row each: what `make setup`
installs for the targets picked (deploy/local/setup.py) and `make lock` locks (deploy/local/lock.py).

    from core import environments
    environments.python("kserve")          # <repo>/.venv-kserve/bin/python
    environments.sources("main")           # requirements/main.in, then each row folder's requirements.in

An environment's packages are locked in `requirements/<name>.txt`, compiled by uv from
`requirements/<name>.in` plus the `requirements.in` of every target or server folder whose row names that
environment (`Target.env`, `ServerRow.env`): a new runtime's dependency goes in its own folder and
`make lock` takes it in. Environments are separate only where pins clash (protobuf, numpy, TensorFlow) or a
runtime must run without the frameworks, as on a device; uv stores each package once and links it into
every environment that holds it.

A "need" is the name of an environment or of a system program (`SYSTEM`): targets, build steps and
servers list theirs, and `make setup TARGETS=...` installs only the needs of what was picked.
Standard library only: `make setup` runs this with the system's Python, before any environment exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import paths

REQUIREMENTS = "requirements"
# torch exactly 2.13.0, the CPU build, in every environment that holds it: a looser pin pulls several GB of
# CUDA wheels. `make lock` and `make setup` pass it to uv as a constraint.
CONSTRAINTS = f"{REQUIREMENTS}/constraints.txt"


@dataclass(frozen=True)
class Environment:
    name: str
    folder: str  # the virtual environment, under the repository root
    purpose: str  # one line: why it exists apart
    python: str = "3.11"


ENVIRONMENTS = {environment.name: environment for environment in (
    Environment("main", ".venv", "training, every export, the in-process targets, the clients, tools and tests"),
    Environment("edge", ".venv-edge", "the TFLite runner on ai-edge-litert alone, as on a device (no TF, no torch)"),
    Environment("tflite-runtime", ".venv-tflite", "the legacy tflite-runtime 2.14, which needs numpy<2"),
    Environment("tfjs", ".venv-tfjs", "the TF.js converter: its TensorFlow 2.19 and protobuf would downgrade main's"),
    Environment("litert-torch", ".venv-litert-torch", "Google's PyTorch -> .tflite converter (jax, transformers)"),
    Environment("kserve", ".venv-kserve", "KServe's ModelServer and tritonclient, which need protobuf<7"),
    Environment("ray", ".venv-ray", "Ray Serve on a local cluster (KServe's V2 routes in each replica)"),
    Environment("perf", ".venv-perf", "NVIDIA perf_analyzer, the benchmarks' native load generator"),
)}

# System programs: the need's name -> (what it is for, the Debian packages that provide it).
# deploy/local/prereqs.sh checks each (and installs them on Debian as root).
SYSTEM = {
    "java": ("Java 11 or newer (TorchServe's frontend)", "openjdk-17-jre-headless"),
    "node": ("Node.js 18 or newer with npm (the page's packages, TF.js in Node)", "nodejs npm"),
    "chromium": ("Chromium (the page's runtimes, run headless)", "chromium chromium-driver"),
    "g++": ("a C++ compiler (torch.compile's inductor on CPU)", "g++"),
    "libb64": ("libb64.so.0d (perf_analyzer links it)", "libb64-0d"),
}
# Every pick needs these: the main environment trains, builds, serves the clients and runs the tests.
ALWAYS = ("main",)


def known(need: str) -> bool:
    return need in ENVIRONMENTS or need in SYSTEM


def folder(name: str) -> Path:
    return paths.REPO_ROOT / ENVIRONMENTS[name].folder


def python(name: str) -> Path:
    """The interpreter of environment `name`."""
    return folder(name) / "bin" / "python"


def stamp(name: str) -> Path:
    """Written by `make setup` once environment `name` matches its lock (it holds the lock's sha256)."""
    return folder(name) / ".installed"


def newer_than(file: Path, names) -> bool:
    """Whether `file` exists and was written after environments `names` were last filled (a file generated
    from them, such as gRPC stubs, is up to date)."""
    return file.exists() and all(not stamp(name).exists() or file.stat().st_mtime >= stamp(name).stat().st_mtime
                                 for name in names)


def lock_path(name: str) -> Path:
    return paths.REPO_ROOT / REQUIREMENTS / f"{name}.txt"


def sources(name: str) -> list[Path]:
    """What environment `name` is locked from: `requirements/<name>.in`, then the `requirements.in` of each
    target or server folder whose row runs in it (in table order, each once)."""
    from core import registry, servers

    folders = [target.folder for target in registry.TARGETS.values() if target.env == name]
    folders += [row.folder for row in servers.SERVERS.values() if row.env == name]
    found = [paths.REPO_ROOT / REQUIREMENTS / f"{name}.in"]
    for each in dict.fromkeys(folders):
        extra = paths.REPO_ROOT / each / "requirements.in"
        if extra.exists():
            found.append(extra)
    return found
