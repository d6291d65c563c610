"""The build graph (deploy/local/build.py) on small steps of its own: what runs, what is reused,
and that only a finished step counts as built. The real steps run in the session fixtures
(tests/conftest.py) and in tests/integration/test_deploy_all.py."""
from __future__ import annotations

import json

import pytest

from core import manifest, paths
from deploy.local import build


def writer(name: str, calls: list, fail: set):
    """A step that writes `<name>.txt` from its arguments and what it reads, records it, or fails midway."""
    def run(root, args=None):
        calls.append(name)
        (root / f"{name}.txt").write_text(f"{name} {args} {sorted(p.name for p in root.glob('*.txt'))}")
        if name in fail:
            raise RuntimeError(f"{name} broke midway")
        manifest.record(name, root / f"{name}.txt", framework="torch", precision="fp32", root=root)
    return run


@pytest.fixture
def graph(tmp_path):
    calls, fail = [], set()
    steps = (build.Step("train", writer("train", calls, fail), (), ("train",), takes_args=True),
             build.Step("export-a", writer("export-a", calls, fail), ("train",), ("export-a",)),
             build.Step("export-b", writer("export-b", calls, fail), ("train",), ("export-b",)))

    def ensure(**kwargs):
        calls.clear()
        results = build.ensure(tmp_path, steps=steps, progress=lambda line: None, **kwargs)
        return results, list(calls)
    return ensure, tmp_path, fail


def test_everything_is_built_once_then_reused(graph):
    ensure, root, _ = graph
    assert ensure()[1] == ["train", "export-a", "export-b"]
    assert ensure() == ({"train": "reused", "export-a": "reused", "export-b": "reused"}, [])
    record = json.loads(build.record_path(root, "export-a").read_text())
    assert record["outputs"] == {"export-a": manifest.load(root)["export-a"]["sha256"]}


def test_a_step_that_failed_midway_is_not_built(graph):
    ensure, root, fail = graph
    fail.add("export-a")
    with pytest.raises(build.BuildError, match="export-a failed: RuntimeError: export-a broke midway"):
        ensure()
    assert (root / "export-a.txt").exists() and not build.record_path(root, "export-a").exists()
    fail.clear()
    assert ensure()[1] == ["export-a", "export-b"]  # training finished before: reused


def test_keep_going_builds_the_independent_steps_and_names_the_failure(graph):
    ensure, _, fail = graph
    fail.add("export-a")
    results, calls = ensure(keep_going=True)
    assert calls == ["train", "export-a", "export-b"]
    assert results["export-a"].startswith("failed: RuntimeError: export-a broke midway")
    assert results["export-b"] == "built"
    fail.add("train")
    results, calls = ensure(keep_going=True, force=("train",))
    assert calls == ["train"] and results["export-a"] == results["export-b"] == "skipped: train failed"


def test_other_training_arguments_or_another_dataset_retrain_and_re_export(graph, tmp_path):
    ensure, _, _ = graph
    data = tmp_path / "mine.npz"
    data.write_bytes(b"first")
    ensure()
    assert ensure(args=["--data", str(data)])[1] == ["train", "export-a", "export-b"]  # DATA=mine.npz
    assert ensure(args=["--data", str(data)])[1] == []
    data.write_bytes(b"second")  # the same path with other contents
    assert ensure(args=["--data", str(data)])[1] == ["train", "export-a", "export-b"]
    results, calls = ensure(args=[], dry_run=True)  # back to the default dataset: would retrain
    assert calls == [] and results == {"train": "would build", "export-a": "would build", "export-b": "would build"}
    results, calls = ensure(dry_run=True)  # no flags given: the model trained here is kept
    assert calls == [] and set(results.values()) == {"reused"}


def test_an_output_changed_after_its_step_finished_is_rebuilt(graph):
    ensure, root, _ = graph
    ensure()
    (root / "export-b.txt").write_text("edited by hand")
    assert ensure()[1] == ["export-b"]  # it no longer matches the manifest
    (root / "export-b.txt").write_text("rebuilt by another command")
    manifest.record("export-b", root / "export-b.txt", framework="torch", precision="fp32", root=root)
    assert ensure()[1] == ["export-b"]  # matches the manifest, but not what the step wrote


def test_only_builds_the_named_steps_and_what_they_read(graph):
    ensure, _, _ = graph
    results, calls = ensure(only=["export-b"])
    assert calls == ["train", "export-b"] and "export-a" not in results


