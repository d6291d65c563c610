"""The batcher and the batching parameters file, in-process on a stand-in model (no TensorFlow, no server).

The live server over REST and gRPC is tests/integration/test_tfserving_batching.py; here the rules
themselves: TF Serving's own config files parse to what they say, every row comes back to its request,
padding, timeouts, the queue's refusals, and what the flags refuse.
"""
from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from serving.tfserving import batching_params
from serving.tfserving.batcher import Scheduler
from serving.tfserving.compat_models import ServingError

# tensorflow_serving/servables/tensorflow/testdata/batching_config.txt, as in TF Serving's repository
# (also the example of g3doc/serving_config.md).
TF_SERVING_TESTDATA = """max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""
EVERY_FIELD = """# every field this server honours, in the forms protobuf's text format allows
max_batch_size { value: 16 }
batch_timeout_micros: { value: 2500 }
max_enqueued_batches { value: 3 }
num_batch_threads { value: 1 }
thread_pool_name { value: "tuned_pool" }
allowed_batch_sizes: [2, 4]
allowed_batch_sizes: 16
pad_variable_length_inputs: true
"""


def params(**fields) -> batching_params.BatchingParameters:
    return batching_params.BatchingParameters(**{"num_batch_threads": 1, **fields})


class Model:
    """A stand-in model: doubles its input, records each batch it was given, optionally slowly."""

    def __init__(self, seconds: float = 0.0, gate: threading.Event | None = None):
        self.batches: list[np.ndarray] = []
        self.seconds, self.gate = seconds, gate

    def __call__(self, inputs: dict) -> dict:
        if self.gate is not None:
            self.gate.wait(30)
        self.batches.append(inputs["x"].copy())
        time.sleep(self.seconds)
        return {"y": inputs["x"] * 2, "first": inputs["x"].reshape(len(inputs["x"]), -1)[:, 0]}


@pytest.fixture
def scheduler():
    made = []

    def make(**fields):
        made.append(Scheduler(params(**fields)))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def rows(value: float, count: int, width: int = 3) -> np.ndarray:
    return np.full((count, width), value, np.float32)


def in_threads(calls: list) -> list:
    """Run each call on a thread of its own, all at once; each one's result or error, in order."""
    results: list = [None] * len(calls)

    def one(i):
        try:
            results[i] = calls[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_tf_servings_own_batching_config_file_means_what_it_says(tmp_path):
    path = tmp_path / "batching_config.txt"
    path.write_text(TF_SERVING_TESTDATA)
    assert batching_params.load(path) == batching_params.BatchingParameters(
        max_batch_size=128, batch_timeout_micros=0, max_enqueued_batches=1000000, num_batch_threads=8)


def test_every_field_is_read_and_absent_fields_take_tf_servings_defaults():
    read = batching_params.parse(EVERY_FIELD)
    assert read == batching_params.BatchingParameters(
        max_batch_size=16, batch_timeout_micros=2500, max_enqueued_batches=3, num_batch_threads=1,
        thread_pool_name="tuned_pool", allowed_batch_sizes=(2, 4, 16), pad_variable_length_inputs=True)
    empty = batching_params.parse("")
    assert (empty.max_batch_size, empty.batch_timeout_micros, empty.max_enqueued_batches) == (1000, 0, 10)
    assert empty.num_batch_threads >= 1 and empty.allowed_batch_sizes == ()
    assert [read.padded_size(n) for n in (1, 2, 3, 5, 16)] == [2, 2, 4, 16, 16]


def test_the_checked_in_batching_config_parses():
    from serving.tfserving import configs

    read = batching_params.load(configs.CONFIG_DIR / configs.CONFIG_FILES["batching"])
    assert read.max_batch_size >= 1 and read.num_batch_threads >= 1


@pytest.mark.parametrize("text, message", [
    ("max_batch_size { value: 8 }\nallowed_batch_sizes: [2, 4]\n",
     "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8"),
    ("allowed_batch_sizes: 8\n", "last entry was 8; expected 1000"),
    ("max_batch_sise { value: 8 }\n", 'has no field named "max_batch_sise"'),
    ("max_batch_size: 8\n", "max_batch_size"),  # a wrapper field needs { value: ... }, as for the real binary
    ("batch_timeout_micros { value: -1 }\n", "batch_timeout_micros must be non-negative; was -1"),
    ("max_enqueued_batches { value: 0 }\n", "max_enqueued_batches must be positive; was 0"),
    ("num_batch_threads { value: 0 }\n", "num_batch_threads must be positive; was 0"),
    ("enable_large_batch_splitting { value: true }\n", "enable_large_batch_splitting is not supported"),
])
def test_files_the_real_server_refuses_are_refused_with_its_words(text, message):
    with pytest.raises(batching_params.BatchingConfigError, match="^the batching parameters: .*") as refused:
        batching_params.parse(text)
    assert message in str(refused.value)


def test_concurrent_requests_of_any_size_get_exactly_their_rows(scheduler):
    model = Model(seconds=0.002)
    queue = scheduler(max_batch_size=16, batch_timeout_micros=5000, max_enqueued_batches=1000).add_queue(model, "m:1:s")
    sizes = [1 + (i * 7) % 16 for i in range(60)]  # 1..16 rows, mixed
    answers = in_threads([lambda i=i, n=n: queue.schedule({"x": rows(i, n)}) for i, n in enumerate(sizes)])
    for i, (n, answer) in enumerate(zip(sizes, answers, strict=True)):
        assert not isinstance(answer, Exception), answer
        np.testing.assert_array_equal(answer["y"], rows(2 * i, n))
        np.testing.assert_array_equal(answer["first"], np.full(n, i, np.float32))
    assert sum(len(batch) for batch in model.batches) == sum(sizes)
    assert max(len(batch) for batch in model.batches) <= 16
    assert len(model.batches) < len(sizes)  # merged: fewer model calls than requests


def test_a_batch_is_padded_to_the_next_allowed_size_with_the_last_tasks_first_row(scheduler):
    gate = threading.Event()
    model = Model(gate=gate)
    sched = scheduler(max_batch_size=8, batch_timeout_micros=0, allowed_batch_sizes=(4, 8), max_enqueued_batches=10)
    queue = sched.add_queue(model, "m:1:s")
    results = held_batch(sched, queue, gate, [{"x": rows(1, 2)}, {"x": rows(2, 1)}])
    assert [len(batch) for batch in model.batches] == [4, 4]  # 1 row padded to 4; 2 + 1 rows padded to 4
    np.testing.assert_array_equal(model.batches[0], rows(0, 4))
    # Arrival order decides which task is last: the padding repeats its first row.
    assert tuple(model.batches[1][:, 0]) in {(1, 1, 2, 2), (2, 1, 1, 1)}
    np.testing.assert_array_equal(results[0]["y"], rows(2, 2))
    np.testing.assert_array_equal(results[1]["y"], rows(4, 1))
    assert {execution: h.sum for execution, h in sched.metrics.padding.items()} == {4: 3 + 1}


def held_batch(sched, queue, gate, requests: list[dict]) -> list:
    """Each request's answer or error, all of them queued into one open batch while the only thread is held
    (busy with a first, lone request at the model's gate); then the gate opens."""
    first = threading.Thread(target=queue.schedule, args=({"x": rows(0, 1)},))
    first.start()
    assert wait_until(lambda: queue.in_progress == 1)  # taken by the thread, which waits at the gate
    results: list = [None] * len(requests)

    def one(i):
        try:
            results[i] = queue.schedule(requests[i])
        except ServingError as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: sched.metrics.input_size.count == 1 + len(requests))
    gate.set()
    for thread in [first, *threads]:
        thread.join(30)
    return results


