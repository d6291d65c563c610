"""serving/repeats.py: the same log line at most once per interval, the rest counted, never lost silently."""
from __future__ import annotations

import io
import logging

from serving import repeats


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def logger_with(repeat: repeats.RepeatFilter, name: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(repeat)
    logger = logging.getLogger(f"test.repeats.{name}")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, out


def test_the_same_line_is_written_once_per_interval_then_with_its_count():
    clock = Clock()
    logger, out = logger_with(repeats.RepeatFilter(10.0, clock), "same")
    for _ in range(500):
        logger.warning("refused %s: %s", "POST /v2/models/nope/infer", "unknown model")
    logger.warning("another problem")
    clock.now = 12.0
    logger.warning("refused %s: %s", "POST /v2/models/nope/infer", "unknown model")
    logger.warning("refused %s: %s", "POST /v2/models/nope/infer", "unknown model")
    assert out.getvalue().splitlines() == [
        "refused POST /v2/models/nope/infer: unknown model",
        "another problem",
        "refused POST /v2/models/nope/infer: unknown model [repeated 499 times in the last 12 s]"]


def test_errors_differ_by_their_exception():
    logger, out = logger_with(repeats.RepeatFilter(10.0, Clock()), "errors")
    for error in (ValueError("a"), ValueError("a"), KeyError("a"), ValueError("b")):
        try:
            raise error
        except Exception:
            logger.exception("request failed")
    assert out.getvalue().count("request failed") == 3 and out.getvalue().count("Traceback") == 3


def test_a_record_reaching_two_handlers_is_judged_once():
    repeat = repeats.RepeatFilter(10.0, Clock())
    logger, first = logger_with(repeat, "two")
    second = io.StringIO()
    other = logging.StreamHandler(second)
    other.addFilter(repeat)
    logger.addHandler(other)
    logger.warning("once")
    logger.warning("once")
    assert first.getvalue() == second.getvalue() == "once\n"


def test_counts_still_held_are_written_by_flush():
    repeat = repeats.RepeatFilter(10.0, Clock())
    logger, out = logger_with(repeat, "flush")
    for _ in range(3):
        logger.warning("client went away")
    repeats.flush(repeat)
    assert out.getvalue().splitlines() == ["client went away", "client went away [repeated 2 more times]"]


def test_past_the_messages_followed_a_new_one_is_written_not_hidden(monkeypatch):
    monkeypatch.setattr(repeats, "MAX_MESSAGES", 3)
    logger, out = logger_with(repeats.RepeatFilter(10.0, Clock()), "many")
    for index in range(5):
        logger.warning("unknown model m%d", index)
        logger.warning("unknown model m%d", index)
    # the first three are followed (their repeat held back), the others pass untracked
    assert out.getvalue().splitlines() == [f"unknown model m{i}" for i in range(3)] + ["unknown model m3"] * 2 + \
        ["unknown model m4"] * 2
