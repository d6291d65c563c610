"""Open-loop load at a fixed arrival rate: Poisson arrivals, latency from each request's scheduled time.

    python -m serving.load.openloop --target torchserve-grpc --rate 200 --seconds 10   # needs `make serve`

A closed loop (N users, each waiting for its answer before the next call) sends less when the
server slows down, so slow answers hide their own queueing: coordinated omission. Here the send
times are drawn first (exponential gaps at `rate` per second) and every latency is measured from
the time a request was *scheduled*, not from when a free client thread got round to sending it, so
a stalled server shows up as tail latency. Client threads each own a Predictor
(core/registry.py) and take the next scheduled request when they are free. A request still
unsent `--grace` seconds after the run's end is counted as an error ("not sent"), which bounds a
run against an overwhelmed server. Every answer is checked: (N, K) probabilities summing to 1, K the spec's class count.

Writes the result (offered and achieved rate, p50/p90/p99/max in ms, errors) as JSON to `--out`
(default: artifacts/bench/load-run-<target>.json) and prints it.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from core import spec as specs
from serving import endpoints as endpoints_mod
from training import data, paths

PERCENTILES = (50, 90, 99)
CLIENT_TIMEOUT_S = 5.0  # a request slower than this is an error, far past any latency objective


def poisson_schedule(rate: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Send offsets (seconds from the start) of a Poisson process at `rate` per second over `seconds`."""
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive, got rate={rate} seconds={seconds}")
    gaps = rng.exponential(1.0 / rate, size=int(rate * seconds * 1.5) + 16)
    times = np.cumsum(gaps)
    while times[-1] < seconds:  # rare: draw more until the window is covered
        times = np.concatenate([times, times[-1] + np.cumsum(rng.exponential(1.0 / rate, size=len(times)))])
    return times[times < seconds]


def summarize(latencies_ms, errors: int, elapsed_s: float) -> dict:
    """Counts and latency percentiles (ms) of one run; achieved rate = good answers per second."""
    ms = np.asarray(latencies_ms, dtype=float)
    stats = {"completed": int(len(ms)), "errors": int(errors),
             "achieved_rps": round(len(ms) / elapsed_s, 2) if elapsed_s > 0 else 0.0}
    for p in PERCENTILES:
        stats[f"p{p}_ms"] = round(float(np.percentile(ms, p)), 3) if len(ms) else None
    stats["max_ms"] = round(float(ms.max()), 3) if len(ms) else None
    return stats


def check_answer(probabilities: np.ndarray, rows: int, classes: int) -> None:
    """Raise ValueError unless the answer is (rows, classes) probabilities that sum to 1."""
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (rows, classes) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(f"malformed answer: shape {probabilities.shape}")


def run(make_predictor, images: np.ndarray, classes: int, rate: float, seconds: float, threads: int = 32,
        grace: float = 2.0, seed: int | None = None) -> dict:
    """One open-loop run at `rate` requests/s for `seconds`; `make_predictor()` gives each thread its client.

    The arrivals are reproducible: by default the seed is derived from the rate, so every endpoint
    sees the same arrivals at a given rate, and each rate its own draw.
    """
    seed = int(rate * 1000) if seed is None else seed
    schedule = poisson_schedule(rate, seconds, np.random.default_rng(seed))
    predictors = [make_predictor() for _ in range(threads)]
    for predictor in predictors:  # connect and warm each client before the clock starts
        predictor.timeout = CLIENT_TIMEOUT_S
        check_answer(predictor.predict(images[:1]), 1, classes)
    latencies, lags, errors = [], [], Counter()
    lock, next_index = threading.Lock(), [0]
    start = time.perf_counter() + 0.05
    deadline = start + seconds + grace

    def worker(predictor) -> None:
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= len(schedule):
                return
            scheduled = start + schedule[index]
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            if sent > deadline:
                with lock:
                    errors["not sent: the client fell behind the schedule"] += 1
                continue
            image = images[index % len(images)][None]
            try:
                check_answer(predictor.predict(image), 1, classes)
            except Exception as error:  # every failure is a result here, named by its type and text
                with lock:
                    errors[f"{type(error).__name__}: {str(error)[:120]}"] += 1
                continue
            done = time.perf_counter()
            with lock:
                latencies.append((done - scheduled) * 1e3)
                lags.append((sent - scheduled) * 1e3)

    pool = [threading.Thread(target=worker, args=(p,), daemon=True) for p in predictors]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = max(time.perf_counter() - start, seconds)
    for predictor in predictors:
        getattr(predictor, "close", lambda: None)()
    result = {"offered_rps": round(float(rate), 2), "seconds": seconds, "scheduled": int(len(schedule)),
              **summarize(latencies, sum(errors.values()), elapsed),
              "send_lag_p99_ms": round(float(np.percentile(lags, 99)), 3) if lags else None,
              "error_kinds": dict(errors.most_common(5)), "client_threads": threads}
    return result


def test_images(root: Path, count: int = 64) -> np.ndarray:
    """The first `count` test-split images, (count, 8, 8) float32: what every load request sends (one each)."""
    return data.load_split(paths.split_path(root))["test"].x[:count].astype(np.float32)


def predictor_factory(target: str, root: Path, endpoints=None):
    """A function that builds a fresh client of served target `target` (core/registry.py)."""
    from core import registry

    if target not in registry.served():
        raise SystemExit(f"error: unknown served target {target!r}; choose one of {', '.join(registry.served())}")
    return lambda: registry.load(target, root=root, endpoints=endpoints)


def main(argv=None) -> dict:
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
    result = {"target": args.target,
              "command": "python -m serving.load.openloop " + shlex.join(sys.argv[1:] if argv is None else argv),
              **run(predictor_factory(args.target, root, endpoints), test_images(root), specs.load(root).num_classes,
                    args.rate, args.seconds, args.threads)}
    out = args.out or root / "bench" / f"load-run-{args.target}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
