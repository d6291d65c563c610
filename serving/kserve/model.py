"""The spec's model as a `kserve.Model`, one per framework: PyTorch weights in PyTorch, the Keras model in TensorFlow.

KServe's ModelServer hands `predict` an `InferRequest` (Open Inference Protocol V2, over REST or
gRPC) or a dict (V1 REST, `{"instances": [...]}`). Either way the one input goes through the
project's checks (serving/v2/protocol.py for V2, core/contract.py for both), so a bad request is
refused with a message naming what is wrong, and the model only ever sees a valid float32 batch.
The model is a Predictor of the registry (versions.PREDICTORS), verified against the manifest, of the newest
version (serving/kserve/versions.py), which a thread watches for: each answer names its version.
Predictions run on model threads with a watchdog (serving/watchdog.py), not on the event loop that
KServe runs a plain `predict` on: a prediction that sticks (a deadlock, a hung library call) is
answered 504 / DEADLINE_EXCEEDED after `prediction_timeout` seconds and its thread replaced, while
REST, gRPC and the other threads keep answering (on the event loop it would stop the whole server).
Runs in .venv-kserve (kserve 0.21 pins protobuf<7).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import numpy as np
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from core import contract, registry
from core import spec as specs
from serving import watchdog
from serving.kserve import versions
from serving.v2 import protocol

log = logging.getLogger("digits.kserve")
PLATFORMS = {"torch": "pytorch", "tensorflow": "tensorflow"}  # what GET /v2/models/<name> calls each
MODEL_THREADS = 4  # predictions running at once, off the event loop


class SpecModel(Model):
    """The model of artifacts folder `root` in `framework` ("torch" or "tensorflow"), under the spec's model name."""

    def __init__(self, root: Path, framework: str, model_threads: int = MODEL_THREADS,
                 prediction_timeout: float = watchdog.TIMEOUT_S):
        self.spec = specs.load(root)
        super().__init__(self.spec.model_name)
        self.root, self.framework = root, framework
        self.platform = PLATFORMS[framework]
        self.served = None  # (version, Predictor), swapped whole when another version takes over
        self.refused = {}  # version -> (why, its folder's mtime): tried again once the folder changes
        self.threads = watchdog.ModelThreads(model_threads, prediction_timeout, "kserve-predict")

    @property
    def predictor(self):
        return self.served[1]

    def load(self) -> bool:
        self.served = self.load_version(*versions.newest(self.root))
        threading.Thread(target=self.watch, name="model-versions", daemon=True).start()
        self.ready = True
        return self.ready

    def load_version(self, version: int, folder: Path) -> tuple[int, object]:
        """Version `version` from artifacts folder `folder`, verified and warmed up, not yet serving."""
        predictor = registry.load(versions.PREDICTORS[self.framework], root=folder)
        predictor.predict(np.full((1, *self.spec.item_shape), self.spec.value_min, np.float32))
        return version, predictor

    def watch(self) -> None:
        """Serve the newest version (serving/kserve/versions.py): the old one answers until the new one is loaded."""
        while True:
            time.sleep(versions.POLL_SECONDS)
            try:
                version, folder = versions.newest(self.root)
                if version == self.served[0]:
                    continue
                stamp = folder.stat().st_mtime_ns
                if self.refused.get(version, (None, None))[1] == stamp:
                    continue
                try:
                    self.served = self.load_version(version, folder)
                    log.info("serving version %d of %s", version, self.name)
                except Exception as error:  # a damaged version: keep serving the current one, say why once
                    self.refused[version] = (str(error), stamp)
                    log.warning("version %d of %s refused, still serving %d: %s", version, self.name,
                                self.served[0], error)
            except OSError as error:  # the folder moved while it was read (a rollback): look again
                log.info("versions of %s: %s", self.name, error)

    # What V2 model metadata lists (KServe lists nothing unless the model says).
    def get_input_types(self) -> list[dict]:
        return [protocol.input_metadata(self.spec)]

    def get_output_types(self) -> list[dict]:
        return [protocol.output_metadata(self.spec)]

    async def predict(self, payload, headers=None):
        """The answer of `answer` from a model thread; 504 when the thread sticks (serving/watchdog.py)."""
        return await self.on_model_thread(self.answer, payload)

    async def on_model_thread(self, work, *args):
        """`work(*args)` on a model thread under the watchdog, off the event loop (reading a request and
        predicting are CPU work that would stall every other request); 504 when it sticks."""
        try:
            return await asyncio.wrap_future(self.threads.submit(work, *args))
        except watchdog.Stuck as error:
            log.warning("%s", error)
            raise protocol.V2Error(504, str(error)) from None

    def answer(self, payload):
        """One request's answer (V2 InferResponse or V1 dict), computed on a model thread."""
        version, predictor = self.served  # one version answers the whole request
        if isinstance(payload, InferRequest):
            batch = v2_batch(self.spec, payload)
            return self.v2_response(payload, batch, version, predictor.predict(batch))
        batch = v1_batch(self.spec, payload)
        answer = {"predictions": predictor.predict(batch).tolist(), "model_version": str(version)}
        if warning := self.warning(batch, '"instances"'):
            answer["warning"] = warning
        return answer

    def v2_response(self, payload: InferRequest, batch: np.ndarray, version: int,
                    probabilities: np.ndarray) -> InferResponse:
        """The V2 answer to `payload`, whose checked batch version `version` answered with `probabilities`."""
        output = InferOutput(name=self.spec.output_name, shape=list(probabilities.shape), datatype="FP32")
        # Raw bytes when the request came over gRPC or asked for binary outputs, JSON numbers otherwise.
        output.set_data_from_numpy(probabilities.astype(np.float32), binary_data=payload.use_binary_outputs)
        warning = self.warning(batch, f"input {payload.inputs[0].name!r}")
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[output],
                             model_version=str(version), use_binary_outputs=payload.use_binary_outputs,
                             parameters={"warning": warning} if warning else None)

    def warning(self, batch: np.ndarray, source: str) -> str | None:
        """The range warning for an answered batch (core.contract.range_warning), logged; None when it looks right.
        V2 carries it in the response's `parameters`, V1 beside the predictions."""
        warning = contract.range_warning(batch, self.spec, source)
        if warning is not None:
            log.warning("%s", warning)
        return warning


