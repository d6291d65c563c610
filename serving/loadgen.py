"""Steady load on one served endpoint from background threads, with every request accounted for.

    load = Load(lambda: load_predictor("tfserving-grpc", endpoints), batch, expected, threads=2)
    load.start(); ...restart something...; counts = load.stop()
    counts.sent == counts.ok + counts.wrong + sum(counts.errors.values())   # counts.lost == 0

Each thread has its own client (from `make_client`) and sends `batch` again and again, optionally
paced to `rate` requests per second in all. Every request ends in one of: `ok` (probabilities
matching `expected`), `wrong` (an answer that does not), or an error counted by kind (`HTTP 503`,
`UNAVAILABLE`, `ConnectionError`...). A request still unfinished when `stop()` gives up waiting
is `lost`. The fault, update and soak tests read these counts; the clients' own retries
(serving/retry.py) are what turn a restart into zero errors.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Counts:
    sent: int = 0
    ok: int = 0
    wrong: int = 0
    errors: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)  # error kind -> the first message seen

    @property
    def failed(self) -> int:
        return self.wrong + sum(self.errors.values())

    @property
    def lost(self) -> int:
        """Requests that never ended with an answer or an error."""
        return self.sent - self.ok - self.failed

    def as_dict(self) -> dict:
        return {"sent": self.sent, "ok": self.ok, "wrong": self.wrong, "errors": dict(self.errors),
                "lost": self.lost, "error_examples": self.examples}


def error_kind(error: BaseException) -> str:
    """A short name for how a request failed: `HTTP 503`, `UNAVAILABLE`, `ConnectionError`..."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    code = getattr(error, "code", None)
    if callable(code):
        try:
            return code().name
        except Exception:  # not a finished gRPC call
            pass
    return type(error).__name__


class Load:
    def __init__(self, make_client: Callable[[], object], batch: np.ndarray, expected: np.ndarray, *,
                 threads: int = 2, rate: float | None = None, atol: float = 1e-4):
        self.make_client, self.batch, self.expected, self.atol = make_client, batch, expected, atol
        self.threads = threads
        self.interval = threads / rate if rate else 0.0  # seconds between two requests of one thread
        self.counts = Counts()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.workers: list[threading.Thread] = []
        self.latencies: list[float] = []  # seconds, of every request that ended ok

    def start(self) -> "Load":
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self.workers.append(worker)
        return self

    def _run(self, index: int) -> None:
        client = self.make_client()
        next_at = time.monotonic() + self.interval * index / max(self.threads, 1)  # spread the threads out
        while not self.stopping.is_set():
            if self.interval:
                delay = next_at - time.monotonic()
                if delay > 0 and self.stopping.wait(delay):
                    break
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            with self.lock:
                self.counts.sent += 1
            began = time.perf_counter()
            try:
                answer = client.predict(self.batch)
            except Exception as error:  # every failure is counted, by kind; none is swallowed silently
                kind = error_kind(error)
                with self.lock:
                    self.counts.errors[kind] += 1
                    self.counts.examples.setdefault(kind, str(error)[:300])
                continue
            good = answer.shape == self.expected.shape and np.allclose(answer, self.expected, atol=self.atol)
            with self.lock:
                if good:
                    self.counts.ok += 1
                    self.latencies.append(time.perf_counter() - began)
                else:
                    self.counts.wrong += 1

    def snapshot(self) -> Counts:
        with self.lock:
            return Counts(self.counts.sent, self.counts.ok, self.counts.wrong, Counter(self.counts.errors),
                          dict(self.counts.examples))

    def stop(self, wait: float = 60.0) -> Counts:
        """Stop sending, wait up to `wait` seconds for requests in flight; the final counts."""
        self.stopping.set()
        deadline = time.monotonic() + wait
        for worker in self.workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        return self.snapshot()
