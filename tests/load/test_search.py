"""The settings search on a two-point grid against real servers, and the profiles reaching the servers.

Figures are benchmarks (`make tune`); here every point must be accounted for with the shape of its
measurements, and `--settings latency|throughput` must start servers with the rendered configs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import openloop, search, variants
from core import servers as servers_table
from deploy.local import runner, settings
from serving.endpoints import free_endpoints
from serving.tfserving import configs
from tests.conftest import built

pytestmark = [pytest.mark.slow, pytest.mark.concerns("servers")]


@pytest.fixture(scope="module")
def servable(trained_artifacts) -> Path:
    """The session's model with both servers' artifacts built (already there when `served` ran)."""
    return built(trained_artifacts, "export-torchserve", "export-tfserving")


def test_search_of_two_points_accounts_for_every_point(servable, tmp_path):
    out = tmp_path / "search.json"
    profiles = tmp_path / "profiles.json"
    result = search.main(["--artifacts", str(servable), "--servers", "torchserve", "--points", "default", "b1",
                          "--latency-seconds", "0.3", "--warmup-seconds", "0.3", "--step-seconds", "0.5",
                          "--start-rate", "20", "--factor", "4", "--max-rate", "80", "--retries", "0",
                          "--out", str(out), "--write-profiles", str(profiles)])
    assert json.loads(out.read_text()) == result
    entry = result["servers"]["torchserve"]
    assert [p["name"] for p in entry["points"]] == ["default", "b1"]
    assert entry["endpoints"] == ["torchserve-rest", "torchserve-grpc"]
    assert entry["in_process"]["target"] == "torch-eager" and entry["in_process"]["n"] > 0
    for point in entry["points"]:
        assert "error" not in point and point["cold_start_s"] > 0
        for target in entry["endpoints"]:
            figures = point["targets"][target]
            assert "error" not in figures, figures
            one = figures["one_client"]
            assert one["n"] > 0 and 0 < one["p50_ms"] <= one["p99_ms"] <= one["max_ms"]
            # every scheduled request is accounted for by exactly one outcome (benchmarks/openloop.py)
            assert figures["steps"] and all(
                sum(step[outcome] for outcome in openloop.OUTCOMES) + step["in_flight"] == step["scheduled"]
                and step["failed"] == step["scheduled"] - step["answered"] for step in figures["steps"])
            assert figures["capacity_rps"] in {0, *[step["offered_rps"] for step in figures["steps"]]}
            low, high = figures["bracket_rps"]  # bisected to within 10%, or the maximum held, or even 20 failed
            assert figures["goodput_rps"] == low and (high is None or low == 0 or high <= low * 1.1)
    assert set(entry["profiles"]) == {"latency", "throughput"}
    assert set(entry["profiles"].values()) <= {"default", "b1"}
    written = settings.load_profiles(profiles)
    chosen = next(p for p in entry["points"] if p["name"] == entry["profiles"]["latency"])
    assert written["latency"].torchserve == chosen["settings"].get("torchserve", {})
    # The search's servers are stopped again.
    assert runner.read_pid(runner.run_dir("torchserve", servable / "load" / "search-torchserve")) is None


def models_entry(text: str) -> dict:
    line = next(line for line in text.splitlines() if line.startswith("models="))
    (versions,) = json.loads(line.split("=", 1)[1]).values()
    return versions["1.0"]


def environ_of(pid: int) -> dict:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


@pytest.mark.parametrize("profile", settings.PROFILES)
def test_runner_starts_the_servers_with_a_profiles_rendered_configs(servable, profile, monkeypatch):
    variant = variants.prepare(servable, f"profile-{profile}")
    for name, value in free_endpoints().as_environment().items():
        monkeypatch.setenv(name, value)
    chosen = settings.preset(profile)
    # The servers the profile sets something for (each row names the settings it reads, core/servers.py).
    tuned = [name for name in servers_table.model_servers()
             if any(getattr(chosen, field) for field in servers_table.SERVERS[name].settings)]
    assert {"torchserve", "tfserving"} <= set(tuned)
    try:
        runner.main(["start", "--artifacts", str(variant), "--settings", profile, "--servers", *tuned])
        run = variant / "run"
        for server in tuned:
            assert json.loads((run / server / "settings.json").read_text()) == chosen.to_dict(), server
        text = (run / "torchserve" / "config.properties").read_text()
        entry = models_entry(text)
        assert all(entry[key] == value for key, value in chosen.torchserve.items())
        assert all(f"{key}={value}" in text.splitlines() for key, value in chosen.torchserve_config.items())
        torchserve_env = environ_of(runner.read_pid(run / "torchserve").pid)
        assert all(torchserve_env.get(key) == value for key, value in chosen.torchserve_env.items())
        batching = configs.read_text_proto_values(run / "tfserving" / "batching.config")
        assert all(batching[key] == value for key, value in chosen.tfserving.items())
        command = (Path(f"/proc/{runner.read_pid(run / 'tfserving').pid}/cmdline").read_bytes()
                   .decode().split("\0"))
        assert ("--enable_batching" in command) == chosen.tfserving_batching
        assert all(f"--{flag}={value}" in command for flag, value in chosen.tfserving_flags.items())
    finally:
        runner.stop(variant)
    assert not os.path.exists(run / "torchserve" / "server.pid")