def v2_batch(spec: specs.Spec, request: InferRequest) -> np.ndarray:
    """The checked float32 batch of a V2 request's one input (V2Error 400 naming the problem)."""
    if len(request.inputs) != 1:
        raise protocol.V2Error(400, f"the request holds {len(request.inputs)} inputs: this model takes one, "
                                    f"{spec.input_name!r}")
    (one,) = request.inputs
    return protocol.input_batch(spec, one.name, one.datatype, one.shape, wire_data(one))


def wire_data(one):
    """An input's values as they came: gRPC raw bytes as a numpy array (or the pictures of a BYTES
    input), else the list the request held."""
    raw = one._raw_data  # kserve 0.21 keeps raw_input_contents here; `data` is empty for them
    if raw is None:
        return one.data
    if one.datatype == protocol.PICTURES:
        return list(_split_bytes(raw))
    dtype = protocol.NUMERIC.get(one.datatype)
    if dtype is None:
        return one.data  # the protocol module names the datatype
    if len(raw) % np.dtype(dtype).itemsize:
        raise protocol.V2Error(400, f"input {one.name!r}: {len(raw)} raw bytes are not a whole number of "
                                    f"{one.datatype} values")
    return np.frombuffer(raw, dtype=dtype)


def _split_bytes(raw: bytes):
    """The elements of a raw BYTES tensor: each a 4-byte little-endian length, then its bytes."""
    at = 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise protocol.V2Error(400, "a raw BYTES tensor ends inside an element's length")
        size = int.from_bytes(raw[at:at + 4], "little")
        if at + 4 + size > len(raw):
            raise protocol.V2Error(400, "a raw BYTES tensor's element runs past its end")
        yield raw[at + 4:at + 4 + size]
        at += 4 + size


def v1_batch(spec: specs.Spec, payload) -> np.ndarray:
    """The checked float32 batch of a V1 request, {"instances": [...]} (V2Error 400 naming the problem)."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise protocol.V2Error(400, 'the JSON body must be an object with an "instances" list')
    try:
        return contract.check_instances(payload["instances"], spec)
    except contract.ContractError as error:
        raise protocol.V2Error(400, str(error)) from None
