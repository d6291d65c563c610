"""The clients' retry policy (serving/retry.py), on a fake clock: what is retried, and for how long."""
import grpc
import pytest
import requests

from serving.rest import RestError
from serving.retry import RetryPolicy, call_with_retry, retryable


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
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


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
                                   RestError(503, "busy"), Rpc(grpc.StatusCode.UNAVAILABLE)],
                         ids=["connection", "connect timeout", "503", "UNAVAILABLE"])
def test_transient_failures_are_retried_until_an_answer(error):
    fake = FakeTime()
    send, calls = failing([error, error])
    assert call_with_retry(send, RetryPolicy(), sleep=fake.sleep, clock=fake.clock) == "ok"
    assert len(calls) == 3 and len(fake.sleeps) == 2
    assert 0.05 <= fake.sleeps[0] <= 0.1 and 0.1 <= fake.sleeps[1] <= 0.2  # doubling, with jitter


@pytest.mark.parametrize("error", [RestError(400, "bad"), RestError(500, "boom"), requests.ReadTimeout("late"),
                                   Rpc(grpc.StatusCode.INVALID_ARGUMENT), Rpc(grpc.StatusCode.INTERNAL),
                                   Rpc(grpc.StatusCode.DEADLINE_EXCEEDED), ValueError("error body")],
                         ids=["400", "500", "read timeout", "INVALID_ARGUMENT", "INTERNAL", "DEADLINE", "other"])
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
    assert calls[0] == 5.0 and all(later < earlier for earlier, later in zip(calls, calls[1:]))  # time left shrinks
    assert max(fake.sleeps) <= 1.0
