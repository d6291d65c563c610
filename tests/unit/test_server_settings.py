"""Named server settings reach the rendered configs, flags and environment, and nothing else changes."""
from __future__ import annotations

import json

import pytest

from deploy.local import servers, settings
from serving.endpoints import resolve
from serving.tfserving import configs


def models_entry(config_text: str) -> dict:
    line = next(line for line in config_text.splitlines() if line.startswith("models="))
    (versions,) = json.loads(line.split("=", 1)[1]).values()  # the one model, named by the spec
    return versions["1.0"]


def test_default_settings_render_the_checked_in_torchserve_config(spec_folder):
    text = servers.torchserve_config(spec_folder, resolve({}), settings.preset("default")).read_text()
    checked_in = (servers.REPO / "serving" / "torchserve" / "config.properties").read_text()
    checked_in = checked_in.replace("${MODEL_NAME}", "digits")  # the rendering fills in the spec's name
    assert models_entry(text) == models_entry(checked_in)


def test_tuned_settings_change_workers_and_batching_of_torchserve_only(spec_folder):
    tuned = settings.preset("tuned")
    text = servers.torchserve_config(spec_folder, resolve({}), tuned).read_text()
    entry = models_entry(text)
    for key, value in tuned.torchserve.items():
        assert entry[key] == value
    assert entry["marName"] == "digits.mar" and entry["responseTimeout"] == 30  # the rest untouched
    assert f"default_workers_per_model={tuned.torchserve['minWorkers']}" in text
    assert servers.torchserve(spec_folder, resolve({}), tuned).env["OMP_NUM_THREADS"] == "1"


def test_tfserving_batching_can_be_turned_off_or_overridden(spec_folder):
    off = servers.tfserving(spec_folder, resolve({}), settings.ServerSettings(name="off", tfserving_batching=False))
    assert not any(flag.startswith(("--enable_batching", "--batching_parameters_file")) for flag in off.command)
    on = servers.tfserving(spec_folder, resolve({}), settings.preset("default"))
    assert "--enable_batching" in on.command
    out = configs.render(spec_folder, spec_folder / "run",
                         batching={"batch_timeout_micros": 500, "pad_variable_length_inputs": 0})
    values = configs.read_text_proto_values(out["batching"])
    assert values["batch_timeout_micros"] == 500 and values["pad_variable_length_inputs"] == 0
    checked_in = configs.read_text_proto_values(configs.CONFIG_DIR / "batching.config")
    assert values["max_batch_size"] == checked_in["max_batch_size"]


def test_an_unknown_settings_name_is_named():
    with pytest.raises(ValueError, match="unknown server settings 'fast'; known: default, tuned"):
        settings.preset("fast")
