"""The process runner's failure paths, without starting real servers."""
from __future__ import annotations

import dataclasses
import os
import sys

import pytest

from core import servers as table
from deploy.local import runner, servers


def _server(tmp_path, code: str) -> servers.Server:
    return servers.Server(name="fake", describe="a fake server", command=[sys.executable, "-c", code], cwd=tmp_path,
                          marker="fake-server-marker", ready=lambda: False, prepare=lambda: None)


def test_a_server_that_dies_is_reported_with_its_log_tail(tmp_path):
    server = _server(tmp_path, "# fake-server-marker\n"
                               "print('cannot bind port 8500: address in use'); raise SystemExit(3)")
    recorded = runner.launch(server, tmp_path)
    with pytest.raises(runner.StartError, match="(?s)fake exited during start-up.*cannot bind port 8500"):
        runner.wait_ready(server, tmp_path, recorded, timeout=30)


def test_a_server_that_never_gets_ready_times_out_and_is_stopped(tmp_path):
    server = _server(tmp_path, "# fake-server-marker\nimport time; print('still loading', flush=True); time.sleep(60)")
    recorded = runner.launch(server, tmp_path)
    with pytest.raises(runner.StartError, match=f"(?s)not ready after 1 s; last lines of {tmp_path / 'server.log'}"):
        runner.wait_ready(server, tmp_path, recorded, timeout=1)
    assert runner.read_pid(tmp_path) == recorded  # recorded at once, whatever the child is doing yet
    run_dir = runner.run_dir("fake", tmp_path)
    run_dir.mkdir(parents=True)
    (tmp_path / "server.pid").rename(run_dir / "server.pid")
    assert runner.stop_one("fake", tmp_path)
    assert not runner._group_alive(recorded.pid)


def test_a_process_is_recognised_by_its_start_time_not_its_command_line(tmp_path):
    """The pid file names the process by pid and kernel start time: right after launch (even while
    the child is still inside exec, its command line empty) it is found; a pid whose start time
    differs (reused by another program) is not, and is never signalled."""
    server = _server(tmp_path, "import time; time.sleep(60)")  # the marker is not in its command line
    recorded = runner.launch(server, tmp_path)
    try:
        assert recorded.started and runner.read_pid(tmp_path) == recorded
        (tmp_path / "server.pid").write_text(f"{recorded.pid}\n{recorded.marker}\n{int(recorded.started) + 1}\n")
        assert runner.read_pid(tmp_path) is None and not (tmp_path / "server.pid").exists()
    finally:
        os.killpg(recorded.pid, 9)
        os.waitpid(recorded.pid, 0)


def test_a_half_written_pid_file_is_not_a_process(tmp_path):
    (tmp_path / "server.pid").write_text("")
    assert runner.read_pid(tmp_path) is None


def test_stop_never_signals_a_pid_whose_command_line_does_not_match(tmp_path):
    folder = runner.run_dir("torchserve", tmp_path)
    folder.mkdir(parents=True)
    (folder / "server.pid").write_text(f"{os.getpid()}\nsome-other-program --flag\n")  # this very test process
    assert runner.stop_one("torchserve", tmp_path) is False
    assert not (folder / "server.pid").exists()  # the stale record is dropped


def test_start_without_exports_fails_naming_the_missing_artifact(spec_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["start", "--artifacts", str(spec_folder), "--targets", "all"])
    assert exit_info.value.code == 1
    assert "'torchserve_mar' is not in" in capsys.readouterr().err


def test_a_port_taken_by_another_program_is_named_before_anything_starts(tmp_path):
    import socket

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        server = _server(tmp_path, "# fake-server-marker")
        server.ports = {"tfserving_rest": port}
        with pytest.raises(runner.StartError, match=f"fake: port {port} on 127.0.0.1 \\(tfserving_rest\\) is already "
                                                    "in use by another program.*DIGITS_TFSERVING_REST_PORT"):
            runner.check_ports_free(server, "127.0.0.1")
    runner.check_ports_free(server, "127.0.0.1")  # free again: no error


