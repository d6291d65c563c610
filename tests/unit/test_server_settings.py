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


def test_settings_change_workers_batching_threads_of_torchserve_only(spec_folder):
    chosen = settings.ServerSettings(name="w2", torchserve={"minWorkers": 2, "maxWorkers": 2, "batchSize": 16},
                                     torchserve_env={"OMP_NUM_THREADS": "1"},
                                     torchserve_config={"number_of_netty_threads": 2, "job_queue_size": 99})
    text = servers.torchserve_config(spec_folder, resolve({}), chosen).read_text()
    entry = models_entry(text)
    for key, value in chosen.torchserve.items():
        assert entry[key] == value
    assert entry["marName"] == "digits.mar" and entry["responseTimeout"] == 5  # the rest untouched
    assert "default_workers_per_model=2" in text
    assert "number_of_netty_threads=2" in text.splitlines() and "job_queue_size=99" in text.splitlines()
    assert "number_of_netty_threads=4" not in text and "netty_client_threads=2" in text  # replaced, not added
    assert servers.torchserve(spec_folder, resolve({}), chosen).env["OMP_NUM_THREADS"] == "1"


def test_a_settings_vmargs_follow_the_files_and_the_private_tmpdir_stays_last(spec_folder):
    quiet = settings.ServerSettings(torchserve_config={"vmargs": "-Dlog4j.configurationFile=file://{repo}/q.xml"})
    text = servers.torchserve_config(spec_folder, resolve({}), quiet).read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("vmargs=")]
    assert line.startswith("vmargs=-Xmx512m ") and f" -Dlog4j.configurationFile=file://{servers.REPO}/q.xml " in line
    assert line.endswith(f"-Djava.io.tmpdir={spec_folder / 'run' / 'torchserve' / 'tmp'}")
    plain = servers.torchserve_config(spec_folder, resolve({}), settings.preset("default")).read_text()
    assert "log4j" not in plain


def test_torchserve_config_keys_never_move_the_addresses(spec_folder):
    moved = settings.ServerSettings(torchserve_config={"inference_address": "http://0.0.0.0:1"})
    text = servers.torchserve_config(spec_folder, resolve({}), moved).read_text()
    assert "inference_address=http://127.0.0.1:8080" in text and "0.0.0.0:1" not in text


def test_profiles_come_from_the_committed_file_and_name_only_known_fields(tmp_path):
    profiles = settings.load_profiles()
    assert set(profiles) == {"latency", "throughput"}
    assert settings.preset("latency") == profiles["latency"] and settings.preset("default") == settings.ServerSettings()
    bad = tmp_path / "profiles.json"
    bad.write_text(json.dumps({"profiles": {"latency": {"torchserv": {}}, "throughput": {}}}))
    with pytest.raises(ValueError, match="settings 'latency': unknown fields torchserv"):
        settings.load_profiles(bad)


def test_tfserving_flags_reach_the_command_line(spec_folder):
    flags = settings.ServerSettings(tfserving_flags={"tensorflow_intra_op_parallelism": 1, "rest_api_num_threads": 8})
    command = servers.tfserving(spec_folder, resolve({}), flags).command
    assert "--tensorflow_intra_op_parallelism=1" in command and "--rest_api_num_threads=8" in command


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
    with pytest.raises(ValueError, match="unknown server settings 'fast'; known: default, latency, throughput"):
        settings.preset("fast")


def test_a_zero_batch_delay_is_refused_because_torchserve_would_wait_100_ms():
    # TorchServe reads a non-positive models= value as unset: maxBatchDelay 0 silently becomes 100 ms.
    with pytest.raises(ValueError, match="maxBatchDelay must be at least 1, got 0 .*waits its default 100 ms"):
        settings.ServerSettings(name="eager", torchserve={"batchSize": 8, "maxBatchDelay": 0})
    with pytest.raises(ValueError, match="'p': TorchServe batchSize must be at least 1, got 0"):
        settings.from_dict("p", {"torchserve": {"batchSize": 0}})
    assert settings.ServerSettings(torchserve={"batchSize": 1}).torchserve == {"batchSize": 1}


@pytest.mark.parametrize("name", settings.PRESET_NAMES)
def test_every_profile_keeps_two_workers_and_a_short_response_timeout(spec_folder, name):
    """One stuck worker never stops the model: two workers, given up on after seconds, model loads timed apart."""
    text = servers.torchserve_config(spec_folder, resolve({}), settings.preset(name)).read_text()
    entry = models_entry(text)
    assert entry["minWorkers"] >= 2 and entry["maxWorkers"] >= 2, entry
    assert entry["responseTimeout"] <= 5 < entry["startupTimeout"], entry
    assert "default_workers_per_model=2" in text.splitlines() and "default_response_timeout=5" in text.splitlines()
