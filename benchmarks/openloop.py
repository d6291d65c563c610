"""The one load engine: open-loop arrivals at a fixed rate, latency from each request's scheduled time,
every request accounted for, and what the generator itself cost.

    python -m benchmarks openloop --target torchserve-grpc --rate 200 --seconds 10   # needs `make serve`

    result = openloop.run(make_predictor, images, classes, rate=200, seconds=10)       # one window, blocking
    load = openloop.OpenLoop(make_predictor, [batch], expected=[rows], rate=20).start() # until stop()
    ...restart a server...; counts = load.stop()

A closed loop (N users, each waiting for its answer before the next call) sends less when the
server slows down, so slow answers hide their own queueing: coordinated omission. Here the send
times are drawn first (exponential gaps at `rate` per second, a seed per rate) and every latency
is measured from the time a request was *scheduled*, not from when a free client thread got round
to sending it, so a stalled server shows up as tail latency. Client threads each own a Predictor
(core/registry.py) and take the next scheduled request when they are free.

Every scheduled request ends as exactly one of (`OUTCOMES`):

    answered   an answer that passed the check: (rows, K) probabilities summing to 1, K the spec's
               class count, or equal to `expected` when given
    refused    an explicit overload refusal (HTTP 503/429, RESOURCE_EXHAUSTED, TorchServe's
               queue-full INTERNAL: serving/retry.py `refusal`)
    reset      connection refused, reset or closed; gRPC UNAVAILABLE or CANCELLED
    timed_out  no answer within the client's timeout
    errors     anything else, a wrong answer included, counted by kind
    not_sent   its send time came later than `grace` seconds after the window closed (the client
               fell behind), so it was never sent; this bounds a run against an overwhelmed server

so `scheduled == answered + refused + reset + timed_out + errors + not_sent + in_flight`, where
`in_flight` is what was still unanswered when `stop()` gave up waiting (0 in a finished run).
`failed` is everything but `answered`. Latency: `benchmarks/timing.py` `summarize` (nearest rank).

The generator shares the machine with the servers, so each result also says what it cost: the
process CPU time of this process over the window, as cores and as a share of the cores it may
use, and the p99 send lag (scheduled -> sent). When the generator used >= 90% of its cores or its
send lag p99 exceeded 10 ms, `generator_limited` says so: that figure measures the client too.
With `servers={name: pid}` the CPU of each server's process tree over the same window is added.

`python -m benchmarks openloop` writes the result to `--out` (default:
<artifacts>/bench/load-run-<target>.json, through benchmarks/results.py) and prints it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks import machine, memory, results, timing
from serving.retry import batch_queue_full, refusal

CLIENT_TIMEOUT_S = 5.0  # a request slower than this is an error, far past any latency objective
OUTCOMES = ("answered", "refused", "reset", "timed_out", "errors", "not_sent")
RESET_CODES = ("UNAVAILABLE", "CANCELLED")  # gRPC's words for a connection that failed or went away
GENERATOR_CPU_SHARE_LIMIT = 0.9  # of the cores this process may use
SEND_LAG_LIMIT_MS = 10.0  # p99 of scheduled -> sent: the client threads could not keep up


class WrongAnswer(ValueError):
    """An answer that is not the expected one (shape, probabilities, or values)."""


def poisson_schedule(rate: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Send offsets (seconds from the start) of a Poisson process at `rate` per second over `seconds`."""
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive, got rate={rate} seconds={seconds}")
    return Arrivals(rate, rng).until(seconds)


class Arrivals:
    """Poisson send offsets drawn as far as they are needed (an open-ended run has no last one)."""

    def __init__(self, rate: float, rng: np.random.Generator):
        if rate <= 0:
            raise ValueError(f"rate and seconds must be positive, got rate={rate}")
        self.rate, self.rng = rate, rng
        self.times = np.cumsum(rng.exponential(1.0 / rate, size=int(rate * 2) + 16))

    def at(self, index: int) -> float:
        while index >= len(self.times):
            more = np.cumsum(self.rng.exponential(1.0 / self.rate, size=len(self.times)))
            self.times = np.concatenate([self.times, self.times[-1] + more])
        return float(self.times[index])

    def until(self, seconds: float) -> np.ndarray:
        self.at(int(self.rate * seconds * 1.5) + 16)
        while self.times[-1] < seconds:  # rare: draw more until the window is covered
            self.at(len(self.times))
        return self.times[self.times < seconds]


