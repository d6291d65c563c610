"""TorchServe handler for the trained model; shipped inside `<model name>.mar` (see archive.py).

Each request is either JSON `{"instances": [image, ...]}` (each image of the spec's item shape, raw
values in its range: 8x8 values 0..16 for the digits) or the PNG/JPEG bytes of one picture, made
into one input by `training/preprocess.py` (shipped in the archive) the spec's way. The answer is
`{"predictions": [{"label": "3", "probabilities": [K floats]}]}`.

TorchServe's dynamic batching hands this handler several requests at once: the valid ones run
as one tensor and are split back. A bad request gets a 400 with a message naming the problem:
- when every request in the batch failed with the same message (the usual case: a lone bad
  request), the handler raises PredictionException(400), which TorchServe answers as HTTP 400 and
  gRPC INVALID_ARGUMENT;
- otherwise the bad ones get a per-request HTTP 400 and `{"error": ...}` without failing their
  neighbours (TorchServe 0.12's gRPC path ignores per-request status codes and answers OK with
  that body; the gRPC client turns it into an error). Labels and the input contract come from the
`spec.json` inside the archive; nothing is re-declared here.

With DIGITS_HANDLER_TIMERS=1 in the worker's environment (the overhead breakdown,
benchmarks/torchserve_breakdown.py, sets it through the settings' torchserve_env) the handler also
times its own three parts per batch (decode: the requests to one array; model: the network; encode:
the answers) and adds them to TorchServe's metrics as counters, in microseconds: DigitsDecodeTime,
DigitsModelTime, DigitsEncodeTime and DigitsHandlerCalls (batches), read from the Prometheus
endpoint (`model_metrics_auto_detect=true` lists them). Off by default: each metric is one more line
from the worker to the frontend per batch.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch
from ts.torch_handler.base_handler import BaseHandler
from ts.utils.util import PredictionException

from core import spec as specs
from core.contract import ContractError, check_instances, parse_json, range_warning, warning_header
from training.preprocess import ImageError, picture_format, picture_to_input

logger = logging.getLogger(__name__)

EXPECTED = 'JSON {"instances": [...]} or a PNG/JPEG image'  # what a bad request is told to send
TIMERS = ("DigitsDecodeTime", "DigitsModelTime", "DigitsEncodeTime")  # counters, microseconds (see above)


class DigitsHandler(BaseHandler):
    timers = False  # DIGITS_HANDLER_TIMERS=1 at initialize: count this handler's own times (see above)

    def initialize(self, context):
        if "OMP_NUM_THREADS" not in os.environ:
            # One PyTorch thread per worker unless OMP_NUM_THREADS says otherwise: TorchServe scales by
            # workers (config.properties: 2), and each worker's PyTorch would start a thread per core, so
            # workers x cores threads spin on the same cores. 64 requests in flight on 2 cores, 2 workers:
            # 583 infer/s with PyTorch's default, 2,261 with one thread each (perf_analyzer, one run).
            torch.set_num_threads(1)
        super().initialize(context)  # loads the TorchScript file named in the archive's manifest
        model_dir = context.system_properties.get("model_dir")
        self.spec = specs.from_file(os.path.join(model_dir, "spec.json"))
        self.labels = self.spec.labels
        self.timers = os.environ.get("DIGITS_HANDLER_TIMERS") == "1"
        logger.info("%s handler ready: labels %s, input %s", self.spec.model_name, self.labels, self.spec.data["input"])

    def handle(self, data, context):
        """data: one entry per request in this batch; returns one response body per request."""
        self.context = context
        began = time.perf_counter()
        batches, errors, self.warnings = [], {}, {}
        for idx, row in enumerate(data):
            try:
                batches.append(self.request_to_batch(row, idx))
            except (ContractError, ImageError) as error:
                errors[idx] = str(error)
                batches.append(None)
        if errors and len(errors) == len(data) and len(set(errors.values())) == 1:
            raise PredictionException(errors[0], 400)
        good = [b for b in batches if b is not None]
        decoded = time.perf_counter()
        probabilities = self.run(np.concatenate(good)) if good else np.zeros((0, len(self.labels)), np.float32)
        ran = time.perf_counter()

        responses, start = [], 0
        for idx, batch in enumerate(batches):
            if batch is None:
                context.set_response_status(code=400, phrase=errors[idx], idx=idx)
                responses.append({"error": errors[idx]})
                continue
            rows = probabilities[start : start + len(batch)]  # (n, 10) for this request
            start += len(batch)
            response = {"predictions": [
                {"label": self.labels[int(np.argmax(row))], "probabilities": row.tolist()} for row in rows]}
            if idx in self.warnings:  # answered, but the input looks scaled for another range
                # An HTTP `Warning` header on REST; in the body too: TorchServe's gRPC front sends no metadata.
                context.set_response_header(idx, "Warning", warning_header(self.warnings[idx]))
                response["warnings"] = [self.warnings[idx]]
            responses.append(response)
        if self.timers:
            self.count_time(context, decoded - began, ran - decoded, time.perf_counter() - ran)
        return responses

    @staticmethod
    def count_time(context, *seconds: float) -> None:
        """Add this batch's decode, model and encode times (s) to TorchServe's counters, in microseconds."""
        from ts.metrics.metric_type_enum import MetricTypes

        for name, value in zip(TIMERS, seconds, strict=True):
            context.metrics.add_metric(name, round(value * 1e6, 1), unit="us", metric_type=MetricTypes.COUNTER)
        context.metrics.add_counter("DigitsHandlerCalls", 1)

    def request_to_batch(self, row, idx: int = 0) -> np.ndarray:
        """One request (JSON or picture) -> float32 (n, *item_shape); ContractError/ImageError when bad.

        A JSON batch far off the spec's range in distribution is kept, with a warning in self.warnings[idx].
        """
        body = row.get("data") if row.get("data") is not None else row.get("body")
        if body is None:
            raise ContractError(f"the request has no body: send {EXPECTED}")
        if isinstance(body, (bytes, bytearray)):
            # Any picture format Pillow recognizes goes to the picture path, which reads PNG/JPEG and
            # names any other ("unsupported picture format GIF"), instead of "not valid JSON".
            if picture_format(body) is not None:
                return picture_to_input(bytes(body), self.spec)[None]  # (1, *item_shape)
            # gRPC and other content types deliver JSON as raw bytes; TorchServe hands over the raw
            # bytes too when its own JSON decoding failed.
            body = parse_json(body, EXPECTED)
        elif isinstance(body, str):
            body = parse_json(body, EXPECTED)
        if not isinstance(body, dict) or "instances" not in body:
            raise ContractError('the JSON body must be an object with an "instances" list')
        batch = check_instances(body["instances"], self.spec)
        warning = range_warning(batch, self.spec, '"instances"')
        if warning is not None:
            logger.warning("request %d: %s", idx, warning)
            self.warnings[idx] = warning
        return batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, *item_shape) float32 -> (N, K) float32 probabilities."""
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch).to(self.device)).cpu().numpy()
