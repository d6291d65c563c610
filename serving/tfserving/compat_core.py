"""What the compatible server's gRPC and REST fronts share: the models of one models.config.

`Server` finds a request's model (TF Serving's NOT_FOUND words when it cannot), starts it through
compat_models.submit (queued on the one batch scheduler when batching is on), counts it for the
metrics page (compat_metrics.py) and warns about inputs that sit far off the spec's range.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np

from core.contract import range_warning
from serving import watchdog
from serving.tfserving import batching_params, configs
from serving.tfserving.batcher import Scheduler
from serving.tfserving.compat_metrics import RequestCounts, status_of
from serving.tfserving.compat_models import ModelRegistry, ServingError, contract_of, submit

log = logging.getLogger("compat_server")
# Seconds one prediction may run (its time in the queue not counted) before its request is answered
# DEADLINE_EXCEEDED / HTTP 504 and its thread replaced (serving/watchdog.py).
PREDICTION_TIMEOUT_S = watchdog.TIMEOUT_S


class Server:
    """The models of one models.config, the batch scheduler (batching on), request counters for the metrics."""

    def __init__(self, model_config_file: Path, batching: batching_params.BatchingParameters | None = None,
                 prediction_timeout_s: float = PREDICTION_TIMEOUT_S):
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        config = text_format.Parse(Path(model_config_file).read_text(), model_server_config_pb2.ModelServerConfig())
        # One scheduler (num_batch_threads threads) for every model and version, as in TF Serving.
        self.scheduler = Scheduler(batching, prediction_timeout_s) if batching else None
        self.models = {}
        for model in config.model_config_list.config:
            base = Path(model.base_path)
            # Our layout is <artifacts>/tfserving/<model>: check versions against that manifest.
            root = configs.artifacts_root_of(base)
            if root is None:
                log.warning("%s: no artifact manifest next to %s; versions are loaded unchecked", model.name, base)
            self.models[model.name] = ModelRegistry(model, root, self.scheduler)
        # The largest request: checked before a request's tensors are built; without batching the spec's.
        self.max_batch_size = batching.max_batch_size if batching else None
        self.requests = RequestCounts()

    def status(self, name: str, version: int | None) -> list:
        if name not in self.models:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")
        return self.models[name].status(version)

    def registry(self, name: str, version: int | None = None) -> ModelRegistry:
        if name not in self.models:
            if version is None:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({name}, {version})")
        return self.models[name]

    def predict(self, name, version, signature_name, inputs, output_filter=()):
        """One request, waited for: (version served, signature name, {output name: ndarray})."""
        return self.submit(name, version, signature_name, inputs, output_filter, blocking=True).result()

    def submit(self, name, version, signature_name, inputs, output_filter=(), blocking=False) -> futures.Future:
        """compat_models.submit for model `name`: checked and queued (batching on) or run here (`blocking`,
        batching off); a refusal raises here. Each request is counted once, when it is answered."""
        start = time.perf_counter()
        try:
            answer = submit(self.registry(name, version), version, signature_name, inputs, output_filter,
                            self.max_batch_size, blocking)
        except Exception as error:
            self.requests.count(name, status_of(error), time.perf_counter() - start)
            raise
        answer.add_done_callback(lambda done: self.requests.count(name, status_of(done.exception()),
                                                                  time.perf_counter() - start))
        return answer

    def poll_forever(self, seconds: float, stop: threading.Event) -> None:
        while not stop.wait(seconds):
            for registry in self.models.values():
                registry.poll()

    def metrics_text(self) -> str:
        """The metrics page: request counts and latency, then the batching histograms (batching on)."""
        batching = self.scheduler.metrics.text() if self.scheduler else ""
        return self.requests.text() + batching

    def input_warning(self, name: str, shape: list[int], array: np.ndarray, source: str) -> str | None:
        """The range warning for an answered input of `shape` (core.contract.range_warning), logged; None when it
        looks right."""
        warning = range_warning(array, contract_of(self.registry(name), shape), source)
        if warning is not None:
            log.warning("%s: %s", name, warning)
        return warning