def classify(error: BaseException) -> tuple[str, str]:
    """(outcome, kind) of a failed request: refused, reset, timed_out or errors, and a short name."""
    import aiohttp
    import requests

    code = getattr(error, "code", None)
    try:
        code = code().name if callable(code) else None
    except Exception:  # not a finished gRPC call
        code = None
    # Checked before refusal(): UNAVAILABLE is retryable, but here it is a dropped connection, unless it is
    # TF Serving's full batch queue (an explicit refusal).
    if code in RESET_CODES and not batch_queue_full(error):
        return "reset", code
    if code == "DEADLINE_EXCEEDED" or isinstance(error, (asyncio.TimeoutError, TimeoutError, requests.Timeout)):
        return "timed_out", code or "timeout"
    refused = refusal(error)
    if refused:
        after = getattr(error, "retry_after", None)
        return "refused", refused + (f", Retry-After {after}" if after is not None else "")
    if isinstance(error, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError,
                          requests.ConnectionError)):
        return "reset", type(error).__name__
    if code:
        return "errors", code
    status = getattr(error, "status", None)
    return "errors", f"HTTP {status}" if isinstance(status, int) else type(error).__name__


class Tally:
    """How each request ended (`OUTCOMES`), error kinds with one example each, latencies and send lags (s).

    Thread-safe; the burst tool (benchmarks/burst.py) counts its crowd with it too."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter({outcome: 0 for outcome in OUTCOMES})
        self.kinds: Counter = Counter()
        self.examples: dict = {}
        self.latencies_s: list[float] = []
        self.lags_s: list[float] = []

    def answered(self, latency_s: float, lag_s: float = 0.0) -> None:
        with self.lock:
            self.counts["answered"] += 1
            self.latencies_s.append(latency_s)
            self.lags_s.append(lag_s)

    def failed(self, error: BaseException) -> None:
        outcome, kind = classify(error)
        self.record(outcome, kind, str(error)[:300])

    def record(self, outcome: str, kind: str, example: str = "") -> None:
        with self.lock:
            self.counts[outcome] += 1
            self.kinds[f"{outcome}: {kind}"] += 1
            self.examples.setdefault(f"{outcome}: {kind}", example)

    def snapshot(self) -> dict:
        """The counts so far, every outcome, `kinds` and `examples`."""
        with self.lock:
            return {**self.counts, "kinds": dict(self.kinds.most_common()), "examples": dict(self.examples)}


def check_answer(probabilities: np.ndarray, rows: int, classes: int) -> None:
    """Raise WrongAnswer unless the answer is (rows, classes) probabilities that sum to 1."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (rows, classes) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise WrongAnswer(f"malformed answer: shape {probabilities.shape}")


