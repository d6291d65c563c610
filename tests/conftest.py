"""Shared fixtures. Tests write under temporary artifacts folders, never ./artifacts.

The targets picked (`make test TARGETS=edge`, $DIGITS_TARGETS; every target by default): a test that
concerns targets runs only when every target it concerns is picked; the others are deselected, and the run
says how many. What a test concerns: the target names among its parameters, else its `concerns(...)` marks
(targets or groups, core/selection.py; on the module or the test), else nothing: it is target-independent
and always runs. The session's fixtures build, export and serve only what the pick needs.

Session-wide, built once through the build graph (deploy/local/build.py, as `make deploy-all`
builds): `trained_artifacts` (both frameworks trained), `edge_artifacts` (plus every edge export),
`web_artifacts` (plus the TF.js page) and `served` (TorchServe, TF Serving and the demo page's
server running over that folder on free ports, as `make serve` runs them).

The session's servers are read-only to tests: a test that publishes a version, stops or restarts a
server, or changes files under its folder starts servers of its own (`serve_folder` over
`copy_trained`; tests/integration/own_servers.py).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.ports import free_ports  # noqa: F401 (importable from here)
from serving.endpoints import free_endpoints  # noqa: F401 (importable from here)

# Epochs for the session's trained model: enough for a sensible model, seconds to train.
TEST_EPOCHS = 3
TRAIN_ARGS = ["--epochs", str(TEST_EPOCHS), "--seed", "0"]


def built(root: Path, *steps: str, args: list | None = None) -> Path:
    """`root` with `steps` of the build graph (and what they read) up to date, built in this process.

    `args`: training flags; None keeps the model trained in `root` (and trains with TRAIN_ARGS the first time).
    """
    from deploy.local import build

    if args is None and not build.record_path(root, "train").exists():
        args = TRAIN_ARGS
    build.ensure(root, only=steps, args=args)
    return root


def wait_for(condition, seconds: float = 60.0, ignore: tuple = ()) -> bool:
    """Poll `condition()` until it holds (True) or `seconds` pass (False); errors of the `ignore` types
    count as "not yet" (a server still starting)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except ignore:
            pass
        time.sleep(0.3)
    return False


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """A fresh, empty artifacts folder that `core.paths` resolves to for this test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("DIGITS_ARTIFACTS", str(root))
    return root


@pytest.fixture
def spec_folder(tmp_path):
    """`tmp_path` holding the built-in task's spec.json, as training writes it (nothing else)."""
    from training.spec import digits_spec, write_spec

    write_spec(digits_spec(), tmp_path / "spec.json")
    return tmp_path


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory):
    """An artifacts folder holding a model trained once for the whole session (both frameworks).

    Later stages (exports, servers, runners) build into this same folder; pass it to subprocesses
    as DIGITS_ARTIFACTS.
    """
    return built(tmp_path_factory.mktemp("trained"), "train", args=TRAIN_ARGS)


def picked() -> list[str]:
    """The targets this run is for ($DIGITS_TARGETS; every target when unset)."""
    from core import selection

    return selection.from_environment()


def picked_of(kind: str) -> list[str]:
    """The picked targets of one kind (core/registry.py KINDS), in table order."""
    from core import registry

    return [name for name in picked() if registry.TARGETS[name].kind == kind]


def edge_steps() -> tuple:
    """The build steps that write the picked edge targets' artifacts (`make export-edge` when all are)."""
    from core import selection

    return tuple(selection.steps(picked_of("edge")))


@pytest.fixture(scope="session")
def edge_artifacts(trained_artifacts):
    """`trained_artifacts` plus every picked edge target's artifact (TFLite, ExecuTorch, ONNX fp32 and int8,
    litert-torch's .tflite, ...), exported once per session (litert-torch's only where .venv-litert-torch exists:
    `edge_param` skips its tests otherwise)."""
    return built(trained_artifacts, *edge_steps())


def target_param(name: str, *values, **kwargs):
    """Target `name` as a test parameter (with more `values`), skipped, saying why, where its build step cannot
    run on this machine (its `Step.unavailable`: litert-torch's without .venv-litert-torch)."""
    from core import registry

    step = registry.TARGETS[name].step
    missing = registry.named(step.unavailable)() if step is not None and step.unavailable else None
    return pytest.param(name, *values, marks=pytest.mark.skipif(bool(missing), reason=f"not built: {missing}"),
                        **kwargs)