def test_the_declared_steps_read_the_trained_model_and_record_training_flags():
    assert build.NAMES[0] == "train" and build.STEPS[0].takes_args
    assert all(step.after[0] == "train" and not step.takes_args for step in build.STEPS[1:])
    # The page runs the edge files too (onnxruntime-web, LiteRT.js): it is built after the steps writing them.
    web = next(step for step in build.STEPS if step.name == "export-web")
    assert web.name == build.NAMES[-1]
    assert set(web.after) == {"train", "export-onnx", "export-onnx-int8", "export-litert-torch"}
    names = list(build.NAMES)
    assert all(names.index(parent) < names.index(step.name) for step in build.STEPS for parent in step.after)
    outputs = [output for step in build.STEPS for output in step.outputs]
    assert len(outputs) == len(set(outputs))  # one step per artifact


def test_a_model_trained_outside_the_graph_is_kept_unless_flags_are_given(graph):
    ensure, root, _ = graph
    ensure()
    (root / "train.txt").write_text("trained by python -m training.train")
    manifest.record("train", root / "train.txt", framework="torch", precision="fp32", root=root)
    assert ensure()[1] == ["export-a", "export-b"]  # kept, and exported again
    assert ensure(args=["--epochs", "5"])[1] == ["train", "export-a", "export-b"]  # flags given: trained


def test_a_changed_recipe_builds_the_step_again_once(tmp_path):
    calls = []
    steps = (build.Step("train", writer("train", calls, set()), (), ("train",), takes_args=True),
             build.Step("export-a", writer("export-a", calls, set()), ("train",), ("export-a",)))
    build.ensure(tmp_path, steps=steps, progress=lambda line: None)
    newer = (steps[0], build.Step("export-a", writer("export-a", calls, set()), ("train",), ("export-a",),
                                  recipe="float32 in and out"))
    lines = []
    calls.clear()
    assert build.ensure(tmp_path, steps=newer, progress=lines.append) == {"train": "reused", "export-a": "built"}
    assert calls == ["export-a"] and any("builds differently now: float32 in and out" in line for line in lines)
    calls.clear()
    assert build.ensure(tmp_path, steps=newer, progress=lambda line: None)["export-a"] == "reused" and calls == []


def test_a_step_whose_tools_are_missing_is_not_built_and_the_rest_go_on(tmp_path):
    """A step declaring `unavailable` (export-litert-torch without .venv-litert-torch) is reported with
    its reason, is no failure, and the steps reading it still build."""
    calls = []
    steps = (build.Step("train", writer("train", calls, set()), (), ("train",), takes_args=True),
             build.Step("export-a", writer("export-a", calls, set()), ("train",), ("export-a",),
                        unavailable=lambda: ".venv-a is missing: run `make setup`"),
             build.Step("export-b", writer("export-b", calls, set()), ("train", "export-a"), ("export-b",)))
    lines = []
    results = build.ensure(tmp_path, steps=steps, progress=lines.append)
    assert results == {"train": "built", "export-a": "not built: .venv-a is missing: run `make setup`",
                       "export-b": "built"}
    assert calls == ["train", "export-b"]
    assert any("export-a: not built (.venv-a is missing" in line for line in lines)


def test_a_single_training_flag_reaches_the_isolated_step(monkeypatch, tmp_path, capsys):
    """`make train TRAIN_ARGS=--no-augment`: a lone flag must travel as the value of --train-args, not as an option."""
    import shlex
    import subprocess

    seen = []

    class Done:
        stdout, returncode = None, 0

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", lambda command, **kwargs: seen.append(command) or Done())
    build._finish_isolated(build.STEPS[0], tmp_path, build._start_isolated(build.STEPS[0], tmp_path, ["--no-augment"]))
    passed = [arg for arg in seen[0] if arg.startswith("--train-args")]
    assert passed == ["--train-args=--no-augment"] and shlex.split(passed[0].split("=", 1)[1]) == ["--no-augment"]
    monkeypatch.undo()
    build.main(["--artifacts", str(tmp_path), "--dry-run", "--train-args=--no-augment", "train"])
    assert "would build train" in capsys.readouterr().out


@pytest.fixture
def project(tmp_path):
    """A tiny project of its own: a network, a trainer that imports it, and two exporters, each a step's code."""
    code = tmp_path / "code"
    (code / "proj").mkdir(parents=True)
    files = {"__init__.py": '"""The package."""\n', "net.py": "def layers():\n    return [1, 2]\n",
             "trainer.py": "from proj import net\n\n\ndef train():\n    return net.layers()\n",
             "export_a.py": "from . import net\n\n\ndef export():\n    return 'a'\n",
             "export_b.py": "def export():\n    return 'b'\n"}
    for name, text in files.items():
        (code / "proj" / name).write_text(text)
    calls, root = [], tmp_path / "artifacts"
    root.mkdir()
    steps = (build.Step("train", writer("train", calls, set()), (), ("train",), takes_args=True,
                        code=("proj.trainer",)),
             build.Step("export-a", writer("export-a", calls, set()), ("train",), ("export-a",),
                        code=("proj.export_a",)),
             build.Step("export-b", writer("export-b", calls, set()), ("train",), ("export-b",),
                        code=("proj.export_b",)),
             build.Step("page", writer("page", calls, set()), ("train", "export-b"), ("page",), files=("proj/*.html",)))

    def ensure(lines=None):
        calls.clear()
        results = build.ensure(root, steps=steps, code_root=code, progress=(lines if lines is not None else []).append)
        return results, list(calls)
    ensure()
    return ensure, code / "proj"


