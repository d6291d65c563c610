"""The one table of targets (core/registry.py): every name a row gives points at something that exists,
and every consumer derives its list from the rows instead of keeping its own."""
from __future__ import annotations

import re

import pytest

from core import paths, registry
from deploy.local import build, code

ROWS = list(registry.TARGETS.values())


def module_exists(module: str) -> bool:
    return code.module_file(module, paths.REPO_ROOT) is not None


def defined_in(module: str, name: str) -> bool:
    """Whether `module`'s file defines `name` at its top level (read, not imported: no runtime is loaded)."""
    text = code.module_file(module, paths.REPO_ROOT).read_text()
    return re.search(rf"^(class|def) {re.escape(name)}\b|^{re.escape(name)} = ", text, re.M) is not None


@pytest.mark.parametrize("target", ROWS, ids=lambda target: target.name)
def test_a_row_names_what_exists(target):
    assert target.kind in registry.KINDS and target.make in registry.MAKERS
    assert target.framework in registry.REFERENCES and target.precision in ("fp32", "int8")
    assert (paths.REPO_ROOT / target.folder).is_dir(), target.folder
    module, cls = target.predictor.split(":")
    assert module_exists(module) and defined_in(module, cls), target.predictor
    if target.command:
        assert module_exists(target.command) and defined_in(target.command, "main")
    if target.make == "runner":
        assert target.command and target.artifact, "a runner's command line takes its file"
    if target.step is not None:
        module, function = target.step.run.split(":")
        assert module_exists(module) and defined_in(module, function), target.step.run
        assert target.artifact is None or target.artifact in target.step.outputs
    if target.page is not None:
        from web.tfjs import export

        assert target.kind == "browser" and target.page.adapter in export.ADAPTERS
        runtimes_js = (paths.REPO_ROOT / "web/tfjs/page/runtimes.js").read_text()
        assert re.search(rf"ADAPTERS = {{[^}}]*'?{re.escape(target.page.adapter)}'?:", runtimes_js)
    if target.kind == "server":
        assert target.server and target.address and target.load_user
        # The locustfile makes one user class per row's load_user (a class named like one).
        assert re.fullmatch(r"[A-Z]\w*User", target.load_user), target.load_user
        locustfile = code.module_file("serving.load.locustfile", paths.REPO_ROOT).read_text()
        assert "globals()[_target.load_user]" in locustfile


def test_one_spelling_of_each_name_and_one_step_per_artifact():
    assert len({target.name for target in ROWS}) == len(ROWS)
    assert len({t.page.runtime for t in registry.pages()}) == len(registry.pages())
    outputs = [output for step in build.STEPS for output in step.outputs]
    assert len(outputs) == len(set(outputs))
    by_name = {step.name: step for step in build.STEPS}
    for target in ROWS:  # every row's step is the graph's step of that name
        if target.step is not None:
            assert by_name[target.step.name] is target.step
        assert registry.step_of(target.name) in by_name


def test_consumers_derive_from_the_rows():
    from serving import soak
    from serving.load import locust_run
    from web.tfjs import bench, export

    assert set(locust_run.TARGETS) == set(registry.served()) == set(soak.SERVER_OF)
    assert [runtime.name for runtime in export.runtimes()] == [t.page.runtime for t in registry.pages()]
    assert {config.split(":")[0] for config in bench.CONFIGS} == {t.page.runtime for t in registry.pages()}
    assert set(build.GROUPS["export-edge"]) == {registry.TARGETS[name].step.name for name in registry.names("edge")}


def test_every_served_target_has_a_base_address_and_no_other_does(tmp_path):
    from core.spec import SERVING_PORTS
    from serving.endpoints import Endpoints
    from tests.deploy.conftest import artifacts_with, other_spec

    root = artifacts_with(tmp_path / "artifacts", other_spec())  # a spec, nothing built
    endpoints = Endpoints("127.0.0.1", {name: 40000 + number for number, name in enumerate(SERVING_PORTS)})
    for name, target in registry.TARGETS.items():
        base = registry.base_address(name, root, endpoints)
        if target.address is None:
            assert base is None, name
            continue
        scheme = "grpc" if name.endswith("-grpc") else "http"
        assert re.fullmatch(rf"{scheme}://127\.0\.0\.1:4\d{{4}}", base), (name, base)
        assert base.split(":")[-1] in registry.where(name, root, endpoints)
