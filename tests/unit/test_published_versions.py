"""What TorchServe is started with after a publish: the recorded versions, the published default
loaded first (TorchServe's default is the first version it loads), registration from this store only."""
from __future__ import annotations

import json

import pytest

from deploy.local import servers
from serving import endpoints
from serving.torchserve import archive


def rendered(root) -> dict:
    out = servers.torchserve_config(root, endpoints.resolve({}))
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line and not line.startswith("#"))


def test_without_a_publish_version_one_alone_is_served(spec_folder):
    config = rendered(spec_folder)
    assert config["load_models"] == "digits.mar"
    assert json.loads(config["models"])["digits"]["1.0"]["defaultVersion"] is True
    assert config["allowed_urls"] == archive.store_only_urls(archive.model_store(spec_folder).resolve())


def test_a_published_default_is_loaded_first_and_every_version_kept(spec_folder):
    archive.record_published(spec_folder, ["1.0", "2.0", "3.0"], "2.0")
    config = rendered(spec_folder)
    assert config["load_models"] == "digits-v2.0.mar,digits.mar,digits-v3.0.mar"
    models = json.loads(config["models"])["digits"]
    assert {v: (m["marName"], m["defaultVersion"]) for v, m in models.items()} == {
        "1.0": ("digits.mar", False), "2.0": ("digits-v2.0.mar", True), "3.0": ("digits-v3.0.mar", False)}
    assert all(m["batchSize"] == 8 for m in models.values())  # the checked-in settings for every version


def test_a_recorded_version_missing_from_the_manifest_is_refused_before_start(spec_folder):
    archive.record_published(spec_folder, ["1.0", "2.0"], "2.0")
    with pytest.raises(servers.PrepareError, match="torchserve_mar"):
        servers.torchserve(spec_folder, endpoints.resolve({})).prepare()


def test_a_record_whose_default_is_not_among_its_versions_is_an_error(tmp_path):
    archive.published_path(tmp_path).parent.mkdir(parents=True)
    archive.published_path(tmp_path).write_text(json.dumps({"versions": ["1.0"], "default": "2.0"}))
    with pytest.raises(archive.PublishedError, match="the default '2.0' is not among"):
        archive.published(tmp_path)


def test_the_store_pattern_escapes_the_path_and_admits_archives_in_it_only():
    import re

    pattern = archive.store_only_urls("/srv/a.b+c/model-store")
    assert "\\" not in pattern  # a .properties file would eat a backslash
    assert re.fullmatch(pattern, "file:///srv/a.b+c/model-store/digits-v2.0.mar")
    for other in ("file:///srv/aXb+c/model-store/x.mar", "file:///srv/a.b+c/model-store/sub/x.mar",
                  "file:///srv/a.b+c/model-store/x.mar.sh", "https://example.com/srv/a.b+c/model-store/x.mar"):
        assert not re.fullmatch(pattern, other), other