def test_a_page_that_fails_to_start_leaves_the_model_servers_running(spec_folder, monkeypatch, capsys):
    def fake(name, code, ready=lambda: True):
        return lambda root, endpoints, settings=None: servers.Server(
            name=name, describe=f"fake {name}", command=[sys.executable, "-c", code], cwd=spec_folder,
            marker="", ready=ready, prepare=lambda: None)

    # Every row of the table launches a stand-in: the model servers run, the page's server fails.
    launchers = {name: fake(name, "print('page: cannot read index.html'); raise SystemExit(1)", ready=lambda: False)
                 if row.optional else fake(name, "import time; time.sleep(120)")
                 for name, row in table.SERVERS.items()}
    monkeypatch.setattr(table, "SERVERS", {name: dataclasses.replace(row, launcher=launchers[name])
                                           for name, row in table.SERVERS.items()})
    monkeypatch.setattr(servers, "web_built", lambda root: True)
    try:
        with pytest.raises(runner.PageError, match="(?s)model servers keep running.*web exited during start-up"):
            runner.start(spec_folder, timeout=60)
        for name in table.model_servers():
            assert runner.read_pid(runner.run_dir(name, spec_folder)) is not None, name
        assert runner.read_pid(runner.run_dir("web", spec_folder)) is None
        assert "web: not served: web exited during start-up" in capsys.readouterr().out
    finally:
        runner.stop(spec_folder)
    assert all(runner.read_pid(runner.run_dir(name, spec_folder)) is None for name in table.SERVERS)


def test_a_page_built_only_halfway_is_not_served(tmp_path):
    from web.tfjs import export

    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<!doctype html>")  # the export stopped after this
    assert not servers.web_built(tmp_path) and not export.is_built(tmp_path)


def test_a_server_whose_model_changed_is_restarted_not_waited_on(spec_folder, monkeypatch, capsys):
    """`make deploy-all DATA=...` beside running servers: a server started over the old spec is stopped and
    started over the new one (it once said "already running", then polled 180 s for a model never loaded)."""
    from core import manifest
    from training.spec import ModelConfig, derive_spec, write_spec

    (spec_folder / "model.bin").write_text("the first model")
    manifest.record("torchserve_mar", spec_folder / "model.bin", framework="torch", precision="fp32", root=spec_folder)
    ready = {"name": "digits"}

    def fake(root, endpoints, settings=None):  # "ready" only for the model the spec names now
        return servers.Server(name="torchserve", describe="fake", command=[sys.executable, "-c", "import time; "
                              "time.sleep(120)"], cwd=spec_folder, marker="", prepare=lambda: None,
                              ready=lambda: ready["name"] == endpoints.model_name, serves=("torchserve_mar",))
    monkeypatch.setattr(runner.servers, "torchserve", fake)
    try:
        runner.start(spec_folder, timeout=60, only=("torchserve",))
        first = runner.read_pid(runner.run_dir("torchserve", spec_folder))
        runner.start(spec_folder, timeout=60, only=("torchserve",))  # nothing changed: kept
        assert runner.read_pid(runner.run_dir("torchserve", spec_folder)) == first
        assert "torchserve: already running" in capsys.readouterr().out
        write_spec(derive_spec(ModelConfig(), item_shape=(12, 16, 3), labels=["a", "b"], value_range=(0, 255),
                               model_name="bars", reduction={"kind": "resize"}, seed=0, data_source="bars.npz"),
                   spec_folder / "spec.json")
        ready["name"] = "bars"  # what a server started now would load
        runner.start(spec_folder, timeout=60, only=("torchserve",))
        out = capsys.readouterr().out
        assert f"torchserve: running (pid {first.pid}) but spec.json changed since it started: restarting" in out
        now = runner.read_pid(runner.run_dir("torchserve", spec_folder))
        assert now is not None and now.pid != first.pid and not runner._group_alive(first.pid)
        (spec_folder / "model.bin").write_text("a model exported again")
        manifest.record("torchserve_mar", spec_folder / "model.bin", framework="torch", precision="fp32",
                        root=spec_folder)
        runner.start(spec_folder, timeout=60, only=("torchserve",))
        assert "but torchserve_mar changed since it started: restarting" in capsys.readouterr().out
    finally:
        runner.stop(spec_folder)
