"""deploy/docker/*.Dockerfile and deploy/config/: the baked images run the launcher's plan, non-root,
for the built-in task (the committed files) and for a model of one's own (the rendered ones)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import environments
from core import servers as table
from core import spec as specs
from core.spec import SERVING_PORTS
from deploy.containers import configs, fleet, images, plan
from serving.tfserving import configs as tf_configs
from tests.deploy.conftest import OTHER_MODEL

SERVICES = tuple(plan.rows())  # every row of core/servers.py with a container
IMAGES = tuple(dict.fromkeys(map(plan.image_name, SERVICES)))  # the two KServe services share one
BUILD_ONLY = tuple(plan.build_only_images())
KSERVE = [name for name, row in table.SERVERS.items() if row.folder == "serving/kserve"]  # its ModelServer's rows


def dockerfile(name: str, root) -> Path:
    """The Dockerfile images.py builds service (or image) `name` from for `root` (rendered if need be)."""
    image = plan.image_name(name) if name in table.SERVERS else name
    return configs.render(root) / "docker" / f"{image}.Dockerfile"


def instructions(name: str, root) -> dict:
    """{INSTRUCTION: [arguments, ...]} of one Dockerfile, continuation lines joined."""
    text = dockerfile(name, root).read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.setdefault(word, []).append(rest.strip())
    return found


def service(name: str, root) -> plan.Service:
    return next(s for s in fleet.services(root) if s.name == name)


def sharing(name: str, root) -> list[plan.Service]:
    """The services that run the same image as service `name`; the first one's command is the image's own."""
    return [s for s in fleet.services(root) if plan.image_name(s.name) == plan.image_name(name)]


@pytest.mark.parametrize("name", SERVICES)
def test_every_row_with_a_container_has_its_dockerfile(name):
    dockerfile = images.DOCKERFILES / f"{plan.image_name(name)}.Dockerfile"
    assert dockerfile.is_file(), (
        f"{name}: core/servers.py gives it a container but {dockerfile.relative_to(plan.REPO)} does not exist: "
        "write it (FROM the row's image, USER the row's user, the plan's ENTRYPOINT, CMD and HEALTHCHECK, the "
        "artifacts its mounts hold) with a .dockerignore admitting exactly what it copies")
    ignore = dockerfile.with_name(f"{dockerfile.name}.dockerignore")
    assert ignore.is_file(), f"{name}: no {ignore.name}: write one admitting exactly what the Dockerfile copies"


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_runs_the_plan(name, any_root):
    found, expected = instructions(name, any_root), service(name, any_root)
    default = sharing(name, any_root)[0]  # its ENTRYPOINT, CMD and HEALTHCHECK (kserve-tf passes its own)
    image = plan.image_name(name)
    if image in plan.official_images():
        assert found["FROM"] == [expected.image]
    else:  # built only here, FROM the plan's pinned base
        assert found["FROM"] == [plan.build_only_images()[image]] and expected.image == plan.baked_image(image)
    assert found["USER"] == [expected.user]
    assert int(expected.user.split(":")[0]) != 0
    if default.entrypoint:
        assert json.loads(found["ENTRYPOINT"][0]) == default.entrypoint
    assert json.loads(found["CMD"][0]) == default.command
    health = found["HEALTHCHECK"][0]
    assert json.loads(health[health.index("CMD ") + 4:]) == default.health[1:]
    timing = " ".join(f"--{key.replace('_', '-')}={value}{'' if key == 'retries' else 's'}"
                      for key, value in default.health_timing.items())
    assert health.startswith(timing), (name, health)
    exposed = {port for s in sharing(name, any_root) for port in s.ports.values()}
    assert {int(p) for p in found["EXPOSE"][0].split()} == exposed


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_copies_land_where_the_mounts_go(name, any_root):
    targets = [m.target for s in sharing(name, any_root) for m in s.mounts]
    copies = instructions(name, any_root)["COPY"]
    for copy in copies:
        destination = copy.split()[-1]
        if destination.startswith(plan.KSERVE_HOME + "/"):
            continue  # the KServe image's code and lock (test_kserve_image_copies_what_the_server_imports)
        assert any(destination.rstrip("/") == t or destination.startswith(t + "/") or t.startswith(destination)
                   for t in targets), (name, destination)
    assert len(copies) >= len(targets)


@pytest.mark.parametrize("name", IMAGES)
def test_dockerignore_admits_exactly_what_is_copied(name, any_root):
    path = dockerfile(name, any_root).with_name(f"{name}.Dockerfile.dockerignore")
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert sorted(line[1:] for line in lines[1:]) == sorted(images.copied_sources(path.with_suffix("")))


@pytest.mark.parametrize("image", BUILD_ONLY)
def test_built_only_image_copies_what_its_servers_import(image, digits_root):
    """Exactly the project modules its services run (the module of each one's `python -m` entrypoint, its
    imports followed, and the Predictors the kserve.Model loads through the registry), the lock of its rows'
    environment, and the files its services serve."""
    from core import registry
    from deploy.local import code
    from serving.kserve import versions

    services = [s for s in fleet.services(digits_root) if plan.image_name(s.name) == image]
    references = [registry.TARGETS[name].predictor.split(":")[0] for name in versions.PREDICTORS.values()]
    modules = [s.entrypoint[s.entrypoint.index("-m") + 1] for s in services] + references
    needed = {str(f.relative_to(plan.REPO)) for f in code.files_of(modules)}
    copied = images.copied_sources(images.DOCKERFILES / f"{image}.Dockerfile")
    assert len(copied) == len(set(copied))
    assert {c for c in copied if not c.startswith(("artifacts/", "requirements/"))} == needed
    served = {f"artifacts/{where(Path('.'))}" for s in services
              for where in plan.kserve_files(table.SERVERS[s.name].model)}
    assert {c for c in copied if c.startswith("artifacts/")} == served
    (env,) = {table.SERVERS[s.name].env for s in services}  # the lock its environment is built from, installed exactly
    assert [c for c in copied if c.startswith("requirements/")] == [
        str(environments.lock_path(env).relative_to(plan.REPO))]


@pytest.mark.parametrize("name", KSERVE)
def test_kserve_health_check_asks_v2_readiness(name):
    """The check itself, run here against a stand-in on the port it asks: passes on 200, fails on 503."""
    import http.server
    import threading

    statuses = []

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            statuses.append(self.path)
            self.send_response(200 if server.ready else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        command = plan.kserve_health(name)[1:]
        port = SERVING_PORTS[table.SERVERS[name].port("rest")]
        assert f"127.0.0.1:{port}/" in command[-1]
        command[-1] = command[-1].replace(f":{port}/", f":{server.server_address[1]}/")
        for ready in (True, False):
            server.ready = ready
            answer = subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=30)  # python -c ...
            assert (answer.returncode == 0) == ready, answer.stderr
    finally:
        server.shutdown()
    assert statuses == ["/v2/health/ready"] * 2


def test_staged_context_holds_what_the_dockerfile_copies(tmp_path, digits_root):
    root = digits_root
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
    monkeypatch.setattr(configs, "DEPLOY", tmp_path)
    monkeypatch.setattr(configs, "generated", lambda: {Path("torchserve.properties"): configs.torchserve_properties()})
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
    assert list(json.loads(props["models"])) == [configs.BUILTIN_MODEL]
    # Every other setting is the serving/ one.
    source = properties(configs.SOURCE.read_text().replace("${MODEL_NAME}", configs.BUILTIN_MODEL))
    for key in ("models", "load_models", "token_expiration_min", "metrics_mode", "vmargs"):
        assert props[key] == source[key]


def test_tfserving_container_config_points_at_the_mounted_versions(any_root):
    model = specs.load(any_root).model_name
    text = (configs.render(any_root) / "config" / "models.config").read_text()
    base = plan.tf_model_base(model)
    assert f'name: "{model}"' in text and f'base_path: "{base}"' in text
    tfserving = service("tfserving", any_root)
    assert {m.target: m.source for m in tfserving.mounts}[base] == any_root / "tfserving" / model
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


def test_own_model_configs_are_rendered_beside_its_artifacts(bars_root):
    out = configs.render(bars_root)
    assert out == bars_root / "run" / "containers"
    props = properties((out / "config" / "torchserve.properties").read_text())
    assert props["load_models"] == f"{OTHER_MODEL}.mar"
    assert list(json.loads(props["models"])) == [OTHER_MODEL]
    assert json.loads(props["models"])[OTHER_MODEL]["1.0"]["marName"] == f"{OTHER_MODEL}.mar"
    # Only the model differs from the committed (built-in) config.
    committed = properties((plan.CONFIG_DIR / "torchserve.properties").read_text())
    assert {k for k in props if props[k] != committed.get(k)} == {"load_models", "models"}
    mounts = {m.target: m.source for m in service("torchserve", bars_root).mounts}
    assert mounts[plan.TS_CONFIG] == out / "config" / "torchserve.properties"
    assert configs.render(bars_root) == out  # a second render changes nothing


def test_own_model_image_copies_its_own_artifacts(tmp_path, bars_root):
    archive = bars_root / "torchserve" / "model-store" / f"{OTHER_MODEL}.mar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"archive")
    versions = bars_root / "tfserving" / OTHER_MODEL / "1"
    versions.mkdir(parents=True)
    (versions / "saved_model.pb").write_bytes(b"pb")
    for name in ("torch/model.pt", "tensorflow/model.keras", "manifest.json", "web/index.html"):
        (bars_root / name).parent.mkdir(parents=True, exist_ok=True)
        (bars_root / name).write_bytes(name.encode())
    found = {}
    for image in IMAGES:  # every image of the table, staged for `bars`
        context = images.stage(dockerfile(image, bars_root), bars_root, tmp_path / image)
        found[image] = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
        assert configs.BUILTIN_MODEL not in "".join(found[image]), image  # the built-in model's paths: none
        assert f'"{configs.BUILTIN_MODEL}"' not in (context / "Dockerfile").read_text(), image
    # The Dockerfiles that name the model (their health checks and copied paths) name `bars`.
    assert OTHER_MODEL in (tmp_path / "torchserve" / "Dockerfile").read_text()
    assert OTHER_MODEL in (tmp_path / "tfserving" / "Dockerfile").read_text()
    assert f"artifacts/torchserve/model-store/{OTHER_MODEL}.mar" in found["torchserve"]
    context = tmp_path / "kserve"
    assert (context / "artifacts" / "torch" / "model.pt").read_bytes() == b"torch/model.pt"  # the folder's own
    assert (context / "artifacts" / "spec.json").read_text() == (bars_root / "spec.json").read_text()
    assert f"artifacts/tfserving/{OTHER_MODEL}/1/saved_model.pb" in found["tfserving"]
    staged = tmp_path / "torchserve" / "artifacts" / "run" / "containers" / "config" / "torchserve.properties"
    assert properties(staged.read_text())["load_models"] == f"{OTHER_MODEL}.mar"


def committed_text() -> str:
    return "".join(path.read_text() for folder in configs.RENDERED_FOLDERS
                   for path in sorted((configs.DEPLOY / folder).iterdir()) if path.is_file())


def test_every_value_that_names_the_model_is_in_the_committed_files():
    """What the renderer replaces is really there: no file could keep the built-in model unnoticed."""
    text = committed_text()
    table = configs.replacements(OTHER_MODEL)
    assert len(table) == len(set(table.values()))
    for old in table:
        assert old in text, f"no committed file under deploy/ says {old!r} any more: update configs.replacements"


def test_own_model_rendering_keeps_nothing_of_the_built_in_model(bars_root):
    out = configs.render(bars_root)
    rendered = {path.relative_to(out): path.read_text() for path in out.rglob("*") if path.is_file()}
    assert set(rendered) == set(configs.generated(OTHER_MODEL))
    own = configs.replacements(OTHER_MODEL)
    everything = "".join(rendered.values())
    for old, new in own.items():
        assert old not in everything, old
        assert new in everything, new
    # Only the project's name remains (images, labels, volume, the namespace and its object).
    project = ("digits-everywhere", *map(plan.baked_image, IMAGES), "digits-models", "namespace: digits")
    for rel, text in rendered.items():
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for name in project:
                line = line.replace(name, "")
            if rel.as_posix() == "k8s/namespace.yaml":
                line = line.replace("name: digits", "")
            assert configs.BUILTIN_MODEL not in line, (rel, line)


def test_configs_command_renders_for_an_artifacts_folder(bars_root):
    answer = subprocess.run([sys.executable, "-m", "deploy.containers.configs", "--artifacts", str(bars_root)],
                            capture_output=True, text=True, cwd=plan.REPO, timeout=120)
    assert answer.returncode == 0, answer.stderr
    out = bars_root / "run" / "containers"
    assert f"model '{OTHER_MODEL}': container files in {out}" in answer.stdout
    assert f"DIGITS_MODEL_NAME={OTHER_MODEL} DIGITS_CONTAINER_CONFIG={out / 'config'}" in answer.stdout
    assert (out / "config" / "models.config").exists() and (out / "k8s" / "kustomization.yaml").exists()
    missing = subprocess.run([sys.executable, "-m", "deploy.containers.configs", "--artifacts",
                              str(bars_root / "nowhere")], capture_output=True, text=True, cwd=plan.REPO, timeout=120)
    assert missing.returncode == 1 and "spec.json not found" in missing.stderr


def test_built_in_task_uses_the_committed_files(digits_root):
    assert configs.render(digits_root) == configs.DEPLOY
    assert not (digits_root / "run").exists()  # nothing rendered: the committed files are its own
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


def test_nginx_serves_every_page_file_type_as_the_local_server_does():
    """.mjs as JavaScript, .wasm as application/wasm, .onnx/.tflite as bytes: the page's own types block,
    the same types as web/tfjs/serve.py CONTENT_TYPES (less the charset)."""
    from web.tfjs import serve

    text = (plan.CONFIG_DIR / "nginx.conf").read_text()
    block = re.search(r"location / \{.*?types \{(.*?)\}", text, re.S)
    assert block, "nginx.conf: no types block in `location /`"
    types = {f".{ext}": mime
             for mime, *exts in (line.rstrip(";").split() for line in block.group(1).strip().splitlines())
             for ext in exts}
    assert types == {ext: mime.split(";")[0] for ext, mime in serve.CONTENT_TYPES.items()}
    assert types[".mjs"] == "text/javascript" and types[".wasm"] == "application/wasm"
    assert types[".tflite"] == types[".onnx"] == "application/octet-stream"


def test_container_torchserve_registers_nothing_and_only_from_its_store():
    from serving.torchserve import archive

    props = properties((plan.CONFIG_DIR / "torchserve.properties").read_text())
    assert props["enable_model_api"] == "false"
    assert props["allowed_urls"] == archive.store_only_urls(plan.TS_MODEL_STORE)


def test_the_web_image_holds_no_test_fixtures(tmp_path, digits_root):
    """The page's test vectors hold the test split: they are written beside web/, which is all the image copies."""
    from web.tfjs import export

    root = digits_root
    (root / "web").mkdir(parents=True)
    (root / "web" / "index.html").write_text("<!doctype html>")
    export.fixtures_dir(root).mkdir(parents=True)
    (export.fixtures_dir(root) / "keras_test.json").write_text('{"x": []}')
    context = images.stage(images.DOCKERFILES / "web.Dockerfile", root, tmp_path / "context")
    assert not export.fixtures_dir(root).is_relative_to(export.web_dir(root))
    assert not [path for path in context.rglob("*") if path.name == "keras_test.json"]
