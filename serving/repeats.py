"""Repeated log lines rate-limited: the first of each message per interval, then one line with the count.

    from serving import repeats
    repeats.install()   # on every handler configured so far (call after logging is set up)

A server that logs once per bad request (an unknown model, a body that is not a protobuf) would
otherwise write as fast as a client can send: the same line, thousands of times. The first
occurrence of a message (logger, level, text, and the exception's type and text) passes; the
same message again within INTERVAL_S is counted, not written; the first one after the interval
passes again, with "[repeated N times in the last ... s]" appended. Nothing is dropped silently:
what a window held shows in its count, written when that message next comes (a message that never
comes again after its burst is summed up by `flush()`, at the interpreter's exit). Standard library only.
"""
from __future__ import annotations

import atexit
import logging
import threading
import time

INTERVAL_S = 10.0
MAX_MESSAGES = 1024  # messages followed at once; past it a new message passes untracked (never hidden)


class RepeatFilter(logging.Filter):
    """Pass a message at most once per `interval` seconds; the next one that passes carries the count."""

    def __init__(self, interval: float = INTERVAL_S, clock=time.monotonic):
        super().__init__()
        self.interval, self.clock = interval, clock
        self.seen: dict = {}  # message key -> [start of its window, occurrences held back since]
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # One record may reach several handlers sharing this filter: it is judged once.
        decided = getattr(record, "_repeat_passed", None)
        if decided is not None:
            return decided
        record._repeat_passed = passed = self._judge(record)
        return passed

    def _judge(self, record: logging.LogRecord) -> bool:
        key = _key(record)
        now = self.clock()
        with self.lock:
            entry = self.seen.get(key)
            if entry is not None and now - entry[0] < self.interval:
                entry[1] += 1
                return False
            if entry is not None and entry[1]:
                record.msg = f"{record.getMessage()} [repeated {entry[1]} times in the last {now - entry[0]:.0f} s]"
                record.args = None
            if entry is None and len(self.seen) >= MAX_MESSAGES:
                self._forget_quiet(now)
                if len(self.seen) >= MAX_MESSAGES:
                    return True
            self.seen[key] = [now, 0]
            return True

    def _forget_quiet(self, now: float) -> None:
        """Drop the messages whose window ended with nothing held back (nothing to report for them)."""
        for key in [key for key, (start, held) in self.seen.items() if not held and now - start >= self.interval]:
            del self.seen[key]

    def held_back(self) -> list:
        """(logger, level, message, count) for every message with occurrences not yet reported."""
        with self.lock:
            return [(key[0], key[1], key[2], held) for key, (_, held) in self.seen.items() if held]


def _key(record: logging.LogRecord) -> tuple:
    error = record.exc_info[1] if record.exc_info else None
    return (record.name, record.levelno, record.getMessage(),
            f"{type(error).__name__}: {error}" if error is not None else "")


def install(interval: float = INTERVAL_S) -> RepeatFilter:
    """One RepeatFilter on every handler of every logger configured now (the root's and named ones); the
    counts it still holds are written at exit (before logging shuts down: atexit runs last in, first out)."""
    repeat = RepeatFilter(interval)
    atexit.register(flush, repeat)
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if repeat not in handler.filters:
                handler.addFilter(repeat)
    return repeat


def flush(repeat: RepeatFilter) -> None:
    """Write the counts still held back (at shutdown), one line per message."""
    for name, level, message, count in repeat.held_back():
        logging.getLogger(name).log(level, "%s [repeated %d more times]", message, count,
                                    extra={"_repeat_passed": True})
