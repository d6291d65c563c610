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
        locustfile = code.module_file("benchmarks.locust.locustfile", paths.REPO_ROOT).read_text()
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
    from benchmarks import browser, soak
    from benchmarks.locust import run as locust_run
    from web.tfjs import export

    assert set(locust_run.TARGETS) == set(registry.served()) == set(soak.SERVER_OF)
    assert [runtime.name for runtime in export.runtimes()] == [t.page.runtime for t in registry.pages()]
    assert {config.split(":")[0] for config in browser.CONFIGS} == {t.page.runtime for t in registry.pages()}
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


# ---- the conventions a row follows: each failure says what to change ----

RUNNER_ROWS = [target for target in ROWS if target.make == "runner"]


@pytest.mark.parametrize("target", RUNNER_ROWS, ids=lambda target: target.name)
def test_a_runner_row_follows_the_runner_conventions(target):
    """A runner row's Predictor is built as Class(<its verified file or folder>, root=root) (registry.load), has
    `prepare(batch)` (what `make bench-edge` times alone) and a `spec`; its command line is `<command>.main`."""
    import inspect

    module, name = target.predictor.split(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    parameters = inspect.signature(cls.__init__).parameters
    assert "root" in parameters, (f"{target.name}: {target.predictor}.__init__ must take `root=` (the artifacts "
                                  "folder whose manifest and spec.json it verifies the file against)")
    first = list(parameters.values())[1] if len(parameters) > 1 else None
    assert first is not None and first.default is inspect.Parameter.empty, (
        f"{target.name}: {target.predictor}.__init__'s first argument must be the model's path (file or folder)")
    assert callable(getattr(cls, "prepare", None)), (
        f"{target.name}: {target.predictor} needs prepare(batch) -> edge.common.RuntimeCall (see edge/onnx/run.py)")
    source = inspect.getsource(cls)
    assert "self.spec" in source, f"{target.name}: {target.predictor} must keep the spec it checks batches against " \
                                  "as `self.spec` (edge.common.verified_entry gives it)"
    assert target.command, f"{target.name}: a runner row names its command line module (`command=`)"


@pytest.mark.parametrize("target", ROWS, ids=lambda target: target.name)
def test_a_row_names_known_needs_and_a_folder_with_a_readme(target):
    from core import environments

    unknown = [need for need in (target.env, *target.needs) if not environments.known(need)]
    assert not unknown, (f"{target.name}: needs {unknown}, which core/environments.py does not know: add an "
                         "Environment (and requirements/<name>.in) or a SYSTEM program there")
    if target.step is not None:
        unknown = [need for need in target.step.needs if not environments.known(need)]
        assert not unknown, f"step {target.step.name}: unknown needs {unknown} (core/environments.py)"
    assert (paths.REPO_ROOT / target.folder / "README.md").exists(), (
        f"{target.name}: {target.folder}/README.md is missing: what it produces, the make target, where the "
        "artifact lands, how to call it")


def test_an_int8_row_has_its_fp32_twin():
    """An int8 row is held to the fp32 row named like it (`onnx-int8` -> `onnx-fp32`: tests/parity/test_int8.py)."""
    for target in ROWS:
        if target.precision == "int8" and target.kind == "edge":
            twin = target.name.replace("int8", "fp32")
            assert twin in registry.TARGETS, f"{target.name}: no row {twin!r}: name an int8 row after its fp32 twin"


def test_manifest_ids_are_each_one_file_or_folder():
    """Two rows run the same file only through the same step (the page's rows run the edge files)."""
    steps_of = {}
    for target in ROWS:
        if target.artifact is not None and target.step is not None:
            steps_of.setdefault(target.artifact, set()).add(target.step.name)
    shared = {artifact: steps for artifact, steps in steps_of.items() if len(steps) > 1}
    assert not shared, f"a manifest id is written by several steps: {shared}: give each its own id"


def test_steps_are_built_after_what_they_read_whatever_the_row_order():
    Step = registry.Step
    train, page = Step("train", "x:y", after=()), Step("page", "x:y", after=("train", "export-a"))
    export = Step("export-a", "x:y")
    assert [step.name for step in registry.ordered((page, export, train))] == ["train", "export-a", "page"]
    with pytest.raises(registry.StepOrderError, match=r"step 'page' reads 'export-b', which no row builds"):
        registry.ordered((train, Step("page", "x:y", after=("export-b",))))
    circle = (Step("a", "x:y", after=("b",)), Step("b", "x:y", after=("a",)))
    with pytest.raises(registry.StepOrderError, match=r"in a circle: a -> b -> a"):
        registry.ordered(circle)
    assert [step.name for step in registry.steps()][0] == "train"


def test_the_groups_a_pick_takes_are_derived_from_the_rows():
    from core import selection

    groups = selection.groups()
    assert not set(groups) & set(registry.TARGETS), "a group may not be named like a target"
    assert set(groups["edge"]) == set(registry.names("edge")) and set(groups["servers"]) == set(registry.served())
    assert groups["kserve"] == ["kserve-torch-v2-rest", "kserve-torch-v2-grpc", "kserve-tf-v2-rest",
                                "kserve-tf-v2-grpc"]
    assert set(groups["torch"]) | set(groups["tensorflow"]) == set(groups["all"]) == set(registry.TARGETS)
    assert selection.resolve("onnx-fp32 tflite") == ["onnx-fp32", "tflite-fp32", "tflite-int8"]
    with pytest.raises(selection.SelectionError, match=r"unknown target or group 'onxx'.*\ntargets: torch-eager"):
        selection.resolve("onnx-fp32 onxx")


def test_the_readme_s_table_of_targets_is_the_table():
    """README.md's table of targets is generated; a row added without regenerating it fails here."""
    from core import readme as readme_mod
    from core import selection

    readme = (paths.REPO_ROOT / "README.md").read_text()
    assert readme_mod.block(readme, "the table of targets") == selection.markdown(), \
        "README.md's table of targets is out of date: run `python -m core.readme`"
    counts = {int(found) for found in re.findall(r"\b(\d+) targets\b", readme)}
    assert counts <= {len(registry.TARGETS)}, f"README.md counts {counts} targets, the table {len(registry.TARGETS)}"


def test_the_setup_page_lists_every_environment_and_lock():
    from core import environments

    page = (paths.REPO_ROOT / "docs" / "setup.md").read_text()
    for name, environment in environments.ENVIRONMENTS.items():
        row = f"| `{environment.folder}` | `requirements/{name}.txt` |"
        assert row in page, f"docs/setup.md's table of environments has no row {row!r}"
