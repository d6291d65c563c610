"""Builds that cannot lie (deploy/local/build.py), on small steps of their own: an interrupted step
leaves the old state or one the build knows is unfinished, and a spec or split the outputs were not
made from is never "up to date". The real steps under SIGINT: tests/integration/test_interrupted_build.py."""
from __future__ import annotations

import json

import pytest

from core import manifest
from deploy.local import build
from training.spec import ModelConfig, derive_spec, digits_spec, write_spec


def colour_spec() -> dict:
    """Another task's spec: (12, 16, 3) pictures of three classes."""
    return derive_spec(ModelConfig(), item_shape=(12, 16, 3), labels=["red", "green", "blue"], value_range=(0, 255),
                       model_name="bars", reduction={"kind": "resize"}, seed=0, data_source="bars.npz")


class Stop(KeyboardInterrupt):
    """Ctrl-C, raised where a test says."""


@pytest.fixture
def graph(tmp_path):
    """A staged trainer (writes spec.json, the split, its model) and an export reading them; `stop` names
    where the next run is interrupted: "train" (mid-training) or "export" (after its file, before its record)."""
    calls, stop = [], set()

    def train(root, args):
        calls.append("train")
        write_spec(colour_spec() if "--data" in args else digits_spec(), root / "spec.json")
        (root / "data").mkdir(exist_ok=True)
        (root / "data" / "split.npz").write_text(f"split of {args}")
        if "train" in stop:
            raise Stop()
        (root / "model.txt").write_text(f"model of {args}")
        manifest.record("model", root / "model.txt", framework="torch", precision="fp32", root=root)
        (root / "metrics.json").write_text("{}")

    def export(root):
        calls.append("export")
        (root / "export.txt").write_text(f"export of {(root / 'model.txt').read_text()}")
        if "export" in stop:
            raise Stop()
        manifest.record("export", root / "export.txt", framework="torch", precision="fp32", root=root)

    steps = (build.Step("train", train, (), ("model",), takes_args=True, reads=(),
                        writes=("spec.json", "data/split.npz", "metrics.json"), staged=True),
             build.Step("export", export, ("train",), ("export",)))
    lines = []

    def ensure(**kwargs):
        calls.clear()
        lines.clear()
        results = build.ensure(tmp_path, steps=steps, progress=lines.append, **kwargs)
        return results, list(calls)
    return ensure, tmp_path, stop, lines


def test_training_interrupted_midway_leaves_the_folder_as_it_was(graph):
    ensure, root, stop, _ = graph
    ensure(args=[])
    before = {name: (root / name).read_text() for name in ("spec.json", "data/split.npz", "model.txt", "manifest.json")}
    stop.add("train")
    with pytest.raises(KeyboardInterrupt):  # make train DATA=bars.npz, Ctrl-C during the epochs
        ensure(args=["--data", "bars.npz"], force=("train",))
    assert {name: (root / name).read_text() for name in before} == before  # spec and split still the model's
    assert not build.unfinished_path(root, "train").exists()
    stop.clear()
    assert ensure() == ({"train": "reused", "export": "reused"}, [])  # the old state is whole: nothing to do
    assert ensure(args=["--data", "bars.npz"])[1] == ["train", "export"]
    assert json.loads((root / "spec.json").read_text())["model_name"] == "bars"
    assert (root / "export.txt").read_text() == "export of model of ['--data', 'bars.npz']"
    assert not build.staging_path(root, "train").exists()


def test_training_interrupted_while_swapping_in_is_trained_again_with_its_own_flags(graph, monkeypatch):
    ensure, root, _, lines = graph
    ensure(args=[])
    moved = []
    real_replace = build.os.replace

    def replace(source, target):  # Ctrl-C after the first file moved in from the staging folder
        if "/.staging/" in str(source):
            if moved:
                raise Stop()
            moved.append(target)
        real_replace(source, target)
    monkeypatch.setattr(build.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        ensure(args=["--data", "bars.npz"], force=("train",))
    monkeypatch.undo()
    assert json.loads(build.unfinished_path(root, "train").read_text())["phase"] == "swap"
    results, calls = ensure()  # no flags: the interrupted run's, not the recorded ones
    assert calls == ["train", "export"]
    assert any("train: building (it started" in line and "while swapping its files in" in line for line in lines)
    assert (root / "model.txt").read_text() == "model of ['--data', 'bars.npz']"
    assert not build.unfinished_path(root, "train").exists() and ensure()[1] == []


def test_an_export_interrupted_midway_is_built_again(graph):
    ensure, root, stop, lines = graph
    ensure(args=[])
    (root / "export.txt").write_text("a half-written file")
    manifest.record("export", root / "export.txt", framework="torch", precision="fp32", root=root)  # and recorded
    stop.add("export")
    with pytest.raises(KeyboardInterrupt):
        ensure(force=("export",))
    stop.clear()
    assert ensure() == ({"train": "reused", "export": "built"}, ["export"])
    assert any("export: building (it started " in line and "never finished" in line for line in lines)
    assert ensure()[1] == []


def test_a_spec_and_split_newer_than_the_models_are_not_up_to_date(graph):
    """The state an interrupted `python -m training.train` leaves: spec.json and the split of new data,
    every model of the old. The build once called that "everything up to date"."""
    ensure, root, _, lines = graph
    ensure(args=[])
    write_spec(colour_spec(), root / "spec.json")
    (root / "data" / "split.npz").write_text("split of the new data")
    results, calls = ensure()
    assert calls[0] == "train"  # the export is reused only when training gave the very same record again
    assert "train: building (spec.json, data/split.npz changed after the step finished)" in "\n".join(lines)
    assert json.loads((root / "spec.json").read_text())["model_name"] == "digits"  # trained again as recorded


def test_an_export_made_from_another_spec_or_split_is_built_again(graph):
    ensure, root, _, lines = graph
    ensure(args=[])
    (root / "data" / "split.npz").write_text("another split")
    trained = json.loads(build.record_path(root, "train").read_text())
    trained["files"] = build._file_digests(root, ("spec.json", "data/split.npz", "metrics.json"))
    build.record_path(root, "train").write_text(json.dumps(trained))  # the trainer's record agrees with it,
    exported = json.loads(build.record_path(root, "export").read_text())
    exported["inputs"]["after"]["train"] = build._digest(trained)  # and the export's with the trainer's
    build.record_path(root, "export").write_text(json.dumps(exported))
    assert ensure()[1] == ["export"]
    assert any("data/split.npz changed since it was built" in line for line in lines)


def test_an_output_made_for_another_spec_is_not_up_to_date(graph):
    ensure, root, _, _ = graph
    ensure(args=[])
    entries = manifest.load(root)
    assert entries["export"]["input_contract"]["shape"] == [-1, 8, 8]
    write_spec(colour_spec(), root / "spec.json")  # and nothing else says so
    assert build._contract_mismatch("export", entries, root) == (
        "export was made for another spec.json (input [-1, 8, 8], 10 labels) "
        "than the one there now (input [-1, 12, 16, 3], 3 labels)")