def test_an_edited_network_retrains_and_re_exports_everything(project):
    ensure, code = project
    assert ensure() == ({"train": "reused", "export-a": "reused", "export-b": "reused", "page": "reused"}, [])
    (code / "net.py").write_text("def layers():\n    return [1, 2, 3]\n")  # the template user's first edit
    lines = []
    assert ensure(lines)[1] == ["train", "export-a", "export-b", "page"]
    assert any("train: building (its code changed: proj/net.py)" in line for line in lines)
    assert ensure()[1] == []


def test_an_edited_exporter_re_exports_that_target_and_what_reads_it_only(project):
    ensure, code = project
    (code / "export_b.py").write_text("def export():\n    return 'b, done differently'\n")
    assert ensure()[1] == ["export-b", "page"]
    (code / "export_a.py").write_text("from . import net\n\n\ndef export():\n    return 'A'\n")
    assert ensure()[1] == ["export-a"]
    (code / "page.html").write_text("<p>a file the page step reads</p>")
    assert ensure()[1] == ["page"]


def test_comments_and_docstrings_are_not_code(project):
    ensure, code = project
    (code / "net.py").write_text('"""The network, now documented."""\n\n\n'
                                 'def layers():  # why: ...\n    return [1, 2]\n')
    assert ensure()[1] == []


def test_a_module_newly_imported_by_the_code_is_followed(project):
    ensure, code = project
    (code / "helper.py").write_text("SCALE = 1\n")
    (code / "export_b.py").write_text("from proj.helper import SCALE\n\n\ndef export():\n    return SCALE\n")
    assert ensure()[1] == ["export-b", "page"]
    (code / "helper.py").write_text("SCALE = 2\n")
    assert ensure()[1] == ["export-b", "page"]


def test_the_real_steps_follow_the_code_they_run():
    """Each declared step's code holds its exporter and the network it loads, and not the other exporters."""
    code = {step.name: set(build.code_of(step)) for step in build.STEPS}
    assert {"training/model_torch.py", "training/model_keras.py", "training/train.py"} <= code["train"]
    assert "edge/onnx/export.py" in code["export-onnx"] and "training/model_torch.py" in code["export-onnx"]
    assert not any(path.startswith("edge/") for path in code["train"])
    others = {"edge/tflite/convert.py", "edge/executorch/export.py", "serving/torchserve/archive.py"}
    assert not others & code["export-onnx"]
    assert "serving/torchserve/handler.py" in code["export-torchserve"]
    assert {"web/tfjs/page/runtimes.js", "web/tfjs/package-lock.json"} <= code["export-web"]


def test_a_network_a_runtime_refuses_is_reported_and_every_other_step_builds(tmp_path):
    """An exporter raising registry.NotSupported (XNNPACK leaving an operator to the portable kernels) is no
    failure: its step says why, in the user's words, the steps reading it go on, and the next build tries again."""
    from core.registry import NotSupported

    calls = []

    def refuses(root):
        calls.append("export-a")
        raise NotSupported("your network's operators ['aten.cumsum.default'] are not delegated", "ExecuTorch XNNPACK",
                           "executorch-portable-fp32")
    steps = (build.Step("train", writer("train", calls, set()), (), ("train",), takes_args=True),
             build.Step("export-a", refuses, ("train",), ("export-a",)),
             build.Step("export-b", writer("export-b", calls, set()), ("train", "export-a"), ("export-b",)))
    results = build.ensure(tmp_path, steps=steps, progress=lambda line: None)
    assert results["export-a"] == ("not supported by this network: your network's operators ['aten.cumsum.default'] "
                                   "are not delegated (ExecuTorch XNNPACK); use executorch-portable-fp32 instead")
    assert results["export-b"] == "built" and "reference CNN" not in results["export-a"]
    assert paths.unsupported_path(tmp_path, "export-a").read_text().startswith("your network's operators")
    calls.clear()
    assert build.ensure(tmp_path, steps=steps, progress=lambda line: None)["export-a"].startswith("not supported")
    assert calls == ["export-a"]  # tried again: the network may have changed


