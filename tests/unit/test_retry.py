"""The clients' retry policy (serving/retry.py), on a fake clock: what is retried, for how long, how long it waits."""
import grpc
import pytest
import requests

from serving.rest import RestError
from serving.retry import TORCHSERVE_QUEUE_FULL, RetryPolicy, call_with_retry, refusal, retryable


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Rpc(grpc.RpcError):
    def __init__(self, code, details="", trailing=()):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


QUEUE_FULL = f'Model "digits" {TORCHSERVE_QUEUE_FULL}. Please use scale workers API to add workers.'


def failing(errors, answer="ok"):
    """A send(timeout) that raises each of `errors` in turn, then returns `answer`; records timeouts."""
    calls = []

    def send(timeout):
        calls.append(timeout)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return answer

    return send, calls


@pytest.mark.parametrize("error", [requests.ConnectionError("refused"), requests.ConnectTimeout("slow"),
                                   RestError(503, "busy"), RestError(429, "slow down"),
                                   Rpc(grpc.StatusCode.UNAVAILABLE),
                                   Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!"),
                                   Rpc(grpc.StatusCode.INTERNAL, QUEUE_FULL)],
                         ids=["connection", "connect timeout", "503", "429", "UNAVAILABLE", "RESOURCE_EXHAUSTED",
                              "TorchServe queue full"])
def test_transient_failures_are_retried_until_an_answer(error):
    fake = FakeTime()
    send, calls = failing([error, error])
    assert call_with_retry(send, RetryPolicy(), sleep=fake.sleep, clock=fake.clock) == "ok"
    assert len(calls) == 3 and len(fake.sleeps) == 2
    assert 0.05 <= fake.sleeps[0] <= 0.1 and 0.1 <= fake.sleeps[1] <= 0.2  # doubling, with jitter


@pytest.mark.parametrize("error", [RestError(400, "bad"), RestError(500, "boom"), requests.ReadTimeout("late"),
                                   Rpc(grpc.StatusCode.INVALID_ARGUMENT), Rpc(grpc.StatusCode.INTERNAL),
                                   Rpc(grpc.StatusCode.DEADLINE_EXCEEDED), ValueError("error body"),
                                   Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       "Received message larger than max (9 vs. 4)"),
                                   Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       "the request body has 20,000,000 bytes, more than the 4,194,304 allowed"),
                                   Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "Worker died.")],
                         ids=["400", "500", "read timeout", "INVALID_ARGUMENT", "INTERNAL", "DEADLINE", "other",
                              "too large (grpc)", "too large (server)", "worker died"])
def test_other_failures_are_raised_at_once(error):
    fake = FakeTime()
    send, calls = failing([error])
    with pytest.raises(type(error)):
        call_with_retry(send, RetryPolicy(), sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1 and fake.sleeps == []
    assert not retryable(error)


def test_attempts_run_out_and_the_last_error_says_how_many():
    fake = FakeTime()
    send, calls = failing([RestError(503, "busy")] * 10)
    with pytest.raises(RestError) as raised:
        call_with_retry(send, RetryPolicy(attempts=4), sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 4 and raised.value.status == 503
    assert raised.value.__notes__[0].startswith("gave up after 4 attempts")


def test_the_deadline_bounds_every_attempt_and_the_waits():
    fake = FakeTime()
    send, calls = failing([requests.ConnectionError("refused")] * 100)
    with pytest.raises(requests.ConnectionError):
        call_with_retry(send, RetryPolicy(attempts=100, backoff=1.0, max_backoff=1.0, deadline=5.0),
                        sleep=fake.sleep, clock=fake.clock)
    assert fake.now <= 5.0  # never waits past the deadline
    assert calls[0] == 5.0
    assert all(later < earlier for earlier, later in zip(calls, calls[1:], strict=False))  # time left shrinks
    assert max(fake.sleeps) <= 1.0


@pytest.mark.parametrize("error, name", [(RestError(503, "busy"), "HTTP 503"), (RestError(429, "x"), "HTTP 429"),
                                         (RestError(500, "boom"), None), (Rpc(grpc.StatusCode.INTERNAL, "boom"), None),
                                         (Rpc(grpc.StatusCode.INTERNAL, QUEUE_FULL),
                                          "INTERNAL (TorchServe job queue full)"),
                                         (requests.ConnectionError("reset"), None)])
def test_refusal_names_only_explicit_overload_answers(error, name):
    assert refusal(error) == name


@pytest.mark.parametrize("error", [RestError(503, "busy", retry_after="1.5"),
                                   Rpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", trailing=(("retry-after", "1.5"),))],
                         ids=["HTTP Retry-After", "gRPC retry-after"])
def test_the_wait_is_never_shorter_than_retry_after(error):
    fake = FakeTime()
    send, calls = failing([error, error])
    assert call_with_retry(send, RetryPolicy(), sleep=fake.sleep, clock=fake.clock) == "ok"
    assert fake.sleeps == [1.5, 1.5]  # the server's wait, longer than the 0.1-0.2 s backoff
    assert calls[1] == pytest.approx(30.0 - 1.5)  # and the deadline still counts it


def test_a_retry_after_past_the_deadline_gives_up_at_once_and_says_why():
    fake = FakeTime()
    send, calls = failing([RestError(503, "busy", retry_after="120")] * 3)
    with pytest.raises(RestError) as raised:
        call_with_retry(send, RetryPolicy(deadline=10), sleep=fake.sleep, clock=fake.clock)
    assert len(calls) == 1 and fake.sleeps == []
    assert "asked to wait 120 s, past the deadline" in raised.value.__notes__[0]


def test_an_unreadable_retry_after_falls_back_to_the_backoff():
    fake = FakeTime()
    send, _ = failing([RestError(503, "busy", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")])
    assert call_with_retry(send, RetryPolicy(), sleep=fake.sleep, clock=fake.clock) == "ok"
    assert 0.05 <= fake.sleeps[0] <= 0.1
