"""`make deploy-all` locally (deploy/local/up.py): the servers start once what they serve is built, while the
other steps build, and only the pick's steps and servers are touched."""
from __future__ import annotations

import subprocess

from core import selection
from deploy.local import build, runner, servers, up


class Recorder:
    def __init__(self):
        self.calls = []


def fake_world(monkeypatch, tmp_path, runner_exit: int = 0):
    seen = Recorder()

    def ensure(root, only=None, **kwargs):
        seen.calls.append(("build", tuple(only)))
        return {name: "built" for name in only}

    class Starting:
        def __init__(self, command, **kwargs):
            seen.calls.append(("runner", tuple(command[command.index("--servers") + 1:])))

        def wait(self):
            seen.calls.append(("wait",))
            return runner_exit

    monkeypatch.setattr(build, "ensure", ensure)
    monkeypatch.setattr(build, "write_summary", lambda root, results: None)
    monkeypatch.setattr(subprocess, "Popen", Starting)
    monkeypatch.setattr(servers, "web_built", lambda root: True)
    monkeypatch.setattr(runner, "start", lambda root, **kwargs: seen.calls.append(("start", kwargs["only"])))
    return seen


def test_servers_start_after_their_own_steps_while_the_rest_builds(monkeypatch, tmp_path):
    seen = fake_world(monkeypatch, tmp_path)
    names = selection.resolve("torchserve-rest onnx-fp32 tfjs-chromium")
    assert up.up(tmp_path, names) == 0
    assert seen.calls[0] == ("build", ("train", "export-torchserve"))  # what TorchServe serves, first
    assert seen.calls[1] == ("runner", ("torchserve",))  # then it starts, in a process of its own
    kind, steps = seen.calls[2]
    assert kind == "build" and {"export-onnx", "export-web"} <= set(steps)  # the rest builds meanwhile
    assert seen.calls[3:] == [("wait",), ("start", ("torchserve", "web"))]  # then the page's server


def test_a_pick_without_servers_starts_none_and_one_whose_server_failed_stops(monkeypatch, tmp_path):
    seen = fake_world(monkeypatch, tmp_path)
    assert up.up(tmp_path, selection.resolve("onnx-fp32 tflite-fp32")) == 0
    assert [call[0] for call in seen.calls] == ["build", "start"] and seen.calls[-1] == ("start", ())
    failed = fake_world(monkeypatch, tmp_path, runner_exit=1)
    assert up.up(tmp_path, selection.resolve("kserve-tf-v2-rest")) == 1
    assert failed.calls[-1] == ("wait",)  # a model server that did not come up: no page, no table
