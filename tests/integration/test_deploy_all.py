"""What `make deploy-all` adds on top of `make serve`: the demo page's server, the build-if-needed
step, the one-digit table through every target, and `make down`; against the session's servers."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from core import paths, registry
from deploy import smoke
from deploy.local import build, runner, servers

pytestmark = [pytest.mark.slow, pytest.mark.concerns("all")]


def page_answers(endpoints) -> bool:
    try:
        return 'id="prediction"' in requests.get(endpoints.url("web_demo") + "/", timeout=5).text  # the page itself
    except requests.ConnectionError:
        return False


def test_the_demo_page_is_served_on_the_spec_port_and_start_is_idempotent(served, capsys):
    assert page_answers(served.endpoints)
    assert served.startup_seconds["web"] > 0
    before = runner.read_pid(runner.run_dir("web", served.root)).pid
    runner.start(served.root, served.endpoints, timeout=30)
    assert runner.read_pid(runner.run_dir("web", served.root)).pid == before
    out = capsys.readouterr().out
    assert "web: already running" in out and f"{served.endpoints.url('web_demo')}/" in out


@pytest.fixture(scope="module")
def own_page(web_artifacts, tmp_path_factory):
    """The TF server and the page over a copy of the session's built page (the session's servers are
    read-only to tests): for the test that stops the page."""
    from tests.conftest import copy_trained, free_endpoints, serve_folder

    root = copy_trained(web_artifacts, tmp_path_factory.mktemp("own-page") / "artifacts", with_page=True)
    with serve_folder(root, free_endpoints(), only=("tfserving", "web")) as running:
        yield running


def test_stopping_the_demo_stops_only_it_and_start_brings_it_back(own_page, capsys):
    served = own_page
    assert page_answers(served.endpoints)
    assert runner.stop_one("web", served.root)
    assert not page_answers(served.endpoints) and runner.read_pid(runner.run_dir("web", served.root)) is None
    assert runner.read_pid(runner.run_dir("tfserving", served.root)) is not None  # the others keep running
    times = runner.start(served.root, served.endpoints, timeout=60, only=("tfserving", "web"))
    out = capsys.readouterr().out
    assert "web: started" in out and "tfserving: already running" in out
    assert times["web"] > 0 and page_answers(served.endpoints)


def test_the_demo_server_refuses_a_page_that_was_not_built(tmp_path):
    from serving.endpoints import resolve

    assert not servers.web_built(tmp_path)
    with pytest.raises(servers.PrepareError, match="'web_demo' is not in"):
        servers.web(tmp_path, resolve({})).prepare()


def test_make_down_stops_what_runs_and_says_when_nothing_does(tmp_path):
    env = {**os.environ, "DIGITS_ARTIFACTS": str(tmp_path)}
    answer = subprocess.run(["make", "--no-print-directory", "down"], cwd=paths.REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert f"nothing to stop: no server recorded under {tmp_path / 'run'}" in answer.stdout


def test_the_build_graph_reuses_everything_the_session_built(served, edge_artifacts):
    """The session's folder was built through the build graph: a second `make deploy-build` builds
    nothing. (What makes a step stale: tests/unit/test_build_graph.py.)"""
    results = build.ensure(served.root, dry_run=True)
    assert results == {name: "reused" for name in build.NAMES}


def test_the_build_graph_on_an_empty_folder_starts_with_training(tmp_path):
    results = build.ensure(tmp_path, dry_run=True)
    assert results == {name: "would build" for name in build.NAMES}


def test_deploy_build_passes_data_to_training_and_builds_again_when_it_changes(served, tmp_path):
    """`make deploy-all DATA=mine.npz`: the dataset reaches training as --data, and the graph would train again."""
    env = {**os.environ, "DIGITS_ARTIFACTS": str(served.root)}
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"placeholder: a dry run never reads it")
    answer = subprocess.run(["make", "--no-print-directory", "-n", "deploy-build", f"DATA={mine}"],
                            cwd=paths.REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert f'--train-args="--data \'{mine}\'"' in answer.stdout, answer.stdout
    results = build.ensure(served.root, dry_run=True, args=["--data", str(mine)])
    assert results == {name: "would build" for name in build.NAMES}  # dry run: nothing is touched


def test_one_digit_through_every_target(served, edge_artifacts, capsys, monkeypatch):
    for key, value in served.endpoints.as_environment().items():
        monkeypatch.setenv(key, value)
    smoke.main(["--artifacts", str(served.root), "--index", "3"])
    result = json.loads((served.root / "deploy-all.json").read_text())
    rows = {row["target"]: row for row in result["targets"]}
    assert list(rows) == list(registry.TARGETS) and result["index"] == 3
    assert not [row for row in rows.values() if "error" in row]
    # Every target reads this digit the same way (its true label, for a trained model).
    assert {row["label"] for row in rows.values()} == {result["true_label"]}
    assert all(row["latency_ms"] > 0 and 0 < row["probability"] <= 1 for row in rows.values())
    assert rows["tfserving-rest"]["where"] == (f"POST {served.endpoints.url('tfserving_rest')}"
                                               f"/v1/models/{served.endpoints.model_name}:predict")
    assert rows["tfjs-chromium"]["where"].startswith(f"Chromium: {served.endpoints.url('web_demo')}/")
    assert rows["tfjs-chromium"]["backend"] == "wasm"
    assert rows["kserve-tf-v2-rest"]["base"] == served.endpoints.url("kserve_tf_rest")
    assert rows["kserve-torch-v2-grpc"]["base"] == "grpc://" + served.endpoints.target("kserve_torch_grpc")
    assert "base" not in rows["onnx-fp32"]
    assert rows["onnx-fp32"]["where"] == str(served.root / "onnx" / f"{served.endpoints.model_name}_fp32.onnx")
    table = capsys.readouterr().out
    assert all(name in table for name in registry.TARGETS) and "latency ms" in table


def test_the_table_names_a_bad_index(served):
    with pytest.raises(SystemExit, match="--index must lie in 0..359"):
        smoke.main(["--artifacts", str(served.root), "--index", "100000"])


def test_a_server_that_does_not_answer_is_named_with_the_fix(served):
    from tests.conftest import free_endpoints

    nowhere = free_endpoints()  # nothing listens on these
    x, _ = smoke.sample(served.root, 0)
    for name in ("tfserving-grpc", "torchserve-rest"):
        row = smoke.ask(name, served.root, nowhere, x)
        assert "label" not in row and row["error"].endswith("(is it running? `make serve`)"), row
        assert "\n" not in row["error"]