def runner_rows(need: str | None = None) -> list[str]:
    """The rows run by an edge runner over their file (`make="runner"`), in table order; with `need`, those whose
    row needs that environment (their runner also runs there: "edge", as on a device)."""
    from core import registry

    return [name for name, target in registry.TARGETS.items()
            if target.make == "runner" and (need is None or need in target.needs)]


@pytest.fixture(scope="session")
def web_artifacts(trained_artifacts):
    """`trained_artifacts` with `web/` built into it (graph model, page, fixtures), once."""
    from web.tfjs import export

    if not (export.NODE_MODULES / "@tensorflow" / "tfjs").exists():
        pytest.fail(f"{export.NODE_MODULES} is missing: run `make setup` (npm ci in web/tfjs)")
    return built(trained_artifacts, "export-web")


# The second task, unlike the digits: (N, 12, 16, 3) uint8 colour pictures of five named classes
# (training/example_data.py), on the second reference network.
SECOND_TASK_NAME = "bars"
SECOND_TASK_EPOCHS = 4
SECOND_TASK_DATA = "bars.npz"  # beside the task's artifacts folder


@pytest.fixture(scope="session")
def second_task(tmp_path_factory):
    """The second task trained (both frameworks, `--arch resnet`), once per session: the colour task of every test
    that needs one; each builds the exports it needs on top (`built(second_task, ...)`)."""
    import numpy as np

    from training import example_data

    folder = tmp_path_factory.mktemp("second-task")
    data = folder / SECOND_TASK_DATA
    np.savez(data, **example_data.make())
    return built(folder / "artifacts", "train", args=["--epochs", str(SECOND_TASK_EPOCHS), "--arch", "resnet",
                                                      "--data", str(data), "--seed", "0"])


@dataclass
class Served:
    root: Path
    endpoints: object  # serving.endpoints.Endpoints
    startup_seconds: dict


# What a trained artifacts folder holds before anything is exported or started (and the training
# step's completion record, so the build graph does not train the copy again).
TRAINED = ("spec.json", "manifest.json", "metrics.json", "data", "torch", "tensorflow", "built/train.json")