@pytest.mark.parametrize("pad", [True, False])
def test_variable_length_inputs_are_padded_only_when_asked(scheduler, pad):
    gate = threading.Event()
    model = Model(gate=gate)
    sched = scheduler(max_batch_size=8, batch_timeout_micros=0, pad_variable_length_inputs=pad)
    queue = sched.add_queue(model, "m:1:s")
    short, long = np.array([[5, 6]], np.float32), np.array([[1, 2, 3]], np.float32)
    results = held_batch(sched, queue, gate, [{"x": short}, {"x": long}])
    if pad:  # the short row is padded with its own first value; each request gets its row back, padded
        assert sorted(model.batches[1][:, 2].tolist()) == [3, 5]
        np.testing.assert_array_equal(results[0]["y"], [[10, 12, 10]])
        np.testing.assert_array_equal(results[1]["y"], [[2, 4, 6]])
    else:
        for result in results:
            assert isinstance(result, ServingError) and result.code == grpc.StatusCode.FAILED_PRECONDITION
            assert result.message.startswith("Tensors with name 'x' from different tasks have different shapes and "
                                             "padding is turned off. Set pad_variable_length_inputs to true")
        assert len(model.batches) == 1  # the model never saw the mixed batch


def test_the_open_batch_waits_for_the_timeout_unless_it_is_full(scheduler):
    model = Model()
    queue = scheduler(max_batch_size=4, batch_timeout_micros=300_000, max_enqueued_batches=10).add_queue(model, "m:1:s")
    began = time.monotonic()
    queue.schedule({"x": rows(1, 1)})
    assert time.monotonic() - began >= 0.3  # alone, it waited for company until the timeout
    long_wait = scheduler(max_batch_size=4, batch_timeout_micros=600_000_000).add_queue(model, "m:2:s")
    full = threading.Thread(target=long_wait.schedule, args=({"x": rows(1, 4)},))
    full.start()
    full.join(60)
    assert not full.is_alive()  # a full batch runs at once, not after the ten-minute timeout
    assert [len(batch) for batch in model.batches] == [1, 4]