class OpenLoop:
    """Poisson arrivals at `rate` per second, each request one of `batches` in turn, sent by `threads` clients.

    With `seconds` the window ends by itself (`wait()`); without, it runs until `stop()`. Each answer
    is checked: equal to `expected[i]` (within `atol`) when given, else probabilities of `classes`.
    """

    def __init__(self, make_predictor: Callable[[], object], batches: Sequence[np.ndarray], *, rate: float,
                 seconds: float | None = None, classes: int | None = None, expected: Sequence[np.ndarray] | None = None,
                 threads: int = 32, grace: float = 2.0, seed: int | None = None, timeout: float | None = None,
                 atol: float = 1e-4, servers: dict[str, int] | None = None):
        if expected is None and classes is None:
            raise ValueError("give the class count or the expected answers to check every answer against")
        self.make_predictor, self.batches = make_predictor, list(batches)
        self.expected, self.classes = expected, classes
        self.rate, self.seconds, self.threads = rate, seconds, threads
        self.grace, self.timeout, self.atol = grace, timeout, atol
        self.arrivals = Arrivals(rate, np.random.default_rng(int(rate * 1000) if seed is None else seed))
        self.servers = servers or {}
        self.tally = Tally()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.next_index = self.scheduled = 0
        self.end = float("inf") if seconds is None else seconds  # offsets at or past this are not scheduled
        self.predictors: list = []
        self.workers: list[threading.Thread] = []

    def check(self, index: int, answer) -> None:
        if self.expected is None:
            check_answer(answer, len(self.batches[index]), self.classes)
            return
        want, answer = self.expected[index], np.asarray(answer)
        if answer.shape != want.shape or not np.allclose(answer, want, atol=self.atol):
            raise WrongAnswer(f"answer differs from the expected one (shape {answer.shape})")

    def connect(self, warm: bool = False) -> OpenLoop:
        """Build each thread's client (and, `warm`, send each one checked request before the clock starts)."""
        while len(self.predictors) < self.threads:
            predictor = self.make_predictor()
            if self.timeout is not None:
                predictor.timeout = self.timeout
            if warm:
                self.check(0, predictor.predict(self.batches[0]))  # a malformed answer here stops the run
            self.predictors.append(predictor)
        return self

    def start(self) -> OpenLoop:
        self.connect()
        self.cpu_began, self.servers_began = time.process_time(), memory.trees_cpu_s(self.servers)
        self.start_at = timing.now() + 0.05
        self.workers = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in self.predictors]
        for worker in self.workers:
            worker.start()
        return self

    def _run(self, predictor) -> None:
        while True:
            with self.lock:
                index = self.next_index
                self.next_index += 1
            offset = self.arrivals_at(index)
            scheduled = self.start_at + offset
            delay = scheduled - timing.now()
            if delay > 0:
                self.stopping.wait(delay)  # woken early by stop(): the window may now end before this one
            with self.lock:
                if offset >= self.end:
                    return  # past the end of the window: never scheduled
                self.scheduled += 1
            sent = timing.now()
            with self.lock:
                too_late = sent > self.start_at + self.end + self.grace
            if too_late:
                self.tally.record("not_sent", "the client fell behind the schedule")
                continue
            which = index % len(self.batches)
            try:
                self.check(which, predictor.predict(self.batches[which]))
            except Exception as error:  # every failure is a result here, by outcome and kind
                self.tally.failed(error)
                continue
            self.tally.answered(timing.now() - scheduled, sent - scheduled)

    def arrivals_at(self, index: int) -> float:
        with self.lock:  # the arrivals grow on demand: one thread at a time
            return self.arrivals.at(index)

    def snapshot(self) -> dict:
        """The counts so far (see OUTCOMES), with `scheduled` and `in_flight`."""
        counts = self.tally.snapshot()
        with self.lock:
            scheduled = self.scheduled
        done = sum(counts[outcome] for outcome in OUTCOMES)
        return {"scheduled": scheduled, **counts, "in_flight": scheduled - done,
                "failed": scheduled - counts["answered"]}

    def stop(self, wait: float = 60.0) -> dict:
        """End the window now; what was scheduled before is still sent (within `wait` / 2 s, else it is
        not_sent), and its answers waited for up to `wait` s in all. The result."""
        with self.lock:
            self.end = min(self.end, timing.now() - self.start_at)
            # A backlog scheduled before now may still be sent in the first half of the wait; the
            # second half is for the last answers to come back.
            self.grace = max(self.grace, wait / 2)
        self.stopping.set()
        return self.wait(wait)

    def wait(self, wait: float | None = None) -> dict:
        """Wait for the window to end and its requests to finish (at most `wait` s); the result."""
        deadline = None if wait is None else time.monotonic() + wait
        for worker in self.workers:
            worker.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return self.result()

    def result(self) -> dict:
        elapsed = max(timing.now() - self.start_at, 1e-9)
        window = min(self.end, elapsed) if self.end != float("inf") else elapsed
        cpu = time.process_time() - self.cpu_began
        servers = memory.trees_cpu_s(self.servers)
        counts = self.snapshot()
        with self.tally.lock:
            latencies, lags = list(self.tally.latencies_s), list(self.tally.lags_s)
        lag_p99 = timing.summarize(lags, "ms")["p99_ms"]
        generator = generator_figures(cpu, elapsed, lag_p99)
        return {"offered_rps": round(float(self.rate), 2), "seconds": round(window, 3), **counts,
                "achieved_rps": round(counts["answered"] / max(elapsed, window), 2),
                **timing.summarize(latencies, "ms"), "send_lag_p99_ms": lag_p99, "client_threads": self.threads,
                "generator": generator, "generator_limited": generator["limited"],
                **({"servers_cpu_cores": {name: round((servers[name] - self.servers_began[name]) / elapsed, 3)
                                          for name in self.servers}} if self.servers else {})}

    def close(self) -> None:
        for predictor in self.predictors:
            getattr(predictor, "close", lambda: None)()


