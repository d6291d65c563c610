"""Retries with exponential backoff under one deadline, for the project's server clients.

    from serving.retry import RetryPolicy, call_with_retry
    answer = call_with_retry(lambda timeout: send(timeout=timeout), RetryPolicy(deadline=10))

Only failures that say the request was not processed, or that the server asks to be retried, are
retried: a connection refused or reset, a connect timeout, HTTP 503, gRPC UNAVAILABLE. A 4xx, a
500 or any other gRPC code is raised at once: retrying a bad request cannot help. (A prediction
changes nothing on the server, so repeating one is harmless even when the first did arrive.)
Every attempt gets the time left before the deadline as its timeout, so a call never outlives it;
when the attempts or the time run out, the last error is raised with a note saying how many
attempts were made.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import requests

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first included
    backoff: float = 0.1  # seconds before the second try; doubles each time, with jitter
    max_backoff: float = 2.0  # the longest wait between two tries
    deadline: float = 30.0  # seconds for the whole call, every try and wait included


NO_RETRY = RetryPolicy(attempts=1)
# gRPC channels: after a lost connection, try to reconnect within a second instead of grpc's
# default backoff (1 s growing to 120 s), so a restarted server is found again quickly.
GRPC_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                        ("grpc.max_reconnect_backoff_ms", 1000))


def retryable(error: BaseException) -> bool:
    """True for failures that are safe and sensible to try again."""
    from serving.rest import RestError

    if isinstance(error, (requests.ConnectionError, requests.ConnectTimeout)):
        return True
    if isinstance(error, RestError):
        return error.status == 503
    try:
        import grpc
    except ImportError:  # a REST-only environment
        return False
    return isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.UNAVAILABLE


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
            if not retryable(error) or attempt == policy.attempts or pause >= left:
                if attempt > 1:
                    error.add_note(f"gave up after {attempt} attempts in {clock() - start:.1f} s")
                raise
            if on_retry:
                on_retry(attempt, error)
            sleep(pause)
            wait = min(wait * 2, policy.max_backoff)
    raise AssertionError("unreachable: the loop returns or raises")
