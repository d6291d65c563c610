"""Retries with backoff under one deadline, for the project's server clients; what counts as a refusal.

    from serving.retry import RetryPolicy, call_with_retry
    answer = call_with_retry(lambda timeout: send(timeout=timeout), RetryPolicy(deadline=10))

Only failures that say the request was not processed, or that the server asks to be retried, are
retried: a connection refused or reset, a connect timeout, and an explicit overload refusal
(`refusal()`): HTTP 503 or 429, gRPC UNAVAILABLE or RESOURCE_EXHAUSTED (not the one for a message
over the size limit, sending it again cannot help, nor TorchServe's "Worker died."), and
TorchServe's full job queue, which its gRPC API reports as INTERNAL with a message of its own
(its REST API says 503). A 4xx, a 500 or any other gRPC code is raised at once: retrying a bad
request cannot help. (A prediction changes nothing on
the server, so repeating one is harmless even when the first did arrive.)

The wait before the next try doubles from `backoff` up to `max_backoff`, with jitter, and is never
shorter than the server's `Retry-After` (HTTP header, or gRPC trailing metadata `retry-after`, in
seconds). Every attempt gets the time left before the deadline as its timeout, so a call never
outlives it; when the attempts or the time run out (or the server asks for a wait past the
deadline), the last error is raised with a note saying how many attempts were made.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    # Tries in all, the first included: a safety cap far above what the deadline allows, so under load a
    # call gives up when its time is spent, not after a count of quick refusals (Retry-After 1 s x 6 < 30 s).
    attempts: int = 1000
    backoff: float = 0.1  # seconds before the second try; doubles each time, with jitter
    max_backoff: float = 2.0  # the longest wait between two tries (a longer Retry-After wins)
    deadline: float = 30.0  # seconds for the whole call, every try and wait included


NO_RETRY = RetryPolicy(attempts=1)
# gRPC channels: after a lost connection, try to reconnect within a second instead of grpc's
# default backoff (1 s growing to 120 s), so a restarted server is found again quickly. Not
# `grpc.min_reconnect_backoff_ms`: grpc core reads it as the least time a connection attempt is given
# (default 20 s), and at 100 ms a busy server's first HTTP/2 SETTINGS frame arrives too late ("connection
# attempt timed out before receiving SETTINGS frame": UNAVAILABLE for a server that is up).
GRPC_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000))
REFUSED_HTTP = (429, 503)
REFUSED_GRPC = ("UNAVAILABLE", "RESOURCE_EXHAUSTED")
# TorchServe 0.12 answers a request its job queue cannot take with this text: HTTP 503 over REST,
# but gRPC INTERNAL over gRPC (InferenceImpl maps every failed enqueue to INTERNAL).
TORCHSERVE_QUEUE_FULL = "has no worker to serve inference request"
# RESOURCE_EXHAUSTED that is not overload: a message over the size limit (grpc's own text and the
# compatible server's), and TorchServe's "Worker died." for the requests a crashed worker held (its
# REST twin is HTTP 507, not retried either).
NOT_OVERLOAD = ("larger than max", "message size", "bytes, more than", "Worker died")
# TF Serving's answer (gRPC UNAVAILABLE, REST 503) when a model's batch queue holds max_enqueued_batches:
# a refusal from a live server, not a lost connection.
BATCH_QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


def _grpc_code(error: BaseException) -> str | None:
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    try:
        return code().name
    except Exception:  # not a finished gRPC call
        return None


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    try:
        return (details() if callable(details) else "") or ""
    except Exception:
        return ""


def batch_queue_full(error: BaseException) -> bool:
    """TF Serving's refusal of a request its model's full batch queue cannot take (gRPC UNAVAILABLE)."""
    return _grpc_code(error) == "UNAVAILABLE" and BATCH_QUEUE_FULL in _details(error)


def refusal(error: BaseException) -> str | None:
    """The name of an explicit overload refusal (`HTTP 503`, `RESOURCE_EXHAUSTED`, ...), else None."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}" if status in REFUSED_HTTP else None
    code = _grpc_code(error)
    if code == "RESOURCE_EXHAUSTED" and any(text in _details(error) for text in NOT_OVERLOAD):
        return None
    if batch_queue_full(error):
        return "UNAVAILABLE (batch queue full)"
    if code in REFUSED_GRPC:
        return code
    if code == "INTERNAL" and TORCHSERVE_QUEUE_FULL in _details(error):
        return "INTERNAL (TorchServe job queue full)"
    return None


def retry_after(error: BaseException) -> float | None:
    """Seconds the server asked the client to wait (Retry-After), or None."""
    value = getattr(error, "retry_after", None)
    if value is None:
        metadata = getattr(error, "trailing_metadata", None)
        try:
            value = dict(metadata() or ()).get("retry-after") if callable(metadata) else None
        except Exception:
            value = None
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):  # an HTTP date or garbage: fall back to our own backoff
        return None


def retryable(error: BaseException) -> bool:
    """True for failures that are safe and sensible to try again."""
    if isinstance(error, (requests.ConnectionError, requests.ConnectTimeout)):
        return True
    return refusal(error) is not None


def call_with_retry(send: Callable[[float], T], policy: RetryPolicy = RetryPolicy(), *,
                    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                    on_retry: Callable[[int, BaseException], None] | None = None) -> T:
    """send(timeout) until it returns, fails for good, or the attempts or deadline run out."""
    start = clock()
    wait = policy.backoff
    for attempt in range(1, policy.attempts + 1):
        left = policy.deadline - (clock() - start)
        try:
            return send(max(left, 0.001))
        except Exception as error:
            left = policy.deadline - (clock() - start)
            pause = random.uniform(wait / 2, wait)  # jitter: clients that failed together do not retry together
            asked = retry_after(error) if retryable(error) else None
            if asked is not None:
                pause = max(pause, asked)  # the server knows when it expects to have room again
            if not retryable(error) or attempt == policy.attempts or pause >= left:
                past_deadline = asked is not None and pause >= left
                if attempt > 1 or past_deadline:
                    why = f" (the server asked to wait {asked:g} s, past the deadline)" if past_deadline else ""
                    error.add_note(f"gave up after {attempt} attempts in {clock() - start:.1f} s{why}")
                raise
            if on_retry:
                on_retry(attempt, error)
            sleep(pause)
            wait = min(wait * 2, policy.max_backoff)
    raise AssertionError("unreachable: the loop returns or raises")
