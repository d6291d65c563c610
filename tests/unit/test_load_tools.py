"""The load tools' logic without servers: Poisson schedule, latency from the scheduled time, the capacity rule."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from benchmarks import openloop, sweep

CLASSES = 4  # what the fake predictors answer


def test_poisson_schedule_has_the_rate_and_exponential_gaps():
    times = openloop.poisson_schedule(500, 20, np.random.default_rng(1))
    assert np.all(np.diff(times) > 0) and times[-1] < 20
    assert abs(len(times) - 10_000) < 5 * np.sqrt(10_000)  # Poisson count: mean 10,000, sd 100
    gaps = np.diff(times)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: sd equals the mean


def test_poisson_schedule_rejects_a_rate_of_zero():
    with pytest.raises(ValueError, match="rate and seconds must be positive"):
        openloop.poisson_schedule(0, 5, np.random.default_rng(0))


class SlowPredictor:
    """50 ms per call, one answer at a time: 20 calls/s at most."""

    def predict(self, batch):
        time.sleep(0.05)
        return np.full((len(batch), CLASSES), 1 / CLASSES, dtype=np.float32)


def accounted(result: dict) -> bool:
    """Every scheduled request ended as exactly one outcome, nothing left in flight."""
    return result["in_flight"] == 0 and result["scheduled"] == sum(result[o] for o in openloop.OUTCOMES)


def test_latency_counts_from_the_scheduled_time_so_an_overloaded_server_shows_it():
    images = np.zeros((4, 8, 8), dtype=np.float32)
    result = openloop.run(SlowPredictor, images, CLASSES, rate=60, seconds=1, threads=1, grace=0.5)
    # A closed loop would report ~50 ms per call; offered 3x what one client can serve, requests
    # wait in line, and the wait is part of their latency.
    assert result["p50_ms"] > 150 and result["max_ms"] > 400
    assert result["not_sent"] > 0
    assert result["kinds"]["not_sent: the client fell behind the schedule"] == result["not_sent"]
    assert result["answered"] == result["n"] > 0 and accounted(result)
    assert result["generator_limited"] and "send lag p99" in result["generator"]["why"]  # one thread could not keep up


class Refusing:
    """Every other call refused as an overloaded server would (HTTP 503), the rest answered."""

    calls = 0

    def predict(self, batch):
        from serving.rest import RestError

        Refusing.calls += 1
        if Refusing.calls % 2:
            raise RestError(503, "busy", "1")
        return np.full((len(batch), CLASSES), 1 / CLASSES, dtype=np.float32)


class Raising:
    """A server that fails in a way no client can act on."""

    def predict(self, batch):
        raise RuntimeError("boom")


def test_every_request_is_accounted_for_refused_and_errors_by_kind():
    batches = [np.zeros((1, 8, 8), dtype=np.float32)]
    load = openloop.OpenLoop(Refusing, batches, classes=CLASSES, rate=100, seconds=0.5, threads=2)
    result = load.start().wait()
    assert result["refused"] > 0 and result["answered"] > 0 and accounted(result)
    assert set(result["kinds"]) == {"refused: HTTP 503, Retry-After 1"}
    assert result["failed"] == result["refused"]
    load = openloop.OpenLoop(Raising, batches, classes=CLASSES, rate=100, seconds=0.5, threads=2)
    result = load.start().wait()
    assert result["errors"] == result["scheduled"] > 0 and accounted(result)
    assert result["kinds"] == {"errors: RuntimeError": result["errors"]}
    assert "boom" in result["examples"]["errors: RuntimeError"]
    assert result["p50_ms"] is None and result["achieved_rps"] == 0


def test_an_open_ended_load_stops_and_checks_answers_against_the_expected_ones():
    batch = np.zeros((2, 8, 8), dtype=np.float32)
    right = np.full((2, CLASSES), 1 / CLASSES, dtype=np.float32)

    class Predictor:
        def predict(self, batch):
            return right

    load = openloop.OpenLoop(Predictor, [batch], expected=[right], rate=200, threads=2).start()
    deadline = time.monotonic() + 30
    while load.snapshot()["answered"] < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    result = load.stop()
    assert result["answered"] >= 5 and result["failed"] == 0 and accounted(result)
    wrong = openloop.OpenLoop(Predictor, [batch], expected=[right * 2], rate=200, seconds=0.2, threads=1).start().wait()
    assert wrong["errors"] == wrong["scheduled"] > 0 and set(wrong["kinds"]) == {"errors: WrongAnswer"}


def test_the_generator_reports_its_own_cpu_and_that_of_a_process_tree():
    import os

    images = np.zeros((2, 8, 8), dtype=np.float32)
    result = openloop.run(SlowPredictor, images, CLASSES, rate=5, seconds=0.5, threads=2,
                          servers={"me": os.getpid()})
    generator = result["generator"]
    assert generator["cores_allowed"] == len(os.sched_getaffinity(0))
    assert generator["cpu_cores"] >= 0 and generator["cpu_share"] == pytest.approx(
        generator["cpu_cores"] / generator["cores_allowed"], abs=1e-3)
    assert set(result["servers_cpu_cores"]) == {"me"} and result["servers_cpu_cores"]["me"] >= 0


def test_a_malformed_answer_is_an_error():
    class Wrong:
        def predict(self, batch):
            return np.zeros((len(batch), 3))

    with pytest.raises(ValueError, match="malformed answer: shape"):
        openloop.run(Wrong, np.zeros((2, 8, 8), dtype=np.float32), CLASSES, rate=10, seconds=0.5, threads=1)


def step(rate, p99, errors=0, generator_why=""):
    return {"offered_rps": rate, "achieved_rps": rate, "p50_ms": p99 / 2, "p99_ms": p99, "failed": errors,
            "refused": 0, "errors": errors, "not_sent": 0, "generator_limited": bool(generator_why),
            "generator": {"cpu_cores": 0.5, "cpu_share": 0.25, "limited": bool(generator_why), "why": generator_why}}


def server_of_capacity(capacity, log=None):
    """A fake server: p99 10 ms up to `capacity` req/s, 200 ms past it; each offered rate appended to `log`."""
    def run_step(rate):
        if log is not None:
            log.append(rate)
        return step(rate, 10 if rate <= capacity else 200)
    return run_step


def quiet(_):
    pass


@pytest.mark.parametrize("capacity", [37.0, 437.0, 1000.0, 2999.0])
def test_the_goodput_is_bracketed_then_bisected_to_within_ten_percent(capacity):
    offered = []
    found = sweep.find_capacity(server_of_capacity(capacity, offered), sweep.Bounds(10, 3000), retries=0,
                                progress=quiet)
    low, high = found["bracket_rps"]
    assert found["goodput_rps"] == found["capacity_rps"] == low <= capacity < high <= low * 1.10
    assert found["bracket_within"] <= 0.10 and not found["reached_max"] and not found["generator_limited"]
    assert [s["offered_rps"] for s in found["steps"]] == offered  # every step recorded, in the order run
    doublings = [r for r in offered if r <= low * 2 and r in sweep.Bounds(10, 3000).bracket_rates()]
    assert len(offered) - len(doublings) <= 4  # a 2x bracket reaches 10% in at most four bisections


def test_a_server_failing_by_errors_not_latency_is_bounded_the_same_way():
    found = sweep.find_capacity(lambda rate: step(rate, 1, errors=int(rate > 150)), sweep.Bounds(10, 3000),
                                retries=0, progress=quiet)
    low, high = found["bracket_rps"]
    assert low <= 150 < high <= low * 1.1


def test_a_goodput_below_the_first_rate_is_bracketed_downwards_and_none_at_all_says_so():
    offered = []
    below = sweep.find_capacity(server_of_capacity(5.2, offered), sweep.Bounds(10, 3000), retries=0, progress=quiet)
    low, high = below["bracket_rps"]
    assert offered[:2] == [10, 5] and low <= 5.2 < high <= low * 1.1 and not below["below_start"]
    offered = []
    none = sweep.find_capacity(server_of_capacity(0.1, offered), sweep.Bounds(10, 3000), retries=0, progress=quiet)
    assert offered == [10, 5, 2.5, 1.2, 0.6]  # down to start / factor**4
    assert none["goodput_rps"] == 0 and none["below_start"] and none["bracket_rps"] == [0, 0.6]
    assert "nothing held down to 0.6 req/s" in sweep.describe(none)
    above = sweep.find_capacity(server_of_capacity(1e9), sweep.Bounds(10, 3000), retries=0, progress=quiet)
    assert above["goodput_rps"] == 3000 and above["reached_max"] and above["bracket_rps"] == [3000, None]
    assert [s["offered_rps"] for s in above["steps"]][-2:] == [2560, 3000]  # the maximum itself is tried


def test_a_failing_step_is_run_once_more_before_it_counts():
    tries = iter([step(100, 10), step(200, 90), step(200, 20), step(400, 90), step(400, 95),
                  step(282.8, 10), step(336.3, 10), step(366.8, 90), step(366.8, 90)])
    found = sweep.find_capacity(lambda rate: next(tries), sweep.Bounds(100, 3000), retries=1, progress=quiet)
    assert found["bracket_rps"] == [336.3, 366.8]
    assert [s["attempts"] for s in found["steps"]] == [1, 2, 2, 1, 1, 2]


def test_the_generator_limit_of_the_bounding_step_marks_the_goodput():
    def run_step(rate):
        return step(rate, 10) if rate <= 300 else step(rate, 80, generator_why="send lag p99 25 ms > 10 ms")

    found = sweep.find_capacity(run_step, sweep.Bounds(10, 3000), retries=0, cores=2, progress=quiet)
    low, high = found["bracket_rps"]
    assert found["generator_limited"] and found["why"] == f"at {high:g} req/s: send lag p99 25 ms > 10 ms"
    assert "GENERATOR-LIMITED" in sweep.describe(found) and found["stopped_at_rps"] == high
    clean = sweep.find_capacity(server_of_capacity(300), sweep.Bounds(10, 3000), retries=0, progress=quiet)
    assert not clean["generator_limited"] and clean["why"] == "" and "GENERATOR" not in sweep.describe(clean)


def test_goodput_per_core_allowed_and_per_core_the_servers_used():
    def run_step(rate):
        return {**step(rate, 10 if rate <= 400 else 200), "servers_cpu_cores": {"torchserve": 0.8, "tfserving": 0.2}}

    found = sweep.find_capacity(run_step, sweep.Bounds(100, 3000), retries=0, cores=2, progress=quiet)
    assert found["cores"] == 2 and found["rps_per_core"] == round(found["goodput_rps"] / 2, 1)
    assert found["rps_per_server_core"] == round(found["goodput_rps"] / 1.0, 1)


def test_the_search_bounds():
    assert sweep.ladder(20, 2, 200) == [20, 40, 80, 160]
    assert sweep.Bounds(20, 200).bracket_rates() == [20, 40, 80, 160, 200]
    assert sweep.Bounds(20, 160).bracket_rates() == [20, 40, 80, 160]
    with pytest.raises(ValueError, match="--factor > 1"):
        sweep.Bounds(20, 200, factor=1)
    with pytest.raises(ValueError, match="--precision must be > 0 and below --factor - 1"):
        sweep.Bounds(20, 200, factor=1.05, precision=0.1)


class OneAtATime:
    """A fake server that answers one request at a time in 10 ms: at most 100 req/s, fewer within 50 ms."""

    lock = threading.Lock()

    def predict(self, batch):
        with OneAtATime.lock:
            time.sleep(0.01)
        return np.full((len(batch), CLASSES), 1 / CLASSES, dtype=np.float32)


@pytest.mark.slow
def test_the_search_on_the_load_engine_against_a_server_of_known_capacity():
    images = np.zeros((4, 8, 8), dtype=np.float32)
    found = sweep.find_capacity(lambda rate: openloop.run(OneAtATime, images, CLASSES, rate, 0.6, threads=8),
                                sweep.Bounds(5, 400), retries=0, progress=quiet)
    low, high = found["bracket_rps"]
    assert 5 <= low < 100 and high <= low * 1.1  # never above what one 10 ms server can answer
    failing = [s for s in found["steps"] if s["offered_rps"] == high]
    assert failing and not sweep.passes(failing[0])


def test_a_variant_root_links_the_model_files_and_keeps_its_own_run_folder(tmp_path):
    from benchmarks import variants
    from core import manifest, registry
    from training.spec import digits_spec, write_spec

    root = tmp_path / "artifacts"
    (root / "data").mkdir(parents=True)
    write_spec(digits_spec(), root / "spec.json")
    # A stand-in for every file the model servers' targets run, each in the manifest (TF Serving: version 1).
    (root / "tfserving" / "digits" / "1").mkdir(parents=True)
    (root / "tfserving" / "digits" / "1" / "saved_model.pb").write_text("model")
    entries = {"tfserving_v1": {"path": "tfserving/digits/1"}}
    for name in registry.served():
        artifact = registry.TARGETS[name].artifact
        if artifact is not None:
            entries[artifact] = {"path": f"{artifact}/{artifact}.bin"}
            (root / artifact).mkdir(exist_ok=True)
            (root / artifact / f"{artifact}.bin").write_text("model")
    manifest.manifest_path(root).write_text(json.dumps(entries))
    linked = [*variants.SHARED, *variants.model_folders(root)]
    assert set(linked) == {*variants.SHARED, "tfserving", *(entry["path"].split("/")[0] for entry in entries.values())}
    variant = variants.prepare(root, "tuned")
    assert variant == root / "load" / "tuned"
    assert all((variant / item).resolve() == (root / item).resolve() for item in linked)
    assert variants.prepare(root, "tuned") == variant  # again: nothing to do
    assert not (variant / "run").exists()  # the runner makes the variant's own run folder
    assert not (variant / "web").exists()  # the page is not a variant's


def test_a_variant_of_an_unexported_root_names_what_is_missing(tmp_path):
    from benchmarks import variants

    with pytest.raises(FileNotFoundError, match="manifest.json not found: run `make train export` first"):
        variants.prepare(tmp_path, "tuned")


# ---- how each request's end is named (the engine's and the burst tool's accounting) ----

def test_burst_names_every_way_a_request_can_end():

    import aiohttp
    import grpc

    from serving.rest import RestError
    from serving.retry import TORCHSERVE_QUEUE_FULL

    class Rpc(grpc.RpcError):
        def __init__(self, code, details=""):
            self._code, self._details = code, details

        def code(self):
            return self._code

        def details(self):
            return self._details

    assert openloop.classify(RestError(503, "busy", "1")) == ("refused", "HTTP 503, Retry-After 1")
    assert openloop.classify(RestError(429, "slow down")) == ("refused", "HTTP 429")
    assert openloop.classify(Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!")) == (
        "refused", "RESOURCE_EXHAUSTED")
    assert openloop.classify(Rpc(grpc.StatusCode.INTERNAL, f'Model "m" {TORCHSERVE_QUEUE_FULL}.')) == (
        "refused", "INTERNAL (TorchServe job queue full)")
    assert openloop.classify(Rpc(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")) == ("reset", "UNAVAILABLE")
    assert openloop.classify(Rpc(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this task was "
                                 "submitted is full; currently 1 batches enqueued and max_enqueued_batches is 1")) == (
        "refused", "UNAVAILABLE (batch queue full)")
    assert openloop.classify(aiohttp.ServerDisconnectedError()) == ("reset", "ServerDisconnectedError")
    assert openloop.classify(ConnectionResetError("peer")) == ("reset", "ConnectionResetError")
    assert openloop.classify(TimeoutError()) == ("timed_out", "timeout")
    assert openloop.classify(Rpc(grpc.StatusCode.DEADLINE_EXCEEDED)) == ("timed_out", "DEADLINE_EXCEEDED")
    assert openloop.classify(RestError(500, "boom")) == ("errors", "HTTP 500")
    assert openloop.classify(Rpc(grpc.StatusCode.INTERNAL, "boom")) == ("errors", "INTERNAL")
    assert openloop.classify(ValueError("malformed answer")) == ("errors", "ValueError")


def test_burst_summary_takes_the_largest_burst_that_dropped_nothing():
    from benchmarks import burst

    def run(connections, answered, refused=0, reset=0, p99=5.0):
        counts = {"answered": answered, "refused": refused, "reset": reset, "timed_out": 0, "errors": 0}
        return {"target": "t", "connections": connections, "p99_ms": p99, "held": burst.held(counts), **counts}

    runs = [run(16, 80), run(64, 300, refused=20, p99=9.0), run(256, 1000, reset=280)]
    assert burst.summary(runs) == {"t": {"largest_held": 64, "p99_ms_at_largest_held": 9.0,
                                         "largest_answered_in_full": 16, "largest_tried": 256}}


def test_burst_leaves_a_high_enough_open_files_limit_alone():
    import resource

    from benchmarks import burst

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert burst.ensure_open_files(16) == soft
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft
