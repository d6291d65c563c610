"""Server-side batching with TF Serving's semantics: one scheduler, a queue per model version and signature.

    scheduler = Scheduler(batching_params.load(path))        # num_batch_threads threads, shared
    queue = scheduler.add_queue(run, "digits:1:serving_default")  # run({input: batch}) -> {output: batch}
    outputs = queue.schedule({"image": array})                # blocks until its batch ran; its rows only
    answer = queue.submit({"image": array})                   # the same as a concurrent.futures.Future
    outputs = await asyncio.wrap_future(answer)               # ... awaited on an event loop
    scheduler.remove_queue(queue)                             # the version was unloaded: drain, then drop

The behaviour follows TF Serving's SharedBatchScheduler and BatchingSession (tensorflow/core/
kernels/batching_util/shared_batch_scheduler.h, tensorflow_serving/batching/batching_session.cc),
without large batch splitting:
- A queue is a list of batches, the last one open. A request (a task of N rows) larger than
  max_batch_size is refused: INVALID_ARGUMENT "Task size N is larger than maximum input batch
  size M". A task that does not fit in the open batch closes it and opens a new one, unless the
  queue already holds max_enqueued_batches batches (the open one included): then it is refused,
  UNAVAILABLE "The batch scheduling queue to which this task was submitted is full; currently K
  batches enqueued and max_enqueued_batches is M" (REST 503). A batch taken by a thread no longer
  counts. Nothing waits without bound: a request is queued or refused at once.
- num_batch_threads threads serve every queue round-robin. A closed batch is taken at once; the
  open batch when it is full, or when batch_timeout_micros have passed since its first task came,
  or at once when its queue is closing. With timeout 0 a lone request runs as soon as a thread is
  free, and requests arriving while the threads are busy are merged into the next batch.
- A batch's inputs are concatenated in arrival order and padded up to the smallest of
  allowed_batch_sizes that holds them, with copies of the first row of the last task; with
  pad_variable_length_inputs, each task's tensors are first padded to the largest size of every
  other dimension with their own first value (otherwise tensors of different shapes in one batch
  are FAILED_PRECONDITION). The outputs are split back by each task's row count, the padding rows
  dropped: each request gets exactly the rows of its own inputs.
- The metrics TF Serving records, named as its Prometheus page names them (metrics_text()).

Batches run under a watchdog (serving/watchdog.py, `Scheduler(params, timeout=5.0)`): a batch that
has run `timeout` seconds answers each of its requests DEADLINE_EXCEEDED and its thread is
replaced, so the callers that queued it never wait for ever and the scheduler keeps its threads.
A caller therefore waits on its batch alone, on its own thread, with no model thread of its own.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np

from serving import watchdog
from serving.tfserving.batching_params import BatchingParameters
from serving.tfserving.compat_models import ServingError

log = logging.getLogger("compat_server")
PREFIX = ":tensorflow:serving:batching_session:"


@dataclass
class Task:
    inputs: dict  # input name -> array, the same number of rows each
    size: int
    enqueued: float  # time.monotonic()
    answer: futures.Future = field(default_factory=futures.Future)  # its rows of the outputs, or its error


class Batch:
    def __init__(self):
        self.tasks: list[Task] = []
        self.size = 0

    def add(self, task: Task) -> None:
        self.tasks.append(task)
        self.size += task.size


class Queue:
    """One model version's signature: its batches; run() computes a merged batch. Used under the scheduler's lock."""

    def __init__(self, scheduler: Scheduler, run, label: str):
        self.scheduler, self.run, self.label = scheduler, run, label
        self.params = scheduler.params
        self.batches: deque[Batch] = deque([Batch()])
        self.open_since = 0.0  # when the open batch got its first task
        self.in_progress = 0  # batches taken by a thread and not yet answered
        self.closed = False

    def schedule(self, inputs: dict) -> dict:
        """Queue one request's inputs and wait for its outputs (its rows of the batch it ran in)."""
        return self.submit(inputs).result()

    def submit(self, inputs: dict) -> futures.Future:
        """Queue one request's inputs; the future gets its outputs or its ServingError. A refusal
        (too large, queue full) raises here, at once."""
        size = len(next(iter(inputs.values())))
        task = Task(inputs, size, time.monotonic())
        self.scheduler.enqueue(self, task)
        return task.answer

    def add(self, task: Task) -> None:
        """Put a task in the open batch, or in a new one (shared_batch_scheduler.h, without splitting)."""
        limit = self.params.max_batch_size
        if task.size > limit:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"Task size {task.size} is larger than maximum input batch size {limit}")
        if self.batches[-1].size + task.size > limit:
            if len(self.batches) >= self.params.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full; currently "
                                   f"{len(self.batches)} batches enqueued and max_enqueued_batches is "
                                   f"{self.params.max_enqueued_batches}")
            self.batches.append(Batch())
        if not self.batches[-1].tasks:
            self.open_since = task.enqueued
        self.batches[-1].add(task)

    def due(self) -> float | None:
        """When the open batch may be taken (monotonic seconds), None while it is empty."""
        open_batch = self.batches[-1]
        if not open_batch.tasks:
            return None
        if self.closed or open_batch.size >= self.params.max_batch_size:
            return 0.0
        return self.open_since + self.params.batch_timeout_micros / 1e6

    def take(self, now: float) -> Batch | None:
        """The next batch to run, if one may run now (TF Serving's Queue::ScheduleBatch)."""
        if len(self.batches) == 1:
            due = self.due()
            if due is None or now < due:
                return None
            self.batches.append(Batch())
        self.in_progress += 1
        return self.batches.popleft()

    def idle(self) -> bool:
        return self.in_progress == 0 and len(self.batches) == 1 and not self.batches[0].tasks

    def process(self, batch: Batch) -> None:
        """Run one batch and hand each task its rows (or the batch's error). Never raises."""
        started = time.monotonic()
        padded = self.params.padded_size(batch.size)
        rows: list[dict] = []  # each task's rows of the outputs, once the batch ran
        error: ServingError | None = None  # the batch's failure; neither rows nor error: it was interrupted
        try:
            outputs = self.run(merge(batch.tasks, padded, self.params.pad_variable_length_inputs))
            for name, value in outputs.items():
                if np.ndim(value) == 0 or len(value) != padded:
                    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                       f"Batched output tensor {name!r}'s 0th dimension does not equal the sum of the "
                                       "0th dimension sizes of the input tensors")
            offsets = itertools.accumulate([0, *(task.size for task in batch.tasks)])
            rows = [{name: value[start:start + task.size] for name, value in outputs.items()}
                    for task, start in zip(batch.tasks, offsets, strict=False)]  # offsets has one more
        except ServingError as failure:
            error = failure
        except Exception as failure:  # the model failed on this batch: every request in it says so
            log.exception("%s: a batch of %d failed", self.label, batch.size)
            error = ServingError(grpc.StatusCode.INTERNAL, f"the batch failed: {failure}")
        finally:
            self.scheduler.metrics.batch(batch, padded, started)  # recorded before anyone is answered
            for task, answer in itertools.zip_longest(batch.tasks, rows):
                if answer is not None:
                    watchdog.settle(task.answer, result=answer)
                else:
                    watchdog.settle(task.answer, error=error or ServingError(grpc.StatusCode.INTERNAL,
                                                                             "the batch was interrupted"))


