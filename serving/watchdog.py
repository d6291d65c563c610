"""Model threads with a watchdog: a prediction that runs too long is answered with an error, its thread replaced.

    threads = ModelThreads(4, timeout=5.0, name="rest-predict")
    answer = threads.submit(model.predict, batch)    # a concurrent.futures.Future
    answer.result()          # the prediction, or Stuck once it has run `timeout` seconds
    await asyncio.wrap_future(threads.submit(...))   # the same from an event loop

The servers that run the model on threads of their own (the TF-Serving-compatible server, KServe's
ModelServer here) cannot kill a thread stuck inside the model: a deadlock in a library, a swap
storm, a hung handler. Without a watchdog its caller waits for ever (or until the client's deadline),
and the thread is lost to every later request. Here a watchdog thread looks at what runs every
quarter of `timeout`; a prediction that has RUN (time in the queue does not count, as with
TorchServe's responseTimeout) for longer than `timeout` seconds gets `Stuck` as its answer, so the
server answers that request with an explicit error at once, and the pool it ran on is replaced by a
fresh one, so the model keeps its full number of threads for the requests that follow. The old
pool's healthy threads finish what they hold and end; the stuck thread ends whenever its call
returns (it is logged then). At most MAX_STUCK stuck threads are replaced: beyond that the server
says so in its log and keeps the threads it has, instead of growing without bound.

Test-only fault: with DIGITS_STALL_FILE=<path> in the server's environment, a prediction that
starts while <path> exists takes it (renames it to <path>.held, so exactly one prediction does) and
hangs until <path>.held is removed; tests/integration/test_stuck_workers.py uses it to make one
prediction stick, as SIGSTOP does to a TorchServe worker. Unset (always, outside that test), it
costs one dictionary lookup per prediction.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent import futures

log = logging.getLogger("digits.watchdog")
# Seconds a prediction may run, the servers' default: a batch takes milliseconds, so this fires only for
# a stuck thread (TorchServe's responseTimeout, serving/torchserve/config.properties, is the same 5 s).
TIMEOUT_S = 5.0
MAX_STUCK = 32  # stuck threads replaced at most; each holds its stack and whatever the model call holds
STALL_FILE = "DIGITS_STALL_FILE"  # the test-only fault (see the module docstring)
STALL_LIMIT_S = 300.0  # a stalled prediction returns after this even if the test forgot to release it


class Stuck(RuntimeError):
    """A prediction ran past the timeout; the message says so in words a client can read."""


class ModelThreads:
    """`threads` model threads whose predictions may run `timeout` seconds each (see the module docstring)."""

    def __init__(self, threads: int, timeout: float, name: str = "predict"):
        if threads < 1 or timeout <= 0:
            raise ValueError(f"model threads need threads >= 1 and timeout > 0, got {threads} and {timeout}")
        self.threads, self.timeout, self.name = threads, timeout, name
        self.lock = threading.Lock()
        self.pool = self._new_pool()
        self.running: dict[object, tuple[float, futures.Future, futures.Executor]] = {}
        self.stuck = 0  # predictions declared stuck whose thread has not returned yet
        self.replaced = 0  # pools replaced so far
        self.closed = threading.Event()
        threading.Thread(target=self._watch, name=f"{name}-watchdog", daemon=True).start()

    def _new_pool(self) -> futures.ThreadPoolExecutor:
        return futures.ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.name)

    def submit(self, fn, *args) -> futures.Future:
        """Run fn(*args) on a model thread; the returned future holds its result, its error, or Stuck."""
        answer = futures.Future()
        with self.lock:
            pool = self.pool
        pool.submit(self._run, pool, answer, fn, args)
        return answer

    def call(self, fn, *args):
        """fn(*args) on a model thread, waited for here (raises Stuck when it runs past the timeout)."""
        return self.submit(fn, *args).result()

    def _run(self, pool, answer: futures.Future, fn, args) -> None:
        if not answer.set_running_or_notify_cancel():
            return
        key, started = object(), time.monotonic()
        with self.lock:
            self.running[key] = (started, answer, pool)
        try:
            _stall_if_asked()
            result = fn(*args)
        except BaseException as error:  # handed to the caller, whatever it is
            settle(answer, error=error)
        else:
            settle(answer, result=result)
        finally:
            with self.lock:
                self.running.pop(key, None)
                late = isinstance(answer.exception() if answer.done() else None, Stuck)
                if late:
                    self.stuck -= 1
            if late:
                log.warning("%s: a prediction declared stuck returned after %.1f s; its thread ends",
                            self.name, time.monotonic() - started)

    def _watch(self) -> None:
        while not self.closed.wait(max(self.timeout / 4, 0.05)):
            now = time.monotonic()
            with self.lock:
                overdue = [(started, answer, pool) for started, answer, pool in self.running.values()
                           if now - started > self.timeout and not answer.done()]
                for _, answer, pool in overdue:
                    settle(answer, error=Stuck(f"the model did not answer within {self.timeout:g} s (a stuck "
                                                "prediction thread; it was replaced): try again"))
                    self.stuck += 1
                    replace = pool is self.pool and self.stuck <= MAX_STUCK
                    if replace:
                        self.pool = self._new_pool()
                        self.replaced += 1
                        pool.shutdown(wait=False)  # its other threads finish what they hold, then end
            for started, _, _ in overdue:
                if self.stuck <= MAX_STUCK:
                    log.warning("%s: a prediction ran %.1f s (limit %g s): answered with an error, its thread "
                                "replaced (%d stuck now)", self.name, now - started, self.timeout, self.stuck)
                else:
                    log.error("%s: %d predictions are stuck, more than the %d replaced: no more threads are added",
                              self.name, self.stuck, MAX_STUCK)

    def shutdown(self) -> None:
        self.closed.set()
        with self.lock:
            pool = self.pool
        pool.shutdown(wait=False, cancel_futures=True)


def settle(answer: futures.Future, result=None, error: BaseException | None = None) -> None:
    """Give the future its outcome unless it has one (the watchdog and the thread may race)."""
    try:
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)
    except futures.InvalidStateError:
        pass


def _stall_if_asked() -> None:
    """The test-only fault: hang while the stall file is held (see the module docstring)."""
    path = os.environ.get(STALL_FILE)
    if not path:
        return
    held = f"{path}.held"
    try:
        os.rename(path, held)  # atomic: one prediction takes it
    except OSError:
        return
    log.warning("stall file %s taken: this prediction hangs until %s is removed (a test's fault)", path, held)
    deadline = time.monotonic() + STALL_LIMIT_S
    while os.path.exists(held) and time.monotonic() < deadline:
        time.sleep(0.05)
