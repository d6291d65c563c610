"""TorchServe's overhead breakdown without a server: its Prometheus counters read, per request, and one
request taken apart into pieces that add up to the client's round trip."""
from __future__ import annotations

import pytest

from benchmarks import torchserve_breakdown as breakdown

# As TorchServe 0.12 answers /metrics with metrics_mode=prometheus and model_metrics_auto_detect=true.
PAGE = """# HELP ts_inference_latency_microseconds Cumulative inference duration in microseconds
# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{model_name="digits",model_version="default",hostname="vm",} 986015.767
ts_queue_latency_microseconds{model_name="digits",model_version="default",hostname="vm",} 28106.1
ts_inference_requests_total{model_name="digits",model_version="default",hostname="vm",} 200.0
DigitsDecodeTime{ModelName="digits",Level="Model",Hostname="vm",} 38947.2
DigitsModelTime{ModelName="digits",Level="Model",Hostname="vm",} 128127.2
DigitsEncodeTime{ModelName="digits",Level="Model",Hostname="vm",} 7661.8
DigitsHandlerCalls{ModelName="digits",Level="Model",Hostname="vm",} 100.0
PredictionTime{ModelName="digits",Level="Model",Hostname="vm",} 0.87
"""


def test_the_counters_are_read_from_the_prometheus_page():
    assert breakdown.counters(PAGE) == {
        "requests": 200.0, "frontend_us": 986015.767, "queue_us": 28106.1, "handler_calls": 100.0,
        "decode_us": 38947.2, "model_us": 128127.2, "encode_us": 7661.8}
    assert breakdown.counters("") == {}  # the metrics in the log: nothing served


def test_means_per_request_come_from_the_counters_growth():
    before = breakdown.counters(PAGE)
    after = {key: value * 3 for key, value in before.items()}  # 400 more requests in 200 more batches
    per = breakdown.per_request(before, after)
    assert per["requests"] == 400 and per["requests_per_batch"] == 2.0
    assert per["frontend_us"] == pytest.approx(986015.767 * 2 / 400, abs=0.1)
    assert per["model_us"] == pytest.approx(128127.2 * 2 / 400, abs=0.1)
    assert breakdown.per_request(before, before) == {}  # no request in between: no figures


def test_one_request_taken_apart_adds_up_to_the_client_round_trip():
    server = {"frontend_us": 2000.0, "queue_us": 40.0, "decode_us": 80.0, "model_us": 200.0, "encode_us": 20.0}
    pieces = breakdown.pieces(3000.0, server, client_json_us=50.0)
    by_name = {p["piece"]: p["mean_us"] for p in pieces}
    assert by_name["HTTP and frontend I/O"] == 950.0  # 3000 - 2000 - 50
    assert by_name["frontend <-> Python worker"] == 1660.0  # 2000 - 40 - (80 + 200 + 20)
    assert sum(by_name.values()) == pytest.approx(3000.0)
    assert breakdown.pieces(3000.0, {"frontend_us": 2000.0, "queue_us": 40.0}) is None  # no handler timers


def test_a_stage_changes_the_latency_profile_key_by_key():
    settings = breakdown.stage_settings(breakdown.STAGES["handler timers"][0])
    latency = breakdown.settings_mod.preset("latency")
    assert settings.torchserve_env == {**latency.torchserve_env, "DIGITS_HANDLER_TIMERS": "1"}
    assert settings.torchserve_config["model_metrics_auto_detect"] == "true"
    assert settings.torchserve == latency.torchserve  # the rest is the profile's
