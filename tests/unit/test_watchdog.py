"""serving/watchdog.py: a prediction that runs past its time is answered Stuck, its thread replaced, the rest answer."""
from __future__ import annotations

import threading
import time

import pytest

from serving import watchdog


@pytest.fixture
def threads():
    made = watchdog.ModelThreads(2, timeout=0.4, name="test-predict")
    yield made
    made.shutdown()


def test_answers_and_errors_pass_through(threads):
    assert threads.call(lambda x: x * 2, 21) == 42
    with pytest.raises(ZeroDivisionError):
        threads.call(lambda: 1 / 0)
    assert threads.replaced == 0 and threads.stuck == 0


def test_a_stuck_prediction_is_answered_and_its_thread_replaced(threads):
    release = threading.Event()
    start = time.monotonic()
    stuck = threads.submit(release.wait, 30)
    with pytest.raises(watchdog.Stuck, match="did not answer within 0.4 s"):
        stuck.result(timeout=10)
    assert time.monotonic() - start < 5  # declared within a few quarters of the timeout, not the call's 30 s
    assert threads.replaced == 1 and threads.stuck == 1
    # Both threads of the new pool answer while the stuck one still hangs.
    assert [threads.call(lambda i=i: i) for i in range(6)] == list(range(6))
    release.set()
    deadline = time.monotonic() + 5
    while threads.stuck and time.monotonic() < deadline:  # the stuck call returns: counted out again
        time.sleep(0.02)
    assert threads.stuck == 0


def test_time_in_the_queue_does_not_count(threads):
    # Four calls of 0.3 s each on two threads: the last two wait 0.3 s first, 0.6 s in all, past the 0.4 s limit.
    answers = [threads.submit(lambda: time.sleep(0.3) or "done") for _ in range(4)]
    assert [a.result(timeout=10) for a in answers] == ["done"] * 4
    assert threads.replaced == 0


def test_the_stall_file_holds_exactly_one_prediction(threads, tmp_path, monkeypatch):
    stall = tmp_path / "stall"
    stall.touch()
    monkeypatch.setenv(watchdog.STALL_FILE, str(stall))
    first = threads.submit(lambda: "first")
    with pytest.raises(watchdog.Stuck):
        first.result(timeout=10)
    assert not stall.exists() and (tmp_path / "stall.held").exists()
    assert threads.call(lambda: "second") == "second"  # the file was taken: the next one runs
    (tmp_path / "stall.held").unlink()


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        watchdog.ModelThreads(0, timeout=1)
    with pytest.raises(ValueError):
        watchdog.ModelThreads(1, timeout=0)
