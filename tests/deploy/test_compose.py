"""deploy/docker-compose.yml: valid Compose, and the same plan the Docker launcher runs (from the spec),
for the built-in task (the file's defaults) and for a model of one's own (compose.py's variables)."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from core import environments
from core import servers as table
from core import spec as specs
from core.spec import SERVING_HOST, SERVING_PORTS
from deploy.containers import compose as compose_mod
from deploy.containers import configs, fleet, launch, plan
from serving import endpoints as endpoints_mod
from tests.deploy.conftest import OTHER_MODEL, bind_source, parse_port

SCHEMA = Path(__file__).with_name("schemas") / "compose_spec.json"
RAY_START_TIMEOUT = 240  # serving/rayserve/cluster.py --start-timeout's default
OVERRIDES = {"DIGITS_SERVING_HOST": "0.0.0.0", "DIGITS_TFSERVING_REST_PORT": "9501",
             "DIGITS_TORCHSERVE_INFERENCE_PORT": "9080", "DIGITS_WEB_DEMO_PORT": "9000"}


def validator():
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft201909Validator(schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)


def test_compose_file_matches_the_compose_schema(compose_raw, compose_for):
    validator().validate(compose_raw)
    validator().validate(compose_for({}))  # and once interpolated


def test_schema_check_can_fail(compose_raw):
    broken = json.loads(json.dumps(compose_raw))
    broken["services"]["torchserve"]["helthcheck"] = broken["services"]["torchserve"].pop("healthcheck")
    errors = [e.message for e in validator().iter_errors(broken)]
    assert any("helthcheck" in message for message in errors), errors


def test_services_are_the_plan(compose_raw, digits_root):
    planned = {s.name for s in fleet.services(digits_root)}
    missing, extra = planned - set(compose_raw["services"]), set(compose_raw["services"]) - planned
    assert not missing, (f"deploy/docker-compose.yml has no service {', '.join(sorted(missing))}: add one per row of "
                         "core/servers.py with a container, saying what `python -m deploy.containers.fleet` plans for "
                         "it (image, user, entrypoint, command, ports, mounts, health check, limits)")
    assert not extra, f"deploy/docker-compose.yml runs {', '.join(sorted(extra))}: no row of core/servers.py plans it"


@pytest.mark.parametrize("environ", [{}, OVERRIDES], ids=["spec defaults", "DIGITS_* overrides"])
def test_published_ports_agree_with_the_launcher(compose_for, environ, digits_root):
    compose = compose_for(environ)
    endpoints = endpoints_mod.resolve(environ)
    for service in fleet.services(digits_root):
        published = {parse_port(p) for p in compose["services"][service.name]["ports"]}
        options = launch.run_options(service, endpoints)["ports"]
        expected = {(ip, port, int(key.split("/")[0])) for key, (ip, port) in options.items()}
        assert published == expected, service.name


def test_defaults_bind_the_spec_ports_to_loopback_only(compose_for):
    published = {}
    for service in compose_for({})["services"].values():
        for text in service["ports"]:
            host_ip, host_port, container_port = parse_port(text)
            assert host_ip == SERVING_HOST == "127.0.0.1"
            assert host_port == container_port, "inside and outside use the same spec port"
            published[container_port] = host_ip
    # Every port of every row, but TorchServe's management and metrics ports.
    expected = {SERVING_PORTS[name] for name in SERVING_PORTS} - {
        SERVING_PORTS[name] for name in ("torchserve_management", "torchserve_grpc_management", "torchserve_metrics")}
    assert set(published) == expected
    # TorchServe's management APIs (REST and gRPC) and its metrics (no authentication) are never published.
    assert SERVING_PORTS["torchserve_management"] not in published
    assert SERVING_PORTS["torchserve_grpc_management"] not in published
    assert SERVING_PORTS["torchserve_metrics"] not in published


def compose_environment(root) -> dict:
    """What compose.py hands `docker compose` for artifacts folder `root` (ports left at the spec's)."""
    return compose_mod.variables(root)


def test_mounts_agree_with_the_launcher_and_are_read_only(compose_for, any_root):
    root = any_root
    compose = compose_for(compose_environment(root))
    for service in fleet.services(root):
        volumes = compose["services"][service.name]["volumes"]
        assert all(v["type"] == "bind" and v["read_only"] is True for v in volumes), service.name
        in_compose = {(str(bind_source(v["source"])), v["target"]) for v in volumes}
        mounts = launch.run_options(service, endpoints_mod.resolve({}))["mounts"]
        assert all(m["ReadOnly"] and m["Type"] == "bind" for m in mounts)
        assert in_compose == {(m["Source"], m["Target"]) for m in mounts}, service.name


def test_default_artifacts_folder_and_model_are_the_built_in_ones(compose_for, digits_root):
    compose = compose_for({})
    source = compose["services"]["tfserving"]["volumes"][0]["source"]
    assert bind_source(source) == plan.REPO / "artifacts" / "tfserving" / configs.BUILTIN_MODEL
    # The file's defaults are what compose.py sets for the built-in task: the committed configs.
    variables = compose_environment(digits_root)
    assert variables["DIGITS_MODEL_NAME"] == configs.BUILTIN_MODEL
    assert Path(variables["DIGITS_CONTAINER_CONFIG"]) == plan.CONFIG_DIR


def test_commands_health_checks_and_limits_agree_with_the_launcher(compose_for, any_root):
    compose = compose_for(compose_environment(any_root))
    for service in fleet.services(any_root):
        entry = compose["services"][service.name]
        options = launch.run_options(service, endpoints_mod.resolve({}))
        assert entry["image"] == options["image"]
        assert entry.get("entrypoint") == options["entrypoint"]
        assert entry["command"] == options["command"]
        assert entry["user"] == options["user"]
        assert entry.get("working_dir") == options["working_dir"]
        assert entry.get("environment", {}) == options["environment"]
        assert entry["healthcheck"]["test"] == options["healthcheck"]["test"]
        assert options["healthcheck"]["start_period"] == service.health_timing["start_period"] * 1e9
        for key, seconds in service.health_timing.items():
            value = entry["healthcheck"][key]
            assert value == (seconds if key == "retries" else f"{seconds}s"), (service.name, key)
        limits = plan.limits(service.name)
        resources = entry["deploy"]["resources"]
        assert resources["limits"] == {"cpus": limits["cpus"], "memory": limits["memory"]}
        assert resources["reservations"] == {"memory": limits["reserve"]}
        assert options["mem_limit"] == limits["memory"]
        assert options["nano_cpus"] == int(float(limits["cpus"]) * 1e9)
        assert {t.split(":", 1)[0]: t.split(":", 1)[1] for t in entry["tmpfs"]} == options["tmpfs"]
        assert entry.get("shm_size") == options["shm_size"] == service.shm_size, service.name


def test_every_container_is_locked_down(compose_for):
    for name, entry in compose_for({})["services"].items():
        uid = entry["user"].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{name} runs as root"
        assert entry["read_only"] is True, name
        assert entry["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in entry["security_opt"], name
        assert [t.split(":")[0] for t in entry["tmpfs"]] == ["/tmp"], name


def test_health_checks_name_the_spec_model_and_ports(compose_for, any_root):
    model = specs.load(any_root).model_name
    services = compose_for(compose_environment(any_root))["services"]
    torchserve = services["torchserve"]["healthcheck"]["test"]
    assert f"http://127.0.0.1:{SERVING_PORTS['torchserve_management']}" in torchserve and model in torchserve
    tfserving = services["tfserving"]["healthcheck"]["test"][-1]
    assert f"/dev/tcp/127.0.0.1/{SERVING_PORTS['tfserving_rest']}" in tfserving
    assert f"/v1/models/{model} " in tfserving
    assert services["web"]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{SERVING_PORTS['web_demo']}/"
    # The V2 servers of our own images (KServe's and Ray Serve's) ask V2 readiness on their REST port.
    for name in build_only_services():
        rest = table.SERVERS[name].port("rest")
        assert f"'http://127.0.0.1:{SERVING_PORTS[rest]}/v2/health/ready'" in services[name]["healthcheck"]["test"][-1]


def build_only_services() -> list[str]:
    """The services whose image no registry has (rows marked `built_only`): KServe's and Ray Serve's."""
    return [name for name, row in plan.rows().items() if row.container.built_only]


def test_build_only_services_build_their_image(compose_raw, any_root):
    """No registry has digits-kserve:local or digits-rayserve:local: both KServe services build the first from
    kserve.Dockerfile, Ray Serve the second from rayserve.Dockerfile, each serving its own model file from the
    artifacts folder."""
    services = compose_raw["services"]
    for name in build_only_services():
        image = plan.image_name(name)
        assert services[name]["image"] == plan.baked_image(image), name
        assert services[name]["build"] == {"context": "..", "dockerfile": f"deploy/docker/{image}.Dockerfile"}, name
    mounted = {s.name: {m.target for m in s.mounts} for s in fleet.services(any_root)
               if s.name in build_only_services()}
    shared = {"/artifacts/spec.json", "/artifacts/manifest.json"}
    model_file = {"torch_checkpoint": "/artifacts/torch/model.pt", "keras_model": "/artifacts/tensorflow/model.keras"}
    assert mounted and set(mounted) == set(build_only_services())
    for name, targets in mounted.items():  # each its row's model file
        assert targets == shared | {model_file[table.SERVERS[name].model]}, name
    assert plan.image_name("kserve-torch") == plan.image_name("kserve-tf") == "kserve"  # one image for both
    assert plan.image_name(plan.RAYSERVE) == "rayserve"  # Ray's image is its own


def test_an_own_model_is_served_under_its_own_name(compose_for, bars_root):
    """Nothing of the built-in model is left in what compose runs for `bars`."""
    compose = compose_for(compose_environment(bars_root))
    validator().validate(compose)
    text = json.dumps(compose)
    assert configs.BUILTIN_MODEL not in json.dumps([compose["services"][service.name]["healthcheck"]["test"]
                                                    for service in fleet.services(bars_root)])
    tfserving = {v["target"]: bind_source(v["source"]) for v in compose["services"]["tfserving"]["volumes"]}
    assert tfserving[f"/models/{OTHER_MODEL}"] == bars_root / "tfserving" / OTHER_MODEL
    rendered = bars_root / "run" / "containers" / "config"
    assert tfserving["/config/models.config"] == rendered / "models.config"
    torchserve = {v["target"]: bind_source(v["source"]) for v in compose["services"]["torchserve"]["volumes"]}
    assert torchserve[plan.TS_CONFIG] == rendered / "torchserve.properties"
    assert f"/v1/models/{OTHER_MODEL} " in text and f'"{OTHER_MODEL}"' in text


def test_rayserve_runs_the_local_cluster_s_command_with_its_proxy_published_on_loopback(compose_for, digits_root):
    """The container runs what `make serve` runs (deploy/local/servers.py), with every flag the local runner
    passes; Serve's proxy binds the container's interface (else the published port reaches nothing) while
    the host side stays 127.0.0.1; Ray's run folder is on the /tmp tmpfs, its object store fits /dev/shm."""
    from deploy.local import servers
    from serving.rayserve import cluster

    service = next(s for s in fleet.services(digits_root) if s.name == plan.RAYSERVE)
    local = servers.rayserve(digits_root, endpoints_mod.resolve({}, root=digits_root)).command
    assert local[1:3] == service.entrypoint[1:] == ["-m", "serving.rayserve.cluster"]
    flags = dict(zip(service.command[::2], service.command[1::2], strict=True))
    assert {word for word in local if word.startswith("--")} <= set(flags)
    assert flags["--host"] == "0.0.0.0" and flags["--http-port"] == str(SERVING_PORTS["rayserve_rest"])
    assert flags["--artifacts"] == plan.KSERVE_ARTIFACTS and flags["--run"].startswith("/tmp/")
    assert flags["--num-cpus"] == plan.limits(plan.RAYSERVE)["cpus"]  # the container's CPUs, not the host's
    assert int(flags["--object-store-mb"]) == plan.RAY_OBJECT_STORE_MB < int(service.shm_size.rstrip("m"))
    (published,) = compose_for({})["services"][plan.RAYSERVE]["ports"]
    assert parse_port(published) == (SERVING_HOST, SERVING_PORTS["rayserve_rest"], SERVING_PORTS["rayserve_rest"])
    # Usage statistics off (the cluster sets it too, with Ray's single-machine mode: every Ray address loopback).
    assert service.environment["RAY_USAGE_STATS_ENABLED"] == cluster.LOCKED_DOWN["RAY_USAGE_STATS_ENABLED"] == "0"
    assert cluster.LOCKED_DOWN["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert plan.limits(plan.RAYSERVE)["memory"] == "2560M"  # 2 replicas measured about 1.9 GB resident
    # Healthy or given up within the cluster's own start timeout (--start-timeout), not before it.
    timing = service.health_timing
    assert timing["start_period"] + timing["retries"] * timing["interval"] == RAY_START_TIMEOUT
    assert timing["start_period"] > plan.HEALTH_TIMING["start_period"]


@pytest.mark.slow
@pytest.mark.concerns("rayserve")
@pytest.mark.skipif(not environments.python("ray").exists(),
                    reason="needs .venv-ray (make setup): the cluster's flags are parsed where Ray is installed")
def test_rayserve_container_flags_are_the_cluster_s(digits_root):
    """cluster.py itself accepts the plan's command (a misspelt or missing flag exits 2), with the values meant."""
    import subprocess

    service = next(s for s in fleet.services(digits_root) if s.name == plan.RAYSERVE)
    script = ("import json, sys; from serving.rayserve.cluster import parse_args; "
              "print(json.dumps(vars(parse_args(sys.argv[1:])), default=str))")
    answer = subprocess.run([str(environments.python("ray")), "-c", script, *service.command],
                            capture_output=True, text=True, cwd=plan.REPO, timeout=120)
    assert answer.returncode == 0, answer.stderr
    parsed = json.loads(answer.stdout.strip().splitlines()[-1])
    assert (parsed["host"], parsed["http_port"], parsed["run"]) == ("0.0.0.0", SERVING_PORTS["rayserve_rest"],
                                                                    plan.RAY_RUN)
    assert (parsed["num_cpus"], parsed["object_store_mb"]) == (2, plan.RAY_OBJECT_STORE_MB)
    assert parsed["start_timeout"] == RAY_START_TIMEOUT  # what the health check's timing adds up to
