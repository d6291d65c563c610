"""The table of servers (core/servers.py): what every row must provide, each check saying what to change, and
that a new row alone is enough for the local runner, the container plan and the updater to know its server."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from core import environments, paths
from core import servers as table
from core.registry import named
from deploy.local import update

ROWS = list(table.SERVERS)
LIMIT_KEYS = {"cpus", "memory", "reserve", "cpu_request"}


# ---- what every row provides ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ROWS)
def test_a_row_names_its_folder_environment_and_launcher(name):
    row = table.SERVERS[name]
    assert (paths.REPO_ROOT / row.folder).is_dir(), f"{name}: folder {row.folder!r} does not exist: create it"
    assert row.env in environments.ENVIRONMENTS, (
        f"{name}: env {row.env!r} is no environment of core/environments.py; "
        f"known: {', '.join(environments.ENVIRONMENTS)}")
    for need in row.needs:
        assert environments.known(need), f"{name}: need {need!r} is no environment or system program " \
                                         "of core/environments.py: add it there or drop it"
    assert callable(named(row.launcher)), f"{name}: launcher {row.launcher!r} is not a \"module:function\" that exists"
    assert row.start_timeout > 0, f"{name}: start_timeout must be a positive number of seconds"


@pytest.mark.parametrize("name", ROWS)
def test_a_row_s_ports_are_its_own(name):
    """Each port key starts with the server's name (its DIGITS_<KEY>_PORT says whose it is) and no two rows
    share a key or a default port."""
    row = table.SERVERS[name]
    assert row.ports, f"{name}: give it at least one port, {{'<name>_<what>': <default port>}}"
    prefix = name.replace("-", "_") + "_"
    for key, port in row.ports.items():
        assert key.startswith(prefix), f"{name}: port key {key!r} must start with {prefix!r}"
        assert isinstance(port, int) and 0 < port < 65536, f"{name}: port {key} = {port!r} is not a port number"
    others = {key: port for other, each in table.SERVERS.items() if other != name for key, port in each.ports.items()}
    assert not set(row.ports) & set(others), f"{name}: port keys {sorted(set(row.ports) & set(others))} are taken"
    taken = set(row.ports.values()) & set(others.values())
    assert not taken, f"{name}: default ports {sorted(taken)} are another row's: pick free ones"


@pytest.mark.parametrize("name", ROWS)
def test_a_model_server_says_what_it_serves_and_how_it_updates(name):
    row = table.SERVERS[name]
    if row.optional:  # the page: it serves no target and takes no model version
        assert row.updater is None and row.grid is None, \
            f"{name}: an optional row (the page) is neither updated nor searched"
        return
    assert row.framework in ("torch", "tensorflow"), (
        f"{name}: framework {row.framework!r}: say which framework's model it serves (\"torch\" or \"tensorflow\")")
    assert row.updater, (f"{name}: name its updater (\"module:name\" of a deploy.local.update.Updater: how a running "
                         "server takes a new model version and goes back), or share another row's")
    updater = named(row.updater)
    for function in ("publish", "rollback", "status"):
        assert callable(getattr(updater, function, None)), f"{name}: its updater {row.updater} has no {function}()"
    assert updater.name, f"{name}: its updater needs a name (`python -m deploy.local.update --server <name>`)"


@pytest.mark.parametrize("name", ROWS)
def test_a_row_s_settings_and_grid_are_its_own(name):
    from benchmarks import grid
    from deploy.local import settings

    row = table.SERVERS[name]
    known = {field.name for field in dataclasses.fields(settings.ServerSettings)} - {"name"}
    unknown = set(row.settings) - known
    assert not unknown, (f"{name}: settings {sorted(unknown)} are no fields of deploy/local/settings.py "
                         "ServerSettings: add them there (with a comment saying what they change)")
    if row.grid:
        found = named(row.grid)
        assert isinstance(found, grid.Grid), f"{name}: grid {row.grid!r} is not a benchmarks.grid.Grid"
        for knob, (field, _) in found.knobs.items():
            assert field in row.settings, f"{name}: knob {knob!r} sets {field!r}, not among the row's `settings`"


@pytest.mark.parametrize("name", [name for name, row in table.SERVERS.items() if row.container is not None])
def test_a_row_s_container_is_complete(name):
    container = table.SERVERS[name].container
    assert callable(named(container.service)), (
        f"{name}: container service {container.service!r} is not a \"module:function\" that exists: write "
        "(row, plan.Artifacts) -> plan.Service in deploy/containers/plan.py")
    uid, _, gid = container.user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0, f"{name}: user {container.user!r}: give a uid:gid, not 0"
    assert set(container.limits) == LIMIT_KEYS, f"{name}: limits must give exactly {sorted(LIMIT_KEYS)}"
    assert ":" in container.image, f"{name}: image {container.image!r}: name a tag (and a digest where the tag moves)"
    assert container.k8s, f"{name}: say which Kubernetes objects run it (Container.k8s)"


def test_the_spec_s_ports_are_the_rows():
    from core import spec

    assert spec.SERVING_PORTS == table.ports()


# ---- a new row is enough ---------------------------------------------------------------------------

UPDATED: list = []  # what the stand-in updater was asked to do


def echo_launcher(root: Path, endpoints, settings=None):
    """A stand-in server: a Python process that sleeps; ready as soon as it runs."""
    from deploy.local import servers

    return servers.Server(name="echo", describe="a stand-in server", cwd=root, marker="echo-stand-in",
                          command=[sys.executable, "-c", "# echo-stand-in\nimport time; time.sleep(120)"],
                          ready=lambda: True, prepare=lambda: None,
                          ports={"echo_rest": endpoints.ports["echo_rest"]})


def echo_service(row, over):
    """Its container: the official python image, its port, no mounts."""
    from deploy.containers import plan

    return plan.Service(name=row.name, image=row.container.image, ports=dict(row.ports), mounts=(),
                        entrypoint=["python", "-m", "http.server"], command=[str(row.ports["echo_rest"])],
                        health=["CMD", "python", "-c", "pass"], user=plan.user(row.name))


ECHO_UPDATER = update.Updater("echo", publish=lambda root, endpoints: UPDATED.append(("publish", root)),
                              rollback=lambda root, endpoints: UPDATED.append(("rollback", root)),
                              status=lambda root, endpoints: {"versions": [1]})
ECHO_ROW = table.ServerRow(
    "echo", "tests/unit", f"{__name__}:echo_launcher", ports={"echo_rest": 8199}, start_timeout=30,
    framework="torch", updater=f"{__name__}:ECHO_UPDATER",
    container=table.Container(f"{__name__}:echo_service", "python:3.11-slim", "4242:4242",
                              {"cpus": "1", "memory": "64M", "reserve": "16M", "cpu_request": "100m"}))


@pytest.fixture
def with_echo(monkeypatch):
    """The table with one more row, added the way a new server is: nothing else is edited."""
    monkeypatch.setattr(table, "SERVERS", {**table.SERVERS, "echo": ECHO_ROW})
    UPDATED.clear()
    return ECHO_ROW


def test_a_new_row_is_started_and_stopped_by_the_runner(with_echo, spec_folder, capsys):
    from deploy.local import runner
    from serving import endpoints as endpoints_mod

    endpoints = endpoints_mod.free_endpoints()
    assert "echo_rest" in endpoints.ports  # its port, from its row (DIGITS_ECHO_REST_PORT moves it)
    assert endpoints_mod.resolve({"DIGITS_ECHO_REST_PORT": "9199"}).ports["echo_rest"] == 9199
    try:
        times = runner.start(spec_folder, endpoints, only=("echo",))
        assert set(times) == {"echo"}
        assert runner.read_pid(runner.run_dir("echo", spec_folder)) is not None
        runner.status(spec_folder)
        assert "echo: running" in capsys.readouterr().out
    finally:
        runner.stop(spec_folder)  # every row's server, the new one included
    assert runner.read_pid(runner.run_dir("echo", spec_folder)) is None


def test_a_new_row_is_in_the_container_plan(with_echo, spec_folder):
    from deploy.containers import fleet, k8s, launch, plan
    from serving import endpoints as endpoints_mod

    (service,) = [s for s in fleet.services(spec_folder) if s.name == "echo"]
    assert service.image == "python:3.11-slim" and service.user == "4242:4242"
    assert plan.official_images()["echo"] == "python:3.11-slim"  # pulled, as the other official images
    options = launch.run_options(service, endpoints_mod.resolve({}))
    assert options["name"] == "digits-echo" and options["mem_limit"] == "64M"
    assert options["ports"] == {"8199/tcp": ("127.0.0.1", 8199)}
    assert "echo" in k8s.deployments()  # its Deployment, from its row's Kubernetes objects
    assert table.manifests("echo") == {"k8s/echo.yaml": ("Deployment", "Service"),
                                       "k8s/hpa.yaml": ("HorizontalPodAutoscaler",)}


def test_a_new_row_is_updated_with_the_others(with_echo, tmp_path, monkeypatch):
    assert "echo" in update.updaters()
    update.main(["publish", "--server", "echo", "--artifacts", str(tmp_path)])
    update.main(["rollback", "--server", "echo", "--artifacts", str(tmp_path)])
    assert UPDATED == [("publish", tmp_path.resolve()), ("rollback", tmp_path.resolve())]
    # `publish` with no --server runs every updater of the table once, in its order: the new one last.
    ran = []

    def recording(text):  # each updater a row names, publishing only its name
        found = named(text)
        return dataclasses.replace(found, publish=lambda root, endpoints: ran.append(found.name))

    monkeypatch.setattr(update, "named", recording)
    update.main(["publish", "--artifacts", str(tmp_path)])
    assert ran == list(update.updaters()) and ran[-1] == "echo" and len(ran) == len(set(ran))