def test_requests_over_max_batch_size_and_past_a_full_queue_are_refused_at_once(scheduler):
    gate = threading.Event()
    model = Model(gate=gate)
    sched = scheduler(max_batch_size=2, batch_timeout_micros=10_000_000, max_enqueued_batches=1)
    queue = sched.add_queue(model, "m:1:s")
    with pytest.raises(ServingError) as too_large:
        queue.schedule({"x": rows(1, 3)})
    assert too_large.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_large.value.message == "Task size 3 is larger than maximum input batch size 2"
    waiting = threading.Thread(target=queue.schedule, args=({"x": rows(1, 1)},))
    waiting.start()  # the open batch: 1 of 2 rows, waiting 10 s for company
    assert wait_until(lambda: sched.metrics.input_size.sum == 1)
    with pytest.raises(ServingError) as full:
        queue.schedule({"x": rows(2, 2)})  # does not fit; no room for a second batch
    assert full.value.code == grpc.StatusCode.UNAVAILABLE
    assert full.value.message == ("The batch scheduling queue to which this task was submitted is full; currently 1 "
                                  "batches enqueued and max_enqueued_batches is 1")
    answer = []
    fits = threading.Thread(target=lambda: answer.append(queue.schedule({"x": rows(3, 1)})))
    fits.start()  # fits the open batch: fills it, so it runs without waiting for the timeout
    gate.set()
    for thread in (waiting, fits):
        thread.join(30)
    np.testing.assert_array_equal(answer[0]["y"], rows(6, 1))
    assert [len(batch) for batch in model.batches] == [2]


def test_one_scheduler_serves_every_version_round_robin_and_a_removed_queue_drains(scheduler):
    sched = scheduler(max_batch_size=4, batch_timeout_micros=0, max_enqueued_batches=100)
    old, new = Model(seconds=0.001), Model(seconds=0.001)
    queues = [sched.add_queue(old, "m:1:s"), sched.add_queue(new, "m:2:s")]
    answers = in_threads([lambda i=i: queues[i % 2].schedule({"x": rows(i, 1)}) for i in range(40)])
    assert all(np.array_equal(a["y"], rows(2 * i, 1)) for i, a in enumerate(answers))
    assert old.batches and new.batches
    sched.remove_queue(queues[0])
    assert wait_until(lambda: queues[0] not in sched.queues)
    late = queues[0].schedule({"x": rows(5, 1)})  # a request that still reaches a dropped queue is answered
    np.testing.assert_array_equal(late["y"], rows(10, 1))


def test_a_model_error_reaches_every_request_of_its_batch(scheduler):
    def broken(inputs):
        raise RuntimeError("out of memory")

    queue = scheduler(max_batch_size=4).add_queue(broken, "m:1:s")
    with pytest.raises(ServingError) as failed:
        queue.schedule({"x": rows(1, 2)})
    assert failed.value.code == grpc.StatusCode.INTERNAL and "out of memory" in failed.value.message


def test_the_metrics_page_carries_tf_servings_batching_histograms(scheduler):
    sched = scheduler(max_batch_size=8, allowed_batch_sizes=(4, 8))
    sched.add_queue(Model(), "m:1:s").schedule({"x": rows(1, 3)})
    text = sched.metrics.text()
    prefix = ":tensorflow:serving:batching_session:"
    for line in (f"{prefix}input_batch_size_sum{{}} 3", f"{prefix}input_batch_size_count{{}} 1",
                 f"{prefix}processed_batch_size_sum{{}} 4", f'{prefix}padding_size_sum{{execution_batch_size="4"}} 1',
                 f'{prefix}processed_batch_size_bucket{{le="8"}} 1', f'{prefix}processed_batch_size_bucket{{le="4"}} 0',
                 f'{prefix}queuing_latency_count{{thread_pool_name="model_server_batch_threads"}} 1'):
        assert line in text.splitlines(), line


@pytest.mark.parametrize("flags, message", [
    (["--batching_parameters_file=x.config"], "batching_parameters_file is set without setting "
                                              "server_options.enable_batching to true"),
    (["--enable_batching", "--batching_parameters_file=missing.config"], "missing.config"),
])
def test_the_flags_tf_serving_refuses_stop_the_server_before_it_loads_anything(flags, message, tmp_path):
    from serving.tfserving import compat_server

    with pytest.raises(SystemExit) as stopped:
        compat_server.main(["--model_config_file", str(tmp_path / "models.config"), *flags])
    assert message in str(stopped.value)


def test_enable_batching_without_a_file_takes_tf_servings_defaults():
    import argparse

    from serving.tfserving import compat_server

    read = compat_server.read_batching(argparse.Namespace(enable_batching=True, batching_parameters_file=None))
    assert read == batching_params.BatchingParameters()
    assert compat_server.read_batching(argparse.Namespace(enable_batching=False, batching_parameters_file=None)) is None


def wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
