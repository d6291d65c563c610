"""Images pinned by digest where the tag can move (deploy/pin_images.py): the committed references,
and the refresh rewriting every file that holds them, on a copy, with a registry of its own."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from deploy import pin_images
from deploy.containers import plan
from tests.deploy.conftest import DEPLOY


def test_every_image_is_pinned_by_digest_or_says_why_not():
    for image, reference in pin_images.references().items():
        assert pin_images.is_pinned(reference) or reference in pin_images.TAG_ONLY, image
    # The moving tags (a rolling alpine, a Debian base rebuilt for fixes) are pinned.
    assert pin_images.is_pinned(plan.official_images()["web"])
    assert all(map(pin_images.is_pinned, plan.build_only_images().values()))
    assert set(pin_images.TAG_ONLY) <= set(pin_images.references().values())  # no stale excuses
    pin_images.main(["--check"])


def test_the_dockerfiles_and_compose_start_from_the_plan_s_references():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    for name, reference in plan.official_images().items():
        assert compose[name]["image"] == reference
    froms = {path.stem: re.findall(r"^FROM (\S+)", path.read_text(), re.M)
             for path in (DEPLOY / "docker").glob("*.Dockerfile")}
    assert froms == {**{name: [reference] for name, reference in plan.official_images().items()},
                     **{name: [reference] for name, reference in plan.build_only_images().items()}}


def test_refresh_writes_each_tag_s_digest_everywhere(tmp_path):
    for name in pin_images.FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pin_images.paths.REPO_ROOT / name, tmp_path / name)
    digests = {tag: "sha256:" + f"{index:x}" * 64 for index, tag in
               enumerate(map(pin_images.tag_of, pin_images.references().values()), 1)}
    pinned = pin_images.refresh(tmp_path, resolve=digests.__getitem__, progress=lambda line: None)
    assert set(pinned) == set(pin_images.references())
    text = "\n".join((tmp_path / name).read_text() for name in pin_images.FILES)
    for image, reference in pinned.items():
        assert reference == f"{pin_images.tag_of(reference)}@{digests[pin_images.tag_of(reference)]}"
        assert text.count(reference) >= 2, image  # the plan and a Dockerfile at least
        old = pin_images.references()[image]
        left = re.findall(re.escape(old) + r"(?![\w.@:/-])", text)
        assert old == reference or not left, image  # the committed reference is gone wherever it stood
    again = pin_images.refresh(tmp_path, resolve=digests.__getitem__, progress=lambda line: None)
    assert again == pinned  # a second refresh leaves the pins as they are


def test_refresh_refuses_what_is_not_a_digest(tmp_path):
    with pytest.raises(pin_images.PinError, match="is not a sha256 digest"):
        pin_images.refresh(pin_images.paths.REPO_ROOT, resolve=lambda tag: "latest", progress=lambda line: None)


def test_the_registry_is_asked_through_docker_buildx(monkeypatch):
    monkeypatch.setattr(pin_images.shutil, "which", lambda tool: "/usr/bin/docker" if tool == "docker" else None)
    asked = []

    def run(command, **kwargs):
        asked.append(command)
        return subprocess.CompletedProcess(command, 0, json.dumps({"digest": "sha256:" + "a" * 64}), "")
    assert pin_images.registry_digest("nginx:1.27-alpine", run=run) == "sha256:" + "a" * 64
    assert asked == [["docker", "buildx", "imagetools", "inspect", "nginx:1.27-alpine",
                      "--format", "{{json .Manifest}}"]]
    monkeypatch.setattr(pin_images.shutil, "which", lambda tool: None)
    with pytest.raises(pin_images.PinError, match="neither `docker buildx` nor `crane` is installed"):
        pin_images.registry_digest("nginx:1.27-alpine", run=run)


def test_the_launcher_pulls_a_pinned_image_by_its_digest():
    """Docker's pull API takes the digest in place of the tag (name:tag@digest would be no tag at all)."""
    import docker

    from deploy.containers import launch

    pulled = []

    class Images:
        def get(self, image):
            raise docker.errors.ImageNotFound(image)

        def pull(self, repository, tag):
            pulled.append((repository, tag))
    client = type("Client", (), {"images": Images()})()
    launch._ensure_image(client, plan.official_images()["web"])
    launch._ensure_image(client, "pytorch/torchserve:0.12.0-cpu")
    assert pulled == [("nginx", plan.official_images()["web"].split("@")[1]), ("pytorch/torchserve", "0.12.0-cpu")]