def copy_trained(source: Path, target: Path, with_page: bool = False) -> Path:
    """The trained model (not the exports, not the running servers' state) in another artifacts folder;
    `with_page`: the built demo page too."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "built").mkdir(exist_ok=True)
    for name in TRAINED + (("web", "built/export-web.json") if with_page else ()):
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        elif (source / name).exists():
            shutil.copy2(source / name, target / name)
    return target


def serve_folder(root: Path, endpoints, timeout: float = 300, only: tuple | None = None, without: tuple = ()):
    """Build the servers' artifacts into `root` (when missing or stale) and start the servers over it (a context
    manager); `only`: just those servers (default: the picked targets' servers, the page's server too when built),
    `without`: all but those (runner.start's)."""
    from contextlib import contextmanager

    from core import registry, selection
    from deploy.local import runner

    if only is None and not selection.picked_all(picked()):
        only = tuple(selection.servers_of(picked()))
    served_targets = [name for name, target in registry.TARGETS.items()
                      if target.server is not None and (only is None or target.server in only)]

    @contextmanager
    def running():
        steps = selection.steps(served_targets)
        if steps:  # none for a pick without servers; no steps at all would mean every step to the build
            built(root, *steps)
        named = endpoints.for_root(root)  # clients address the model the spec names
        try:
            times = runner.start(root, named, timeout=timeout, only=only, without=without)
            yield Served(root, named, times)
        finally:
            runner.stop(root)

    return running()


@pytest.fixture(scope="session")
def served(trained_artifacts):
    """The picked targets' servers (TorchServe, TF Serving (the real one if present, else the compatible one),
    KServe, Ray Serve, and the demo page when a page row is picked), started once per test session on free ports
    over the session's trained model, through the same runner `make serve` uses; stopped at the end of the
    session, also when tests fail."""
    from core import registry

    if any(registry.TARGETS[name].page is not None for name in picked()):
        built(trained_artifacts, "export-web")  # the page's server serves the page
    with serve_folder(trained_artifacts, free_endpoints()) as running:
        before = shared_state(running)
        yield running
        changed = {key: (value, shared_state(running)[key]) for key, value in before.items()
                   if shared_state(running)[key] != value}
        if changed:  # a test changed what every other test reads: it needs servers of its own
            pytest.fail(f"the session's servers are read-only to tests, but this changed (before, after): {changed}; "
                        "a test that stops, restarts, publishes or writes files needs its own servers "
                        "(tests/integration/own_servers.py)", pytrace=False)


def shared_state(served: Served) -> dict:
    """What tests must leave as it is: which processes serve, and the files they serve from."""
    from deploy.local import runner, servers
    from serving.tfserving import configs

    pids = {name: getattr(runner.read_pid(runner.run_dir(name, served.root)), "pid", None) for name in servers.NAMES}
    entries = json.loads((served.root / "manifest.json").read_text())
    served_files = {key: entry["sha256"] for key, entry in entries.items()  # (edge exports may still be added)
                    if key.startswith(("torchserve_mar", "tfserving", "web_demo", "tfjs_graph_model"))}
    return {"pids": pids, "served files": served_files,
            "tfserving versions": configs.versions(configs.base_path(served.root)),
            "torchserve versions": (served.root / "torchserve" / "published.json").exists()}


@pytest.fixture(scope="session")
def spec(trained_artifacts):
    """The spec of the session's model: shapes, range, labels and names every test reads."""
    from core import spec as specs

    return specs.load(trained_artifacts)


@pytest.fixture(scope="session")
def test_split(trained_artifacts):
    """The saved test split of the session's model (the golden cases every target is checked on)."""
    from core import paths
    from training import data

    return data.load_split(paths.split_path(trained_artifacts))["test"]


@pytest.fixture(scope="session")
def server_clients(served):
    """A client of each picked served endpoint, by target name (torchserve-rest, ..., tfserving-grpc)."""
    from core import registry

    made = {name: registry.load(name, root=served.root, endpoints=served.endpoints) for name in picked_of("server")}
    yield made
    for client in made.values():
        if hasattr(client, "close"):  # the gRPC channels
            client.close()


# ---- the pick: which tests run (see the module's docstring) ----

def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    import signal

    # A SIGTERM (a CI time-out, `kill`) ends the run like Ctrl-C does: fixtures tear down, so the servers the
    # session started are stopped instead of left running.
    signal.signal(signal.SIGTERM, _interrupted)
    config.addinivalue_line("markers", "concerns(*words): the targets or groups (core/selection.py) a test is about; "
                                       "it runs only when they are all picked (make test TARGETS=...)")


# What a test that names no target concerns when it takes one of the session's fixtures: what they build or serve.
FIXTURE_CONCERNS = {"served": "all", "server_clients": "servers", "deployed": "all",
                    "web_artifacts": "browser", "colour_web_artifacts": "browser", "edge_artifacts": "edge"}


def concerns(item) -> set[str]:
    """The targets `item` concerns: the target names among its parameters, else its `concerns` marks, else what
    the session fixtures it takes build or serve (FIXTURE_CONCERNS); empty: target-independent."""
    from core import registry, selection

    params = getattr(getattr(item, "callspec", None), "params", {})
    named = {value for value in params.values() if isinstance(value, str) and value in registry.TARGETS}
    if named:
        return named
    words = [word for mark in item.iter_markers("concerns") for word in mark.args]
    words = words or [FIXTURE_CONCERNS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_CONCERNS]
    return set(selection.resolve(words)) if words else set()


def pytest_collection_modifyitems(config, items):
    from core import selection
    from tests.faults import full_battery

    chosen = set(picked())
    every = selection.picked_all(chosen)
    full = full_battery()
    keep, unpicked, full_only = [], [], []
    for item in items:
        if not every and not concerns(item) <= chosen:
            unpicked.append(item)
        elif not full and item.get_closest_marker("full_battery"):
            full_only.append(item)
        else:
            keep.append(item)
    if unpicked or full_only:
        config.hook.pytest_deselected(items=unpicked + full_only)
        items[:] = keep
    config._digits_deselected = (len(unpicked), len(full_only))


def pytest_terminal_summary(terminalreporter, config):
    import os

    from core import selection

    unpicked, full_only = getattr(config, "_digits_deselected", (0, 0))
    if unpicked:
        terminalreporter.write_line(f"{unpicked} tests deselected: they concern targets not picked "
                                    f"({selection.VARIABLE}={os.environ.get(selection.VARIABLE)!r})")
    if full_only:
        terminalreporter.write_line(f"{full_only} tests deselected: parts of a battery that only `make faults` "
                                    "runs in full (tests/faults.py)")
