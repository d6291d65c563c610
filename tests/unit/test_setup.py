"""`make setup` and `make lock` (deploy/local/setup.py, lock.py, uv.py): what a pick installs, where uv takes
packages from, and locks that hold what their sources ask for."""
from __future__ import annotations

import re

import pytest

from core import environments, paths, registry, selection, servers
from deploy.local import setup, uv


@pytest.mark.parametrize("pick, present, absent", [
    ("onnx-fp32 tflite-fp32", {"main", "edge", "tflite-runtime"},
     {"java", "node", "chromium", "ray", "kserve", "tfjs", "litert-torch", "perf"}),
    ("kserve", {"main", "kserve", "perf", "libb64"}, {"java", "node", "chromium", "ray", "tfjs"}),
    ("rayserve-v2-rest", {"main", "ray"}, {"java", "kserve", "node"}),
    ("torchserve-rest", {"java"}, {"ray", "kserve", "node", "chromium"}),
    ("tfjs-chromium", {"tfjs", "node", "chromium"}, {"java", "ray", "kserve"}),
    ("tfjs-node", {"tfjs", "node"}, {"chromium", "java"}),
    ("litert-torch-fp32", {"litert-torch", "edge"}, {"tfjs", "node"}),
    ("torch-compile", {"g++"}, {"java", "node"}),
])
def test_a_pick_installs_what_its_rows_need_and_nothing_else(pick, present, absent):
    needs = set(selection.needs(selection.resolve(pick)))
    assert present <= needs and not needs & absent, needs


def test_every_target_needs_every_environment_and_program():
    assert set(selection.needs(selection.resolve(None))) == set(environments.ENVIRONMENTS) | set(environments.SYSTEM)


def test_a_pick_builds_and_serves_only_its_own():
    picked = selection.resolve("onnx-int8 kserve-tf-v2-grpc")
    assert selection.steps(picked) == ["train", "export-onnx", "export-onnx-int8"]
    assert selection.servers_of(picked) == ["kserve-tf"]
    assert selection.servers_of(selection.resolve("tfjs-chromium")) == ["web"]  # the page's server


def test_setup_commands_come_from_the_picked_rows():
    assert setup.setup_commands(selection.resolve("onnx-fp32")) == []
    commands = setup.setup_commands(selection.resolve("torchserve-rest kserve-torch-v2-rest kserve-tf-v2-rest"))
    assert commands == ["python -m serving.torchserve.gen_stubs --if-stale",
                        "python -m serving.v2.gen_stubs --if-stale"]


def test_uv_takes_pip_s_find_links_and_index_but_not_its_extra_indexes(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / f"torch-{uv.torch_pin()}-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    config = {"find-links": [str(wheels), str(wheels)], "extra-index-url": ["file:///opt/old/simple"]}
    assert uv.index_args(config) == ["--find-links", str(wheels)]
    with_index = uv.index_args({**config, "index-url": ["https://mirror.example/simple"]})
    assert with_index[-2:] == ["--index-url", "https://mirror.example/simple"]


def test_without_a_local_cpu_wheel_torch_comes_from_pytorch_s_cpu_index(tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITS_TORCH_INDEX", raising=False)
    args = uv.index_args({"find-links": [str(tmp_path)]})
    assert args[-4:] == ["--extra-index-url", uv.TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]
    assert uv.torch_pin() == "2.13.0+cpu"


def test_pip_config_list_is_read_like_pip_prints_it(monkeypatch):
    import subprocess

    printed = ("global.find-links='/opt/wheels'\n:env:.find-links='/opt/wheels /srv/more'\n"
               "global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'\n")
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0, printed, ""))
    config = uv.pip_config("python3.11")
    assert config["find-links"] == ["/opt/wheels", "/opt/wheels", "/srv/more"]
    assert config["extra-index-url"] == ["file:///opt/pypi/simple", "file:///opt/pypi-more/simple"]


def test_an_environment_is_current_only_with_the_stamp_of_its_lock_as_it_is_now(tmp_path, monkeypatch):
    monkeypatch.setattr(environments.paths, "REPO_ROOT", tmp_path)
    (tmp_path / "requirements").mkdir()
    lock = tmp_path / "requirements" / "edge.txt"
    lock.write_text("numpy==2.4.6\n")
    assert not setup.is_current("edge")  # nothing there
    (tmp_path / ".venv-edge" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-edge" / "bin" / "python").write_text("")
    environments.stamp("edge").write_text(uv.paths_digest([lock]) + "\n")
    assert setup.is_current("edge")
    lock.write_text("numpy==2.4.7\n")  # `make lock` changed it: filled again
    assert not setup.is_current("edge")


def requirement_names(path) -> dict[str, str | None]:
    """{normalized name: pinned version or None} of a requirements file's requirement lines."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        matched = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==\s*([^\s;\\]+))?", line)
        if matched and not line.startswith("-"):
            found[re.sub(r"[-_.]+", "-", matched.group(1)).lower()] = matched.group(4)
    return found


@pytest.mark.parametrize("name", list(environments.ENVIRONMENTS))
def test_each_lock_holds_what_its_sources_ask_for_and_was_made_by_make_lock(name):
    """A dependency added to a `.in` or a folder's requirements.in without `make lock` fails here."""
    lock = environments.lock_path(name)
    text = lock.read_text()
    assert "make lock" in text.splitlines()[1], f"{lock.name} was not compiled by `make lock`"
    assert "--hash=sha256:" in text, f"{lock.name} has no hashes: run `make lock`"
    locked = requirement_names(lock)
    for source in environments.sources(name):
        for package, version in requirement_names(source).items():
            assert package in locked, f"{source.relative_to(paths.REPO_ROOT)} asks for {package}: run `make lock`"
            if version:
                assert locked[package].split("+")[0] == version.split("+")[0], (package, locked[package], version)


def test_a_row_folder_s_requirements_go_to_the_environment_its_row_runs_in():
    for name in environments.ENVIRONMENTS:
        for source in environments.sources(name)[1:]:
            folder = str(source.parent.relative_to(paths.REPO_ROOT))
            runs_in = {target.env for target in registry.TARGETS.values() if target.folder == folder}
            runs_in |= {row.env for row in servers.SERVERS.values() if row.folder == folder}
            assert name in runs_in, (folder, name, runs_in)