def generator_figures(cpu_s: float, elapsed_s: float, send_lag_p99_ms: float | None) -> dict:
    """The generator's CPU over a window (cores, share of the cores it may use) and whether it was the limit."""
    allowed = len(os.sched_getaffinity(0))
    cores = cpu_s / elapsed_s if elapsed_s > 0 else 0.0
    why = []
    if cores >= GENERATOR_CPU_SHARE_LIMIT * allowed:
        why.append(f"generator CPU {cores:.2f} of its {allowed} core(s)")
    if send_lag_p99_ms is not None and send_lag_p99_ms > SEND_LAG_LIMIT_MS:
        why.append(f"send lag p99 {send_lag_p99_ms:g} ms > {SEND_LAG_LIMIT_MS:g} ms")
    return {"cpu_cores": round(cores, 3), "cores_allowed": allowed, "cpu_share": round(cores / allowed, 3),
            "limited": bool(why), "why": "; ".join(why)}


def run(make_predictor, images: np.ndarray, classes: int, rate: float, seconds: float, threads: int = 32,
        grace: float = 2.0, seed: int | None = None, servers: dict[str, int] | None = None) -> dict:
    """One open-loop window of `seconds` at `rate` requests/s, one image per request; the result.

    Each client is connected and sends one checked request before the clock starts (a malformed
    answer there raises WrongAnswer). The arrivals are reproducible: by default the seed is derived
    from the rate, so every endpoint sees the same arrivals at a given rate, and each rate its own draw.
    """
    if seconds <= 0:
        raise ValueError(f"rate and seconds must be positive, got rate={rate} seconds={seconds}")
    load = OpenLoop(make_predictor, [image[None] for image in images], rate=rate, seconds=seconds, classes=classes,
                    threads=threads, grace=grace, seed=seed, timeout=CLIENT_TIMEOUT_S, servers=servers)
    try:
        load.connect(warm=True)
        return load.start().wait()
    finally:
        load.close()


def test_images(root: Path, count: int = 64) -> np.ndarray:
    """The first `count` test-split images, (count, *item shape) float32: what every load request sends (one each)."""
    from core import paths
    from training import data

    return data.load_split(paths.split_path(root))["test"].x[:count].astype(np.float32)


def predictor_factory(target: str, root: Path, endpoints=None):
    """A function that builds a fresh client of served target `target` (core/registry.py)."""
    from core import registry

    if target not in registry.served():
        raise SystemExit(f"error: unknown served target {target!r}; choose one of {', '.join(registry.served())}")
    return lambda: registry.load(target, root=root, endpoints=endpoints)


def main(argv=None) -> dict:
    from core import paths
    from core import spec as specs
    from serving import endpoints as endpoints_mod

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True,
                        help="served target: torchserve-rest, torchserve-grpc, tfserving-grpc, tfserving-rest")
    parser.add_argument("--rate", type=float, default=100.0, help="offered requests per second (default: 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the run, seconds (default: 10)")
    parser.add_argument("--threads", type=int, default=32, help="client threads (default: 32)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--out", type=Path, help="JSON result (default: <artifacts>/bench/load-run-<target>.json)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    endpoints = endpoints_mod.resolve()
    print(f"open loop: {args.target} at {args.rate:g} req/s (Poisson) for {args.seconds:g} s, "
          f"{args.threads} client threads", flush=True)
    result = {"target": args.target, "command": results.command(__name__, argv),
              "machine": machine.describe(),
              **run(predictor_factory(args.target, root, endpoints), test_images(root), specs.load(root).num_classes,
                    args.rate, args.seconds, args.threads)}
    out = results.save(result, args.out) if args.out else results.write(result, root, f"load-run-{args.target}")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result
