"""The compatible server's request counts and latency, as TF Serving's Prometheus page names them.

Each request is counted once, when it is answered, under its status code (OK, the ServingError's
code, INTERNAL for anything else); REST and gRPC alike. The batching histograms are batcher.py's.
"""
from __future__ import annotations

import threading

from serving.tfserving.compat_models import ServingError


class RequestCounts:
    """Requests per (model, status) and the summed latency of those that reached the model; thread-safe."""

    def __init__(self):
        self.counts: dict[tuple, int] = {}
        self.latency_us = {"sum": 0.0, "count": 0}
        self.lock = threading.Lock()

    def count(self, name: str, code: str, seconds: float | None = None) -> None:
        """One request of model `name` that ended with `code`; its latency when it reached the model."""
        with self.lock:
            self.counts[(name, code)] = self.counts.get((name, code), 0) + 1
            if seconds is not None:
                self.latency_us["sum"] += seconds * 1e6
                self.latency_us["count"] += 1

    def text(self) -> str:
        """The counts and latency in Prometheus' text format, each line ending with a newline."""
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self.lock:
            for (model, code), count in sorted(self.counts.items()):
                lines.append(f':tensorflow:serving:request_count{{model_name="{model}",status="{code}"}} {count}')
            lines += ["# TYPE :tensorflow:serving:request_latency_us summary",
                      f":tensorflow:serving:request_latency_us_sum {self.latency_us['sum']:.1f}",
                      f":tensorflow:serving:request_latency_us_count {self.latency_us['count']}"]
        return "\n".join(lines) + "\n"


def status_of(error: BaseException | None) -> str:
    """The status a request is counted under: OK, its ServingError's code, or INTERNAL for anything else."""
    if error is None:
        return "OK"
    return error.code.name if isinstance(error, ServingError) else "INTERNAL"
