"""make check-network's table (deploy/check_network.py) from a build and a parity check made up here:
each target exports / runs / matches, or says why not, and only a real failure fails the command."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from core import registry
from deploy import check_network, parity
from deploy.local import build


def test_every_target_gets_a_row_saying_why_not(monkeypatch, tmp_path):
    said = {step.name: "built" for step in build.STEPS}
    said["export-executorch-xnnpack"] = ("not supported by this network: mean (ExecuTorch XNNPACK); "
                                         "use onnx-fp32 instead")
    said["export-onnx"] = "failed: RuntimeError: the exporter broke"
    said["export-web"] = "skipped: export-onnx failed"
    monkeypatch.setattr(build, "ensure", lambda root, **kwargs: said)
    monkeypatch.setattr(parity, "test_split", lambda root: SimpleNamespace(x=np.zeros((2, 8, 8)), y=np.zeros(2)))
    monkeypatch.setattr(parity, "references", lambda root, x: {})
    seen = []

    def evaluate(name, root, endpoints, split, expected, offline=False):
        seen.append((name, offline))
        if name == "tflite-int8":
            return {"passed": False, "problems": ["accuracy 0.80 is 5 points below the reference"], "accuracy": 0.8}
        if name == "torchserve-grpc":
            raise ValueError("archive has no TorchScript")
        return {"passed": True, "problems": [], "accuracy": 1.0}
    monkeypatch.setattr(parity, "evaluate", evaluate)
    rows = {row["target"]: row for row in check_network.check(tmp_path, ["--arch", "cnn"], progress=lambda line: None)}
    assert list(rows) == list(registry.TARGETS) and all(offline for _, offline in seen)
    assert rows["executorch-xnnpack-fp32"]["status"] == "not supported"
    assert not rows["executorch-xnnpack-fp32"]["exports"]
    assert rows["onnx-fp32"]["status"] == "failed" and "the exporter broke" in rows["onnx-fp32"]["why"]
    assert rows["tfjs-chromium"]["status"] == "failed" and "skipped" in rows["tfjs-chromium"]["why"]
    assert rows["tflite-int8"] == {**rows["tflite-int8"], "runs": True, "matches": False, "status": "failed"}
    assert rows["torchserve-grpc"]["runs"] is False and "archive has no TorchScript" in rows["torchserve-grpc"]["why"]
    assert rows["torch-eager"]["status"] == "ok" and rows["executorch-portable-fp32"]["status"] == "ok"
    text = check_network.table(list(rows.values()))
    assert "not supported" in text.splitlines()[-1] and "mean (ExecuTorch XNNPACK)" in text
