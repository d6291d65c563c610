"""The one timer and the one percentile summary every benchmark uses.

    from benchmarks import timing
    first, samples = timing.time_calls(lambda: predictor.predict(batch), iterations=300, warmup=30)
    row = timing.summarize(samples, unit="us")          # {"n", "mean_us", "p50_us", "p90_us", "p99_us", "max_us"}

Percentiles are nearest-rank (numpy's "inverted_cdf"): always one of the measured samples, never
an interpolation between two. The page's JS benchmark (web/tfjs/tools/bench.js) uses the same rule
and writes the same keys, so a p99 means the same thing in every JSON file under artifacts/bench/.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

PERCENTILES = (50, 90, 99)
UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6}


def now() -> float:
    """Seconds on the monotonic high-resolution clock every measurement here reads."""
    return time.perf_counter()


def summarize(samples_s: Iterable[float], unit: str = "ms", digits: int = 3) -> dict:
    """Count, mean, p50/p90/p99 and max of `samples_s` (seconds), in `unit`; None where there are no samples."""
    scale = UNITS[unit]
    values = np.asarray(list(samples_s), dtype=float) * scale
    summary: dict = {"n": int(len(values))}
    if not len(values):
        return {**summary, f"mean_{unit}": None, **{f"p{p}_{unit}": None for p in PERCENTILES}, f"max_{unit}": None}
    summary[f"mean_{unit}"] = round(float(values.mean()), digits)
    for p in PERCENTILES:
        summary[f"p{p}_{unit}"] = round(float(np.percentile(values, p, method="inverted_cdf")), digits)
    summary[f"max_{unit}"] = round(float(values.max()), digits)
    return summary


def time_calls(call: Callable[[], object], iterations: int, warmup: int = 0) -> tuple[float, list[float]]:
    """(seconds of the first call, seconds of each of `iterations` timed calls after `warmup` untimed ones).

    The first call is kept apart: for a compiled target it is the compile (or the retrace)."""
    start = now()
    call()
    first = now() - start
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = now()
        call()
        samples.append(now() - start)
    return first, samples


def time_for(call: Callable[[], object], seconds: float, warmup: int = 0) -> tuple[list[float], float]:
    """(seconds of each call, elapsed seconds) of calling `call` back to back for about `seconds`."""
    for _ in range(warmup):
        call()
    samples = []
    began = now()
    while now() - began < seconds:
        start = now()
        call()
        samples.append(now() - start)
    return samples, now() - began