def merge(tasks: list[Task], padded: int, pad_variable_length: bool) -> dict:
    """The tasks' inputs concatenated in order, padded to `padded` rows with the last task's first row."""
    merged = {}
    for name in tasks[0].inputs:
        arrays = [task.inputs[name] for task in tasks]
        if pad_variable_length:
            arrays = pad_to_largest(arrays)
        elif any(a.shape[1:] != arrays[0].shape[1:] for a in arrays):
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Tensors with name '{name}' from different tasks have different shapes and padding "
                               "is turned off. Set pad_variable_length_inputs to true, or ensure that all tensors "
                               "with the same name have equal dimensions starting with the first dim.")
        rows = sum(len(a) for a in arrays)
        if padded > rows:
            arrays.append(np.repeat(arrays[-1][:1], padded - rows, axis=0))
        merged[name] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
    return merged


def pad_to_largest(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Each array padded at the end of every dimension but the first to the largest size among them,
    with its own first value (TF Serving's AddPadding)."""
    largest = np.max([a.shape for a in arrays], axis=0)
    out = []
    for a in arrays:
        widths = [(0, 0)] + [(0, int(big - have)) for big, have in zip(largest[1:], a.shape[1:], strict=True)]
        out.append(np.pad(a, widths, constant_values=a.flat[0]) if any(w for _, w in widths) else a)
    return out


class Histogram:
    """A TensorFlow monitoring Sampler as TF Serving's Prometheus page prints it (a value counts in the
    first bucket whose limit is above it)."""

    def __init__(self, limits: list[float]):
        self.limits, self.counts, self.sum, self.count = limits, [0] * (len(limits) + 1), 0.0, 0

    def add(self, value: float) -> None:
        self.counts[next((i for i, limit in enumerate(self.limits) if value < limit), len(self.limits))] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, total = [], 0
        for limit, count in zip([*(f"{limit:g}" for limit in self.limits), "+Inf"], self.counts, strict=True):
            total += count
            out.append(f'{name}_bucket{{{labels}{"," if labels else ""}le="{limit}"}} {total}')
        return out + [f"{name}_sum{{{labels}}} {self.sum:g}", f"{name}_count{{{labels}}} {total}"]


SIZE_BUCKETS = [2.0 ** i for i in range(14)]  # Buckets::Exponential(1, 2, 14)
LATENCY_BUCKETS = [100 * 1.2 ** i for i in range(51)]  # Buckets::Exponential(100, 1.2, 52), microseconds


class Metrics:
    """batching_session's samplers: input and processed batch sizes, padding, time queued (under the scheduler's
    lock)."""

    def __init__(self, pool: str, lock):
        self.pool, self.lock = pool, lock
        self.input_size, self.processed_size = Histogram(SIZE_BUCKETS), Histogram(SIZE_BUCKETS)
        self.padding: dict[int, Histogram] = {}
        self.queuing = Histogram(LATENCY_BUCKETS)

    def batch(self, batch: Batch, padded: int, started: float) -> None:
        with self.lock:
            self.processed_size.add(padded)
            self.padding.setdefault(padded, Histogram(SIZE_BUCKETS)).add(padded - batch.size)
            for task in batch.tasks:
                self.queuing.add((started - task.enqueued) * 1e6)

    def text(self) -> str:
        with self.lock:
            lines = [f"# TYPE {PREFIX}input_batch_size histogram", *self.input_size.lines(PREFIX + "input_batch_size"),
                     f"# TYPE {PREFIX}processed_batch_size histogram",
                     *self.processed_size.lines(PREFIX + "processed_batch_size"),
                     f"# TYPE {PREFIX}padding_size histogram"]
            for size, histogram in sorted(self.padding.items()):
                lines += histogram.lines(PREFIX + "padding_size", f'execution_batch_size="{size}"')
            lines += [f"# TYPE {PREFIX}queuing_latency histogram",
                      *self.queuing.lines(PREFIX + "queuing_latency", f'thread_pool_name="{self.pool}"')]
        return "\n".join(lines) + "\n"


class Scheduler:
    """num_batch_threads threads running the batches of every queue, round-robin (SharedBatchScheduler)."""

    def __init__(self, params: BatchingParameters, timeout: float = watchdog.TIMEOUT_S):
        self.params = params
        # The model runs on these (one per batch thread), watched: a stuck batch is answered, its thread replaced.
        self.model_threads = watchdog.ModelThreads(params.num_batch_threads, timeout, params.thread_pool_name)
        self.cond = threading.Condition()
        self.metrics = Metrics(params.thread_pool_name, self.cond)
        self.queues: list[Queue] = []
        self.next = 0  # the queue the next free thread looks at first
        self.stopping = False
        self.threads = [threading.Thread(target=self._work, name=f"{params.thread_pool_name}_{i}", daemon=True)
                        for i in range(params.num_batch_threads)]
        for thread in self.threads:
            thread.start()

    def add_queue(self, run, label: str) -> Queue:
        queue = Queue(self, run, label)
        with self.cond:
            self.queues.append(queue)
        return queue

    def remove_queue(self, queue: Queue) -> None:
        """Close a queue: what it holds runs at once, then it is dropped (an unloaded version)."""
        with self.cond:
            queue.closed = True
            self.cond.notify_all()

    def enqueue(self, queue: Queue, task: Task) -> None:
        with self.cond:
            if self.stopping:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            queue.add(task)  # raises when refused: nothing was queued
            self.metrics.input_size.add(task.size)
            if queue not in self.queues:  # closed and dropped while this request was on its way
                self.queues.append(queue)
            self.cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end the threads."""
        with self.cond:
            self.stopping = True
            for queue in self.queues:
                queue.closed = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join(timeout)
        self.model_threads.shutdown()

    def _process_watched(self, queue: Queue, batch: Batch) -> None:
        """queue.process(batch) on a watched model thread; a batch that ran past the timeout answers its
        requests DEADLINE_EXCEEDED (the stuck call may finish later: its requests were answered)."""
        try:
            self.model_threads.call(queue.process, batch)
        except watchdog.Stuck as error:
            for task in batch.tasks:
                watchdog.settle(task.answer, error=ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, str(error)))

    def _next_batch(self, now: float) -> tuple[Queue, Batch] | None:
        """The next queue's batch that may run now, round-robin; drops closed queues with nothing left."""
        for _ in range(len(self.queues)):
            self.next %= len(self.queues)
            queue = self.queues[self.next]
            batch = queue.take(now)
            if queue.closed and batch is None and queue.idle():
                self.queues.pop(self.next)
                continue
            self.next += 1
            if batch is not None:
                return queue, batch
        return None

    def _wait_s(self, now: float) -> float | None:
        """Seconds until an open batch's timeout passes (None: nothing is waiting)."""
        due = [d for d in (queue.due() for queue in self.queues) if d is not None]
        return max(min(due) - now, 0.0) if due else None

    def _work(self) -> None:
        while True:
            with self.cond:
                while (found := self._next_batch(time.monotonic())) is None:
                    if self.stopping and not self.queues:
                        return
                    self.cond.wait(self._wait_s(time.monotonic()))
            queue, batch = found
            self._process_watched(queue, batch)
            with self.cond:
                queue.in_progress -= 1
                if queue.closed:  # threads waiting to drop it (or to stop) look again
                    self.cond.notify_all()
