"""The whole training pipeline on its fast path: one epoch, into a temporary artifacts folder."""
import json

import numpy as np
import pytest

from core import manifest, paths
from tests.conftest import TEST_EPOCHS
from training import data, train
from training.model_torch import load_checkpoint
from training.spec import load_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(trained_artifacts):
    return trained_artifacts, json.loads(paths.metrics_path(trained_artifacts).read_text())


def test_training_writes_every_artifact(trained):
    root, _ = trained
    for path in (paths.spec_path(root), paths.split_path(root), paths.torch_checkpoint_path(root),
                 paths.keras_model_path(root), paths.metrics_path(root)):
        assert path.exists() and path.stat().st_size > 0, path
    for framework in ("torch", "tensorflow"):
        assert any(paths.tensorboard_dir(framework, root).rglob("events.out.tfevents.*")), framework


def test_metrics_json_has_the_promised_shape(trained):
    root, _ = trained
    metrics = json.loads(paths.metrics_path(root).read_text())
    assert metrics["width"] == 1
    for framework in ("torch", "tensorflow"):
        entry = metrics[framework]
        assert set(entry) == {"test_accuracy", "params", "train_seconds", "epochs", "epoch_seconds"}
        assert entry["epochs"] == TEST_EPOCHS and entry["train_seconds"] > 0
        # Each epoch is rounded to 3 decimals, the total to 2: their sum may pass the total by the rounding alone.
        rounding = 0.005 + 0.0005 * TEST_EPOCHS
        assert len(entry["epoch_seconds"]) == TEST_EPOCHS
        assert 0 < sum(entry["epoch_seconds"]) <= entry["train_seconds"] + rounding
        assert entry["test_accuracy"] > 0.8  # a few epochs already learn a lot; 0.1 would be chance
    assert metrics["torch"]["params"] == metrics["tensorflow"]["params"] == 9802
    assert 0 <= metrics["twin_max_abs_diff"] <= 1e-5


def test_checkpoint_and_keras_model_reload_and_agree_with_metrics(trained):
    import keras
    import torch

    root, metrics = trained
    model, spec = load_checkpoint(paths.torch_checkpoint_path(root))
    assert spec == load_spec(paths.spec_path(root))
    test = data.load_split(paths.split_path(root))["test"]
    with torch.no_grad():
        torch_acc = float(np.mean(model(torch.from_numpy(test.x)).argmax(1).numpy() == test.y))
    assert torch_acc == pytest.approx(metrics["torch"]["test_accuracy"])
    keras_model = keras.models.load_model(paths.keras_model_path(root))
    keras_acc = float(np.mean(keras_model.predict(test.x, verbose=0).argmax(1) == test.y))
    assert keras_acc == pytest.approx(metrics["tensorflow"]["test_accuracy"])


def test_training_on_your_own_npz(tmp_path):
    digits = data.load_builtin()
    mine = tmp_path / "mine.npz"
    np.savez(mine, x=digits.x[:400], y=digits.y[:400])
    root = tmp_path / "out"
    metrics = train.main(["--epochs", "1", "--artifacts", str(root), "--data", str(mine), "--width", "2"])
    split = data.load_split(paths.split_path(root))
    assert sum(len(part) for part in split.values()) == 400
    assert metrics["torch"]["params"] == metrics["tensorflow"]["params"]
    spec = load_spec(paths.spec_path(root))
    assert spec.data["training"]["data_source"] == str(mine) and spec.model_name == "mine"
    assert (spec.value_min, spec.value_max) == (0.0, 255.0)  # float values within 0..16: the familiar 0..255 range


def test_bad_data_stops_training_with_the_reason(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.full((20, 8, 8), np.nan), y=np.zeros(20, int))
    with pytest.raises(SystemExit, match="NaN or infinite"):
        train.main(["--epochs", "1", "--artifacts", str(tmp_path / "out"), "--data", str(bad)])
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_manifest_lists_both_models_and_catches_tampering(trained_artifacts, tmp_path):
    import shutil

    entries = manifest.load(trained_artifacts)
    assert {"torch_checkpoint", "keras_model"} <= set(entries)
    assert entries["torch_checkpoint"]["framework"] == "torch" and entries["keras_model"]["framework"] == "tensorflow"
    assert manifest.verify("torch_checkpoint", trained_artifacts) == paths.torch_checkpoint_path(trained_artifacts)
    copy = tmp_path / "copy"
    # Not run/: the session's servers run over this folder, and their sockets cannot be copied.
    shutil.copytree(trained_artifacts, copy, ignore=shutil.ignore_patterns("run"))
    with paths.torch_checkpoint_path(copy).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(manifest.ManifestError, match="does not match the manifest"):
        manifest.verify("torch_checkpoint", copy)
    with pytest.raises(manifest.ManifestError, match="not in"):
        manifest.verify("no_such_artifact", copy)


def test_an_unknown_network_is_named_before_training(tmp_path):
    with pytest.raises(SystemExit, match="no network 'mynet' in training/model_torch.py and training/model_keras.py"):
        train.main(["--epochs", "1", "--artifacts", str(tmp_path / "out"), "--arch", "mynet"])
