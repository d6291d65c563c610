"""The Docker launcher's control flow, against an in-memory stand-in for the Docker SDK client.

No engine runs here, so this checks only the launcher's own decisions: what it asks the SDK to
run, that it builds the images no registry has (digits-kserve:local, digits-rayserve:local) and pulls the others,
that a second `up` reuses running containers and replaces stopped ones, that it waits for
Docker's health status and reports an unhealthy container with its log, where it puts
TorchServe's key file, and that `down` removes by label. The containers themselves are not run.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import servers as table
from core import spec as specs
from deploy.containers import artifacts, fleet, launch, plan, preflight
from tests.deploy.conftest import OTHER_MODEL


class FakeContainer:
    def __init__(self, options: dict, health_sequence: list[str]):
        self.options = options
        self.name = options["name"]
        self.short_id = self.name[-6:]
        self.status = "running"
        self.image = type("Image", (), {"tags": [options["image"]]})()
        self.health = list(health_sequence)
        self.attrs = {}
        self.removed = False
        self.reload()

    def reload(self):
        status = self.health.pop(0) if len(self.health) > 1 else self.health[0]
        self.attrs = {"State": {"Status": self.status, "Health": {"Status": status}}}

    def logs(self, tail):
        return b"worker died: out of memory\n"

    def remove(self, force):
        self.removed = True

    def exec_run(self, command, user):
        key = {"inference": {"key": "abc"}, "management": {"key": "def"}, "API": {"key": "ghi"}}
        return type("Result", (), {"exit_code": 0, "output": json.dumps(key).encode()})()


class FakeClient:
    def __init__(self, health_sequence=("starting", "healthy")):
        self.health_sequence = list(health_sequence)
        self.by_name, self.pulled, self.built, self.runs = {}, [], [], []
        client = self

        class Containers:
            def get(self, name):
                import docker

                if name not in client.by_name or client.by_name[name].removed:
                    raise docker.errors.NotFound(name)
                return client.by_name[name]

            def run(self, **options):
                client.runs.append(options)
                container = FakeContainer(options, client.health_sequence)
                client.by_name[options["name"]] = container
                return container

            def list(self, all, filters):
                assert filters == {"label": plan.LABEL}
                return [c for c in client.by_name.values() if not c.removed]

        class Images:
            def get(self, image):
                import docker

                if image not in client.pulled + client.built:
                    raise docker.errors.ImageNotFound(image)

            def pull(self, repository, tag):
                client.pulled.append(f"{repository}:{tag}")

            def build(self, path, dockerfile, tag, rm):
                assert (Path(path) / dockerfile).is_file()
                client.built.append(tag)

        self.containers, self.images = Containers(), Images()


@pytest.fixture
def fake_client(monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(preflight, "require", lambda *args, **kwargs: None)
    monkeypatch.setattr(preflight, "docker_client", lambda: client)
    monkeypatch.setattr(artifacts, "ensure", lambda root: [*MODEL_SERVERS])
    monkeypatch.setattr(launch.time, "sleep", lambda seconds: None)
    for name in launch.endpoints_mod.resolve({}).as_environment():  # the spec's own ports
        monkeypatch.delenv(name, raising=False)
    return client


MODEL_SERVERS = tuple(table.model_servers())  # every model server of core/servers.py: each has a container


def trained(root: Path) -> Path:
    """`root` with stand-ins for what the KServe image bakes in (images.py stages them)."""
    for name in ("manifest.json", "torch/model.pt", "tensorflow/model.keras"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")
    return root


@pytest.fixture
def fake(fake_client, any_root):
    """The stand-in engine, and an artifacts folder of the built-in task, then of a model of one's own."""
    return fake_client, trained(any_root)


def test_up_runs_the_plan_then_reuses_it(fake, capsys):
    client, root = fake
    times = launch.up(root, timeout=10)
    assert set(times) == set(MODEL_SERVERS)  # no demo built: left out
    images = set(map(plan.image_name, MODEL_SERVERS))
    assert sorted(client.pulled) == sorted(ref for image, ref in plan.official_images().items() if image in images)
    # Each image no registry has, once (digits-kserve:local once for both KServe services).
    assert client.built == [plan.baked_image(image) for image in plan.build_only_images() if image in images]
    assert len(client.built) == len(set(client.built)) >= 1
    expected = {s.name: launch.run_options(s, launch.endpoints_mod.resolve({})) for s in fleet.services(root)}
    assert client.runs == [expected[name] for name in MODEL_SERVERS]
    key_file = root / "run" / "torchserve" / "key_file.json"
    assert json.loads(key_file.read_text())["inference"]["key"] == "abc"
    assert key_file.stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    model = specs.load(root).model_name
    assert f"http://127.0.0.1:8080/predictions/{model}" in out and str(key_file) in out
    assert f"http://127.0.0.1:8501/v1/models/{model}:predict" in out

    launch.up(root, timeout=10)  # again: all already run their image, nothing new is started
    assert len(client.runs) == len(MODEL_SERVERS)
    assert "torchserve: already running" in capsys.readouterr().out


def test_a_stopped_container_is_replaced(fake):
    client, root = fake
    launch.up(root, timeout=10)
    old = client.by_name["digits-tfserving"]
    old.status = "exited"
    launch.up(root, timeout=10)
    assert old.removed and client.by_name["digits-tfserving"] is not old
    assert len(client.runs) == len(MODEL_SERVERS) + 1


def test_an_unhealthy_container_is_reported_with_its_log(fake):
    client, root = fake
    client.health_sequence = ["starting", "unhealthy"]
    with pytest.raises(launch.LaunchError, match="digits-torchserve is not healthy(.|\n)*out of memory"):
        launch.up(root, timeout=10)


def test_down_removes_the_labelled_containers(fake):
    client, root = fake
    launch.up(root, timeout=10)
    assert sorted(launch.down()) == sorted(f"digits-{name}" for name in MODEL_SERVERS)
    assert launch.down() == []


def test_an_own_model_runs_with_its_rendered_configs(fake_client, bars_root):
    client, root = fake_client, trained(bars_root)
    launch.up(root, timeout=10)
    runs = {options["name"]: options for options in client.runs}
    torchserve, tfserving = runs["digits-torchserve"], runs["digits-tfserving"]  # the project's container names
    assert torchserve["healthcheck"]["test"][4] == OTHER_MODEL
    assert f"/v1/models/{OTHER_MODEL} " in tfserving["healthcheck"]["test"][-1]
    rendered = root / "run" / "containers" / "config"
    config = {m["Target"]: m["Source"] for m in torchserve["mounts"]}[plan.TS_CONFIG]
    models = {m["Target"]: m["Source"] for m in tfserving["mounts"]}["/config/models.config"]
    # up rendered the model's configs before starting anything, and the containers mount those.
    assert (config, models) == (str(rendered / "torchserve.properties"), str(rendered / "models.config"))
    assert f"load_models={OTHER_MODEL}.mar" in Path(config).read_text()
    assert f'name: "{OTHER_MODEL}"' in Path(models).read_text()
    assert {m["Target"]: m["Source"] for m in tfserving["mounts"]}[f"/models/{OTHER_MODEL}"] == \
        str(root / "tfserving" / OTHER_MODEL)
    kserve = {m["Target"]: m["Source"] for m in runs["digits-kserve-tf"]["mounts"]}  # the folder's own model
    assert kserve == {f"/artifacts/{name}": str(root / name) for name in ("spec.json", "manifest.json",
                                                                          "tensorflow/model.keras")}
