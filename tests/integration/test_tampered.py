"""Secure defaults around artifacts: a modified file is refused with a clear message before any
server starts on it, a rollback refuses to fall back onto a modified version, and checkpoints load
with weights_only=True so a pickle carrying code is refused. (Edge runners: test_edge_runners.py;
the TF.js page: tests/browser/test_web_export.py; the compatible server's own check of each new
version: test_tfserving.py.)
"""
from __future__ import annotations

import pickle

import pytest

from tests.conftest import built, copy_trained

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]


@pytest.fixture(scope="module")
def exported(trained_artifacts, tmp_path_factory):
    """A private artifacts folder with both servers' artifacts built (servers not started)."""
    root = copy_trained(trained_artifacts, tmp_path_factory.mktemp("tampered") / "artifacts")
    return built(root, "export-torchserve", "export-tfserving")


def _flip_last_byte(path) -> bytes:
    """Change one byte of a file; returns its original content, to put back."""
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    return original


@pytest.mark.parametrize("server, artifact, message", [
    ("torchserve", "torchserve_mar", "torchserve_mar: .* does not match the manifest"),
    ("tfserving", "tfserving_v1", "tfserving_v1: .* does not match the manifest"),
], ids=["torchserve archive", "tfserving version"])
def test_a_server_refuses_to_start_on_a_modified_artifact(server, artifact, message, exported):
    from core import manifest
    from deploy.local import servers
    from serving import endpoints

    artifact = manifest.load(exported)[artifact]["path"] + ("/saved_model.pb" if server == "tfserving" else "")

    plan = getattr(servers, server)(exported, endpoints.resolve({}))
    original = _flip_last_byte(exported / artifact)
    try:
        with pytest.raises(servers.PrepareError, match=message + r".*refusing to load a modified artifact"):
            plan.prepare()  # what the runner does before it launches anything
    finally:
        (exported / artifact).write_bytes(original)
    plan.prepare()  # the restored file passes again


def test_rollback_refuses_a_modified_previous_version(exported):
    import shutil

    from core import manifest
    from deploy.local import update
    from serving.tfserving import configs, export

    newest = export.export(exported)  # version 2, so there is a version to roll back to
    first = configs.base_path(exported) / "1" / "saved_model.pb"
    original = _flip_last_byte(first)
    try:
        with pytest.raises(manifest.ManifestError, match="tfserving_v1: .* does not match the manifest"):
            update.tfserving_rollback(exported)
        assert newest.exists()  # nothing was moved: version 2 stays in place
    finally:
        first.write_bytes(original)
        shutil.rmtree(newest)
    assert configs.versions(configs.base_path(exported)) == [1]


def test_checkpoints_load_weights_only(exported, tmp_path):
    import torch

    from training.model_torch import load_checkpoint

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "config": {}, "spec": {}, "payload": _Payload()}, evil)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(evil)


class _Payload:
    """An object a plain pickle would rebuild by running code; weights_only refuses it."""

    def __reduce__(self):
        return (print, ("this must never run",))
