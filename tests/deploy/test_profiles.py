"""The container configs of the measured profiles say what deploy/local/profiles.json says."""
from __future__ import annotations

import json

import pytest

from deploy.containers import configs
from deploy.local import settings
from serving.tfserving import configs as tf_configs


def properties(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("profile", settings.PROFILES)
def test_each_profiles_container_configs_carry_its_settings(profile, tmp_path):
    chosen = settings.preset(profile)
    folder = configs.DEPLOY / "config" / "profiles" / profile
    props = properties((folder / "torchserve.properties").read_text())
    (entry,) = json.loads(props["models"])[configs.BUILTIN_MODEL].values()
    assert all(entry[key] == value for key, value in chosen.torchserve.items())
    assert all(props[key] == str(value) for key, value in chosen.torchserve_config.items())
    default = properties((configs.DEPLOY / "config" / "torchserve.properties").read_text())
    ignored = ("models", "default_workers_per_model", *chosen.torchserve_config)
    assert {k: v for k, v in props.items() if k not in ignored} \
        == {k: v for k, v in default.items() if k not in ignored}
    batching = tf_configs.read_text_proto_values(folder / "batching.config")
    assert all(batching[key] == value for key, value in chosen.tfserving.items())
    env = [line for line in (folder / "torchserve.env").read_text().splitlines() if not line.startswith("#")]
    assert env == [f"{key}={value}" for key, value in chosen.torchserve_env.items()]
    flags = [line for line in (folder / "tfserving.flags").read_text().splitlines() if not line.startswith("#")]
    assert flags == [f"--{flag}={value}" for flag, value in chosen.tfserving_flags.items()]
    assert (folder / "models.config").read_text() == (configs.DEPLOY / "config" / "models.config").read_text()


def test_a_changed_profile_makes_the_committed_configs_stale(monkeypatch, tmp_path):
    changed = json.loads(settings.PROFILES_FILE.read_text())
    changed["profiles"]["throughput"]["torchserve"] = {"batchSize": 64, "maxBatchDelay": 7}
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(changed))
    monkeypatch.setattr(settings, "PROFILES_FILE", path)
    stale = [p.relative_to(configs.DEPLOY).as_posix() for p in configs.stale()]
    assert stale == ["config/profiles/throughput/torchserve.properties"]
