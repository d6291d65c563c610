"""deploy/docker/*.Dockerfile and deploy/config/: the baked images run the launcher's plan, non-root."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from deploy.containers import configs, images, plan
from serving.tfserving import configs as tf_configs
from training.spec import MODEL_NAME, SERVING_PORTS

SERVICES = ("torchserve", "tfserving", "web")


def instructions(name: str) -> dict:
    """{INSTRUCTION: [arguments, ...]} of one Dockerfile, continuation lines joined."""
    text = (images.DOCKERFILES / f"{name}.Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.setdefault(word, []).append(rest.strip())
    return found


def service(name: str, root) -> plan.Service:
    return next(s for s in plan.services(root) if s.name == name)


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_runs_the_plan(name, tmp_path):
    found, expected = instructions(name), service(name, tmp_path)
    assert found["FROM"] == [expected.image]
    assert found["USER"] == [expected.user]
    assert int(expected.user.split(":")[0]) != 0
    if expected.entrypoint:
        assert json.loads(found["ENTRYPOINT"][0]) == expected.entrypoint
    assert json.loads(found["CMD"][0]) == expected.command
    health = found["HEALTHCHECK"][0]
    assert json.loads(health[health.index("CMD ") + 4:]) == expected.health[1:]
    timing = " ".join(f"--{key.replace('_', '-')}={value}{'' if key == 'retries' else 's'}"
                      for key, value in plan.HEALTH_TIMING.items())
    assert health.startswith(timing)
    assert {int(p) for p in found["EXPOSE"][0].split()} == set(expected.ports.values())


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_copies_land_where_the_mounts_go(name, tmp_path):
    expected = service(name, tmp_path)
    targets = [m.target for m in expected.mounts]
    for copy in instructions(name)["COPY"]:
        destination = copy.split()[-1]
        assert any(destination == t or destination.startswith(t + "/") for t in targets), (name, destination)
    assert len(instructions(name)["COPY"]) >= len(targets)


@pytest.mark.parametrize("name", SERVICES)
def test_dockerignore_admits_exactly_what_is_copied(name):
    path = images.DOCKERFILES / f"{name}.Dockerfile.dockerignore"
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert sorted(line[1:] for line in lines[1:]) == sorted(images.copied_sources(path.with_suffix("")))


def test_staged_context_holds_what_the_dockerfile_copies(tmp_path):
    root = tmp_path / "artifacts"
    (root / "web").mkdir(parents=True)
    (root / "web" / "index.html").write_text("<!doctype html>")
    context = images.stage(images.DOCKERFILES / "web.Dockerfile", root, tmp_path / "context")
    assert (context / "Dockerfile").read_text() == (images.DOCKERFILES / "web.Dockerfile").read_text()
    assert (context / "artifacts" / "web" / "index.html").read_text() == "<!doctype html>"
    assert (context / "deploy" / "config" / "nginx.conf").exists()


def test_generated_configs_are_current():
    answer = subprocess.run([sys.executable, "-m", "deploy.containers.configs", "--check"], capture_output=True,
                            text=True, cwd=plan.REPO)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert configs.stale() == []


def test_stale_config_is_reported(tmp_path, monkeypatch):
    target = tmp_path / "torchserve.properties"
    target.write_text("inference_address=http://0.0.0.0:1\n")
    monkeypatch.setattr(configs, "generated", lambda: {target: configs.torchserve_properties()})
    assert configs.stale() == [target]


def properties(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_torchserve_container_config_listens_on_the_spec_ports():
    props = properties((plan.CONFIG_DIR / "torchserve.properties").read_text())
    assert props["inference_address"] == f"http://0.0.0.0:{SERVING_PORTS['torchserve_inference']}"
    assert props["metrics_address"] == f"http://0.0.0.0:{SERVING_PORTS['torchserve_metrics']}"
    # Management only on the container's loopback (the health check's URL).
    assert props["management_address"] == f"http://127.0.0.1:{SERVING_PORTS['torchserve_management']}"
    assert props["grpc_management_address"] == "127.0.0.1"
    assert int(props["grpc_inference_port"]) == SERVING_PORTS["torchserve_grpc_inference"]
    assert props["enable_model_api"] == "false"
    assert "disable_token_authorization" not in props  # token authorization stays on in compose/docker
    assert MODEL_NAME in json.loads(props["models"])
    # Every other setting is the serving/ one.
    source = properties(configs.SOURCE.read_text())
    for key in ("models", "load_models", "token_expiration_min", "metrics_mode", "vmargs"):
        assert props[key] == source[key]


def test_tfserving_container_config_points_at_the_mounted_versions():
    text = (plan.CONFIG_DIR / "models.config").read_text()
    assert f'name: "{MODEL_NAME}"' in text and f'base_path: "{plan.TF_MODEL_BASE}"' in text
    assert plan.TF_MODEL_BASE.endswith("/" + MODEL_NAME)
    assert "${" not in text
    flags = plan.tfserving_command()
    for key, name in tf_configs.CONFIG_FILES.items():
        assert any(flag.endswith(f"={plan.TF_CONFIG_DIR}/{name}") for flag in flags), key


def test_nginx_serves_the_demo_on_the_spec_port():
    text = (plan.CONFIG_DIR / "nginx.conf").read_text()
    assert f"listen {SERVING_PORTS['web_demo']};" in text
    assert f"root {plan.WEB_ROOT};" in text
    assert "pid /tmp/nginx.pid;" in text  # read-only root: only /tmp is writable
    temp_paths = re.findall(r"_temp_path (\S+);", text)
    assert len(temp_paths) == 5 and all(p.startswith("/tmp/") for p in temp_paths)


def test_nginx_sends_the_local_page_servers_headers_and_limits():
    """The container's nginx and web/tfjs/serve.py answer the page with the same headers and limits."""
    from web.tfjs import serve

    text = (plan.CONFIG_DIR / "nginx.conf").read_text()
    headers = dict(re.findall(r'add_header (\S+) "([^"]*)" always;', text))
    assert headers == serve.HEADERS
    assert "autoindex off;" in text and "include /etc/nginx/mime.types;" in text  # wasm: application/wasm
    assert "if ($request_method !~ ^(GET|HEAD)$) {\n            return 405;" in text
    idle = f"{serve.IDLE_SECONDS:g}s;"
    assert f"keepalive_timeout {idle}" in text and f"client_header_timeout {idle}" in text
    assert "client_max_body_size 1;" in text  # nginx reads 0 as "no limit": 1 byte refuses every body


def test_container_torchserve_registers_nothing_and_only_from_its_store():
    from serving.torchserve import archive

    for path, store in ((plan.CONFIG_DIR / "torchserve.properties", plan.TS_MODEL_STORE),
                        (plan.REPO / "deploy" / "kserve" / "config" / "config.properties", "/mnt/models/model-store")):
        props = properties(path.read_text())
        assert props["enable_model_api"] == "false", path
        assert props["allowed_urls"] == archive.store_only_urls(store), path
