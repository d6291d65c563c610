"""The compatible server batching live, as TF Serving does: its config files, over REST and gRPC at once.

Each server here is the compatible server of this module's own, started with `--enable_batching
--batching_parameters_file` over the session's trained SavedModel, with a file in the format the real
tensorflow_model_server reads. Batch sizes, padding and time queued are read from the server's own
Prometheus page (TF Serving's batching_session histograms); every answer is compared with the
model called in-process one image at a time (no batching).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests

from serving.rest import RestError
from serving.retry import NO_RETRY
from tests.conftest import built, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.concerns("tfserving")]
TOLERANCE = 1e-5
PREFIX = ":tensorflow:serving:batching_session:"
# A patient server: a batch waits up to 3 s for company, holds at most 8 images, runs padded to 4 or
# 8, on one thread; only the open batch may be queued (max_enqueued_batches 1).
PATIENT = """# BatchingParameters, as tensorflow_model_server --batching_parameters_file reads it
max_batch_size { value: 8 }
batch_timeout_micros { value: 3000000 }
max_enqueued_batches { value: 1 }
num_batch_threads { value: 1 }
allowed_batch_sizes: [4, 8]
"""
# A busy server: short waits, room for a crowd, two threads.
BUSY = """max_batch_size { value: 32 }
batch_timeout_micros { value: 20000 }
max_enqueued_batches { value: 1000 }
num_batch_threads { value: 2 }
"""
PATIENT_WAIT_S = 3.0


class BatchingServer:
    def __init__(self, root: Path, endpoints, metrics_url: str):
        from serving.tfserving.client import TFServingGrpc, TFServingRest

        self.grpc = TFServingGrpc(endpoints, root=root, retry=NO_RETRY)
        self.rest = TFServingRest(endpoints, root=root, retry=NO_RETRY)
        self.metrics_url = metrics_url

    def metrics(self) -> dict:
        """{metric line's name and labels: value} of the batching histograms' sums and counts."""
        text = requests.get(self.metrics_url, timeout=10).text
        return {name: float(value) for name, value in re.findall(rf"^({re.escape(PREFIX)}\S+(?:_sum|_count)\S*) (\S+)$",
                                                                 text, re.M)}

    def batches(self, before: dict) -> dict:
        """What was merged since `before`: requests and their images, batches run and their padded size, padding."""
        now = self.metrics()

        def delta(key: str) -> int:
            return round(now.get(PREFIX + key, 0) - before.get(PREFIX + key, 0))

        padding = {int(m): delta(f'padding_size_sum{{execution_batch_size="{m}"}}')
                   for m in re.findall(r'padding_size_sum\{execution_batch_size="(\d+)"\}', " ".join(now))}
        return {"requests": delta("input_batch_size_count{}"), "images": delta("input_batch_size_sum{}"),
                "batches": delta("processed_batch_size_count{}"), "batch_images": delta("processed_batch_size_sum{}"),
                "padding": {size: rows for size, rows in padding.items() if rows}}


@contextmanager
def batching_server(root: Path, folder: Path, batching: str, every_version: bool = False):
    """The compatible server over `root`'s SavedModel with `batching` as its batching parameters file;
    `every_version`: it serves every version on disk (version policy `all`), not the newest only."""
    from serving.endpoints import free_endpoints
    from serving.tfserving import configs

    files = configs.render(root, folder)
    files["batching"].write_text(batching)
    if every_version:
        text = files["models"].read_text()
        policy = re.sub(r"model_version_policy \{.*?\n    \}", "model_version_policy { all {} }", text, flags=re.S)
        assert policy != text, text
        files["models"].write_text(policy)
    endpoints = free_endpoints(root=root)
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.tfserving.compat_server", f"--port={endpoints.ports['tfserving_grpc']}",
         f"--rest_api_port={endpoints.ports['tfserving_rest']}", f"--model_config_file={files['models']}",
         "--enable_batching", f"--batching_parameters_file={files['batching']}",
         f"--monitoring_config_file={files['monitoring']}", f"--host={endpoints.host}"],
        cwd=Path(__file__).resolve().parents[2], stdout=log, stderr=subprocess.STDOUT)
    try:
        status = f"{endpoints.url('tfserving_rest')}/v1/models/{endpoints.model_name}"
        up = wait_for(lambda: process.poll() is not None or requests.get(status, timeout=2).ok, 120,
                      ignore=(requests.ConnectionError,))
        assert up and process.poll() is None, (folder / "server.log").read_text()[-3000:]
        yield BatchingServer(root, endpoints, endpoints.url("tfserving_rest") + configs.metrics_path())
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def exported(trained_artifacts):
    return built(trained_artifacts, "export-tfserving")


@pytest.fixture(scope="module")
def patient(exported, tmp_path_factory):
    with batching_server(exported, tmp_path_factory.mktemp("patient"), PATIENT) as server:
        yield server


@pytest.fixture(scope="module")
def busy(exported, tmp_path_factory):
    with batching_server(exported, tmp_path_factory.mktemp("busy"), BUSY) as server:
        yield server


@pytest.fixture(scope="module")
def two_versions(trained_artifacts, tmp_path_factory):
    """A server of two versions of the model (a copy of the session's, exported twice), batching patiently."""
    from serving.tfserving import export
    from tests.conftest import copy_trained

    folder = tmp_path_factory.mktemp("versions")
    root = built(copy_trained(trained_artifacts, folder / "artifacts"), "export-tfserving")
    export.export(root)  # version 2, recorded in the manifest
    with batching_server(root, folder, PATIENT, every_version=True) as server:
        assert sorted(version for version, _ in server.grpc.status()) == [1, 2]
        yield server


@pytest.fixture(scope="module")
def unbatched(exported, test_split):
    """The SavedModel in-process, each test image alone (batch 1): what every batched answer must equal."""
    from core import registry

    model = registry.load(registry.IN_PROCESS["tensorflow"], root=exported)
    images = test_split.x[:64]
    return images, np.concatenate([model.predict(images[i:i + 1]) for i in range(len(images))])


def check_rows(answer: np.ndarray, expected: np.ndarray) -> None:
    assert answer.shape == expected.shape
    np.testing.assert_array_equal(answer.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(answer, expected, atol=TOLERANCE)


def test_rest_and_grpc_requests_share_one_batch_and_each_gets_its_own_rows(patient, unbatched):
    images, expected = unbatched
    before = patient.metrics()
    # 3 + 2 + 3 images: whatever the arrival order, they fill the batch of 8 and it runs without waiting.
    parts = [("grpc", 0, 3), ("rest", 3, 5), ("grpc", 5, 8)]
    with ThreadPoolExecutor(len(parts)) as pool:
        answers = list(pool.map(lambda p: getattr(patient, p[0]).predict(images[p[1]:p[2]]), parts))
    for (_, start, stop), answer in zip(parts, answers, strict=True):
        check_rows(answer, expected[start:stop])
    assert patient.batches(before) == {"requests": 3, "images": 8, "batches": 1, "batch_images": 8, "padding": {}}


@pytest.mark.parametrize("protocol, count, padded", [("rest", 3, 4), ("grpc", 5, 8)])
def test_a_lone_request_waits_for_the_timeout_and_runs_padded_to_an_allowed_size(patient, unbatched, protocol, count,
                                                                                 padded):
    images, expected = unbatched
    before = patient.metrics()
    began = time.monotonic()
    check_rows(getattr(patient, protocol).predict(images[10:10 + count]), expected[10:10 + count])
    assert time.monotonic() - began >= PATIENT_WAIT_S  # batch_timeout_micros: it waited for company
    assert patient.batches(before) == {"requests": 1, "images": count, "batches": 1, "batch_images": padded,
                                       "padding": {padded: padded - count}}
    waited_us = patient.metrics()[f'{PREFIX}queuing_latency_sum{{thread_pool_name="model_server_batch_threads"}}'] - \
        before.get(f'{PREFIX}queuing_latency_sum{{thread_pool_name="model_server_batch_threads"}}', 0)
    assert waited_us >= PATIENT_WAIT_S * 1e6


def test_a_request_over_max_batch_size_is_refused_both_ways(patient, unbatched):
    images, expected = unbatched
    with pytest.raises(grpc.RpcError) as refused:
        patient.grpc.predict(images[:9])
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Task size 9 is larger than maximum input batch size 8")
    with pytest.raises(RestError) as too_many:
        patient.rest.predict(images[:9])
    # REST names it in the project's one contract check's words, with the batching file's limit.
    assert too_many.value.status == 400
    assert "holds 9 images, more than the 8 allowed per request" in too_many.value.message
    check_rows(patient.grpc.predict(images[:8]), expected[:8])  # still serving; a full batch runs at once


def test_a_full_queue_is_refused_at_once_with_tf_servings_words_and_the_queued_request_is_answered(patient, unbatched):
    images, expected = unbatched
    before = patient.metrics()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(patient.grpc.predict, images[20:21])  # the open batch: 1 of 8, waiting 3 s
        assert wait_for(lambda: patient.batches(before)["requests"] == 1, 30)
        full = ("The batch scheduling queue to which this task was submitted is full; currently 1 batches enqueued "
                "and max_enqueued_batches is 1")
        with pytest.raises(grpc.RpcError) as refused:
            patient.grpc.predict(images[:8])  # 1 + 8 > 8, and no room for a second batch
        assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.UNAVAILABLE, full)
        with pytest.raises(RestError) as busy_rest:
            patient.rest.predict(images[:8])
        assert (busy_rest.value.status, busy_rest.value.message) == (503, full)
        check_rows(waiting.result(timeout=60), expected[20:21])
    assert patient.batches(before) == {"requests": 1, "images": 1, "batches": 1, "batch_images": 4, "padding": {4: 3}}


def test_a_crowd_of_mixed_sizes_over_both_protocols_is_merged_and_split_back_exactly(busy, unbatched):
    images, expected = unbatched
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(120):
        count = int(rng.integers(1, 17))
        start = int(rng.integers(0, len(images) - count + 1))
        jobs.append(("grpc" if i % 2 else "rest", start, start + count))
    before = busy.metrics()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda job: getattr(busy, job[0]).predict(images[job[1]:job[2]]), jobs))
    for (_, start, stop), answer in zip(jobs, answers, strict=True):
        check_rows(answer, expected[start:stop])
    merged = busy.batches(before)
    sent = sum(stop - start for _, start, stop in jobs)
    assert (merged["requests"], merged["images"], merged["batch_images"]) == (len(jobs), sent, sent)
    assert merged["padding"] == {}
    assert merged["batches"] < len(jobs)  # 16 clients at once, 20 ms to fill a batch: requests were merged


def test_each_model_version_has_its_own_queue(two_versions, unbatched, spec):
    """Requests to versions 1 and 2 at once are never merged: two batches of 4, each answered by its version."""
    import tensorflow as tf

    images, expected = unbatched
    server = two_versions
    before = server.metrics()
    calls = [("grpc", 1, 0, 3), ("rest", 1, 3, 4), ("grpc", 2, 4, 6), ("rest", 2, 6, 8)]

    def send(call):
        protocol, version, start, stop = call
        if protocol == "grpc":
            response = server.grpc.predict_tensors({spec.input_name: images[start:stop]}, version=version)
            return response.model_spec.version.value, tf.make_ndarray(response.outputs[spec.output_name])
        answer = server.rest.predict_json({"instances": images[start:stop].tolist()}, version=version)
        return version, np.asarray(answer["predictions"], np.float32)

    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(send, calls))
    for (_, version, start, stop), (served, answer) in zip(calls, answers, strict=True):
        assert served == version
        check_rows(answer, expected[start:stop])  # both versions are the same model, exported twice
    # One batch per version (each 4 images, an allowed size: no padding), not one of 8.
    assert server.batches(before) == {"requests": 4, "images": 8, "batches": 2, "batch_images": 8, "padding": {}}