def test_deploy_all_keeps_going_and_its_table_says_what_failed_and_why(tmp_path, monkeypatch):
    """A failed step, a step whose tools are missing and a refused network, as the deploy-all table tells them."""
    from deploy import smoke

    summary = {"train": "built", "export-onnx": "failed: RuntimeError: exporter broke",
               "export-executorch-xnnpack": "not supported by this network: cumsum (ExecuTorch XNNPACK); use onnx",
               "export-litert-torch": "not built: .venv-litert-torch is missing", "export-tflite": "reused"}
    build.summary_path(tmp_path).parent.mkdir(parents=True)
    build.summary_path(tmp_path).write_text(json.dumps(summary))
    assert smoke.build_status("onnx-fp32", tmp_path) == ("failed", "export-onnx failed: RuntimeError: exporter broke")
    assert smoke.build_status("onnxruntime-web-chromium", tmp_path) is None  # the page's own step said nothing
    assert smoke.build_status("executorch-xnnpack-fp32", tmp_path)[0] == "not supported"
    assert smoke.build_status("litert-torch-fp32", tmp_path)[0] == "not built"
    assert smoke.build_status("tflite-int8", tmp_path) is None
    rows = [{"target": "onnx-fp32", "where": "x", "status": "failed", "error": "export-onnx failed: RuntimeError: e"},
            {"target": "tflite-fp32", "where": "y", "status": "ok", "label": "1", "probability": 0.9,
             "latency_ms": 1.0}]
    text = smoke.table({"index": 0, "true_label": "1", "targets": rows})
    assert "1 of 2 targets did not answer:\n  onnx-fp32: failed: export-onnx failed" in text


def make_dry_run(*args: str):
    import subprocess

    from core import paths

    return subprocess.run(["make", "--no-print-directory", "-n", *args], cwd=paths.REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("target", ["deploy-build", "train"])
def test_a_data_path_with_a_space_reaches_training_whole(target, tmp_path):
    """`make deploy-all DATA="my data.npz"` once split the path into two words."""
    import re
    import shlex

    from core import paths

    for given, whole in ((tmp_path / "my data.npz", tmp_path / "my data.npz"),
                         ("my data.npz", paths.REPO_ROOT / "my data.npz")):
        done = make_dry_run(target, f"DATA={given}", "TRAIN_ARGS=--epochs 1")
        assert done.returncode == 0, done.stderr
        (train_args,) = re.findall(r'--train-args="([^"]*)"', done.stdout)
        assert shlex.split(train_args) == ["--epochs", "1", "--data", str(whole)]


@pytest.mark.parametrize("data", ["it's.npz", 'say "hi".npz', "two  spaces.npz"])
def test_a_data_path_that_cannot_be_passed_on_is_refused_up_front(data):
    done = make_dry_run("deploy-build", f"DATA={data}")
    assert done.returncode != 0 and not done.stdout
    assert f"DATA={data}: a path with quote characters or spaces in a row cannot be passed on" in done.stderr


def test_steps_run_side_by_side_each_after_what_it_reads(monkeypatch, tmp_path):
    """`--jobs 2`: independent steps overlap, a step starts only once the steps it reads ended, never more
    than two at once, and a failure names the step and shows its log's last lines."""
    import subprocess
    import sys
    import time

    events = []

    def start(step, root, args, log=None):
        events.append(("start", step.name, time.monotonic()))
        log.parent.mkdir(parents=True, exist_ok=True)
        code = "import sys, time; time.sleep(0.6); print('the tail of " + step.name + "'); " \
               + ("sys.exit(1)" if step.name == "export-b" else "")
        return subprocess.Popen([sys.executable, "-c", code], stdout=open(log, "wb"), stderr=subprocess.STDOUT)

    monkeypatch.setattr(build, "_start_isolated", start)
    monkeypatch.setattr(build, "stale", lambda *args, **kwargs: "never finished here")
    Step = build.Step
    steps = (Step("train", "x:y", after=()), Step("export-a", "x:y"), Step("export-b", "x:y"),
             Step("export-c", "x:y"), Step("page", "x:y", after=("export-a", "export-b")))
    lines = []
    results = build.ensure(tmp_path, steps=steps, isolate=True, jobs=2, keep_going=True, args=[],
                           progress=lines.append)
    assert results == {"train": "built", "export-a": "built", "export-b": "failed: BuildError: exit 1",
                       "export-c": "built", "page": "skipped: export-b failed"}
    started = {name: when for kind, name, when in events}
    assert started["export-a"] > started["train"] + 0.5  # after training ended
    overlapping = [name for name in ("export-b", "export-c") if abs(started[name] - started["export-a"]) < 0.3]
    assert overlapping == ["export-b"]  # two at once, the third when one of them ended
    assert any("export-b failed" in line and "the tail of export-b" in line for line in lines)
