"""A TF-Serving-compatible model server, for machines where tensorflow_model_server is missing.

    python -m serving.tfserving.compat_server --port=8500 --rest_api_port=8501 \
        --model_config_file=models.config [--enable_batching --batching_parameters_file=...] \
        [--monitoring_config_file=...] [--file_system_poll_wait_seconds=1] [--host=127.0.0.1]

It takes tensorflow_model_server's flags and files and serves the same directory layout
(`<base_path>/<int version>/saved_model.pb`), so `make serve` starts either with one command line.
gRPC, through the official tensorflow-serving-api protos: PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus (Classify, Regress, MultiInference and
HandleReloadConfigRequest answer UNIMPLEMENTED). REST: GET /v1/models/<name>[/versions/<v>],
GET .../metadata, POST ...:predict with "instances" (row format) or "inputs" (columnar); an image
may be a picture as TF Serving's binary convention `{"b64": "<base64 PNG/JPEG>"}`, made into one
input the spec's way (training/preprocess.py, as TorchServe reads a posted picture). A batch that
is answered but sits far off the spec's range (0..1 values for a 0..255 model) is logged and gets an
HTTP `Warning` header (REST) or a `warning` trailing metadata entry (gRPC).
Errors use TF Serving's status codes: NOT_FOUND for an unknown model or version,
INVALID_ARGUMENT with a message naming the problem (HTTP 404 / 400 with {"error": ...}), also for
a request that is not a valid protobuf; a request body over the spec's MAX_REQUEST_BYTES gets
RESOURCE_EXHAUSTED (HTTP 413).

With --enable_batching it batches as TF Serving does (batcher.py): concurrent requests to one
model version and signature, from REST and gRPC alike, are merged into one model call and each gets
exactly its own rows back. The --batching_parameters_file is TF Serving's BatchingParameters text
proto, read by protobuf's parser (batching_params.py): max_batch_size, batch_timeout_micros,
max_enqueued_batches, num_batch_threads (one scheduler for all models and versions),
allowed_batch_sizes (batches padded up to the next one), pad_variable_length_inputs. A request over
max_batch_size is INVALID_ARGUMENT "Task size N is larger than maximum input batch size M"; a full
queue is UNAVAILABLE (REST 503) "The batch scheduling queue to which this task was submitted is
full; ...". Batch sizes, padding and time queued are on the metrics page under TF Serving's names.

REST runs on aiohttp (asyncio) with a listen backlog, a connection limit counted from accept,
header, body and keep-alive timeouts (core/connections.py) and the predictions on bounded model
threads off the event loop (RestLimits); gRPC on grpc.aio on the same event loop, --grpc_max_threads
(TF Serving's flag and default) predictions handled at once, a limit on calls in progress and the
same connection limits in gRPC's terms. A gRPC prediction costs no thread: it waits for its batch on
the loop. Over a limit a request is refused explicitly, never dropped: HTTP 503 with Retry-After,
gRPC RESOURCE_EXHAUSTED. The model runs on threads with a watchdog (serving/watchdog.py; with
batching, the scheduler's batch threads): a prediction that runs past --prediction_timeout_seconds
is answered DEADLINE_EXCEEDED (HTTP 504) and its thread replaced.

Differences from the real server, on purpose: it checks each version against the artifact
manifest before loading it; it refuses NaN/Inf and values outside the spec's value range, and a
tensor that declares a shape but carries no values (TensorFlow reads zeros); it does not split a
request across batches (enable_large_batch_splitting is refused); metrics are a few counters and the
batching histograms.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import math
import os
import re
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from core import connections
from core.contract import ContractError, check_instances, parse_json, range_warning, warning_header
from core.spec import DRAIN_LIMIT, MAX_REQUEST_BYTES
from serving import watchdog
from serving.tfserving import batching_params, configs
from serving.tfserving.batcher import Scheduler
from serving.tfserving.compat_models import (
    ModelRegistry,
    ServingError,
    check_proto_shape,
    contract_of,
    expected_shape,
    signature,
    submit,
    view_of,
)
from training.preprocess import ImageError, picture_to_input

log = logging.getLogger("compat_server")
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
               grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.INTERNAL: 500,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.UNAVAILABLE: 503}  # 503: a full batch queue
GRPC_MAX_CONCURRENT_RPCS = 4096  # gRPC calls in progress at once, queued ones included; more: RESOURCE_EXHAUSTED
# tensorflow_model_server's --grpc_max_threads default: gRPC handler threads, and as many model threads
# behind them (a batch merges only the calls in progress, so this also bounds a gRPC batch).
GRPC_MAX_THREADS = 4 * (os.cpu_count() or 1)
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
        self.counts: dict[tuple, int] = {}
        self.latency_us = {"sum": 0.0, "count": 0}
        self.lock = threading.Lock()

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
            self.count(name, status_of(error), time.perf_counter() - start)
            raise
        answer.add_done_callback(lambda done: self.count(name, status_of(done.exception()),
                                                         time.perf_counter() - start))
        return answer

    def count(self, name: str, code: str, seconds: float | None = None) -> None:
        """One request of model `name` that ended with `code`; its latency when it reached the model."""
        with self.lock:
            self.counts[(name, code)] = self.counts.get((name, code), 0) + 1
            if seconds is not None:
                self.latency_us["sum"] += seconds * 1e6
                self.latency_us["count"] += 1

    def poll_forever(self, seconds: float, stop: threading.Event) -> None:
        while not stop.wait(seconds):
            for registry in self.models.values():
                registry.poll()

    def metrics_text(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self.lock:
            for (model, code), count in sorted(self.counts.items()):
                lines.append(f':tensorflow:serving:request_count{{model_name="{model}",status="{code}"}} {count}')
            lines += ["# TYPE :tensorflow:serving:request_latency_us summary",
                      f":tensorflow:serving:request_latency_us_sum {self.latency_us['sum']:.1f}",
                      f":tensorflow:serving:request_latency_us_count {self.latency_us['count']}"]
        batching = self.scheduler.metrics.text() if self.scheduler else ""
        return "\n".join(lines) + "\n" + batching


def status_of(error: BaseException | None) -> str:
    """The status a request is counted under: OK, its ServingError's code, or INTERNAL for anything else."""
    if error is None:
        return "OK"
    return error.code.name if isinstance(error, ServingError) else "INTERNAL"


# ---- gRPC -------------------------------------------------------------------------------------

async def _abort(context, error: ServingError):
    await context.abort(error.code, error.message)


def _version(model_spec) -> int | None:
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           "version labels are not supported by this server; use a version")
    return None


def _dtype_name(number: int) -> str:
    """A DataType enum value's name (float32, string...), or words saying it is not one."""
    import tensorflow as tf

    try:
        return tf.dtypes.as_dtype(number).name if number else "an invalid dtype"
    except TypeError:
        return f"an unknown dtype ({number})"


# The dtypes whose values a TensorProto may carry as raw bytes (tensor_content), read and written here
# without TensorFlow's converters: they cost more than the rest of a small request. DataType enum -> numpy.
PLAIN_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
                17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
PLAIN_ENUMS = {np.dtype(numpy_type): enum for enum, numpy_type in PLAIN_DTYPES.items()}
SHAPE_FIELDS = ("dtype", "tensor_shape", "version_number")  # a TensorProto's fields that carry no values
# DataType enum -> the typed value list that carries it in full (one value per element) and its numpy type.
VALUE_FIELDS = {1: ("float_val", np.float32), 2: ("double_val", np.float64), 3: ("int_val", np.int32),
                9: ("int64_val", np.int64)}


def tensor_to_array(proto) -> np.ndarray:
    """A TensorProto's values as an ndarray of its declared shape (read-only when read in place).

    Raw bytes of a plain dtype (what tf.make_tensor_proto sends) are read in place, and a full list of
    values (float_val...: one per element, as gRPC clients in other languages send) is copied at once;
    anything else (fewer values filling the shape with the last one, strings, half floats) goes through
    tf.make_ndarray. Raises ValueError for values that do not fill the shape, and (unlike TensorFlow,
    which reads zeros) for a tensor that declares values and carries none.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    numpy_type = PLAIN_DTYPES.get(proto.dtype)
    if numpy_type is not None and proto.tensor_content:
        return np.frombuffer(proto.tensor_content, np.dtype(numpy_type).newbyteorder("<")).reshape(shape)
    count = math.prod(shape)
    field_name, numpy_type = VALUE_FIELDS.get(proto.dtype, (None, None))
    if field_name is not None and not proto.tensor_content:
        values = getattr(proto, field_name)
        if len(values) == count > 0:
            return np.array(values, dtype=numpy_type).reshape(shape)
    if count > 0 and not any(field.name not in SHAPE_FIELDS for field, _ in proto.ListFields()):
        # TensorFlow reads such a tensor as zeros: a client that lost its data would get answers for blank images.
        raise ValueError(f"its shape {shape} declares {count:,} values but it carries none")
    import tensorflow as tf

    return tf.make_ndarray(proto)


def array_to_tensor(value: np.ndarray, proto) -> None:
    """Write `value` into the TensorProto `proto` as tf.make_tensor_proto would (raw little-endian bytes
    for a plain dtype), without its per-call cost."""
    enum = PLAIN_ENUMS.get(value.dtype)
    if enum is None:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(value))
        return
    proto.dtype = enum
    for size in value.shape:
        proto.tensor_shape.dim.add().size = size
    proto.tensor_content = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()


def add_grpc_services(grpc_server, server: Server, threads: watchdog.ModelThreads | None = None,
                      calls_at_once: int = GRPC_MAX_THREADS) -> None:
    """PredictionService and ModelService on the grpc.aio server `grpc_server`.

    The handlers run on its event loop. A prediction waits for its batch there (the scheduler's batch
    threads run the model, watched); without batching it runs on `threads` (model threads with a
    watchdog: a stuck one answers DEADLINE_EXCEEDED and is replaced). `calls_at_once`
    (--grpc_max_threads) predictions are handled at once; later ones wait their turn.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    threads = threads or watchdog.ModelThreads(GRPC_MAX_THREADS, PREDICTION_TIMEOUT_S, "grpc-predict")
    handled = asyncio.Semaphore(calls_at_once)

    async def run_predict(*args):
        if server.scheduler is not None:  # checked and queued here; the batch runs on the scheduler's threads
            return await asyncio.wrap_future(server.submit(*args))
        try:
            return await asyncio.wrap_future(threads.submit(server.predict, *args))
        except watchdog.Stuck as error:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, str(error)) from None

    def read_inputs(request, view) -> dict:
        """The request's tensors as arrays, each checked against the signature before it is materialized."""
        if request.inputs.keys() != view.inputs:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "input names do not match the signature: "
                               f"sent {sorted(request.inputs)}, expected {sorted(view.inputs)}")
        inputs = {}
        for name, proto in request.inputs.items():
            if proto.dtype != view.dtypes[name]:
                want, got = tf.dtypes.as_dtype(view.dtypes[name]).name, _dtype_name(proto.dtype)
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f'input "{name}": expects arg to be {want} but {got} is provided')
            check_proto_shape(name, proto, view.shapes[name], server.max_batch_size)
            try:
                inputs[name] = tensor_to_array(proto)
            except (ValueError, TypeError) as error:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   f'input "{name}" is not a valid tensor: {error}') from error
        return inputs

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            async with handled:
                try:
                    spec = request.model_spec
                    version = _version(spec)
                    servable = server.registry(spec.name, version).servable(version)
                    view = view_of(servable, spec.signature_name)
                    inputs = read_inputs(request, view)
                    version, signature_name, outputs = await run_predict(spec.name, version, spec.signature_name,
                                                                         inputs, list(request.output_filter))
                except ServingError as error:
                    return await _abort(context, error)
            warnings = [w for n, array in inputs.items()
                        if (w := input_warning(server, spec.name, view.shapes[n], array, f'input "{n}"'))]
            if warnings:
                context.set_trailing_metadata([("warning", w) for w in warnings])
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = signature_name
            for name, value in outputs.items():
                array_to_tensor(value, response.outputs[name])
            return response

        async def GetModelMetadata(self, request, context):
            try:
                fields = list(request.metadata_field)
                if not fields:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       "GetModelMetadataRequest must specify at least one metadata_field")
                unsupported = [f for f in fields if f != "signature_def"]
                if unsupported:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                       f"Metadata field {unsupported[0]} is not supported")
                version = _version(request.model_spec)
                servable = server.registry(request.model_spec.name, version).servable(version)
            except ServingError as error:
                return await _abort(context, error)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = servable.version
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature_def in servable.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(signature_def)
            response.metadata["signature_def"].Pack(signature_map)
            return response

        async def _unimplemented(self, request, context):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "not implemented by the TF-Serving-compatible server: use Predict")

        Classify = Regress = MultiInference = _unimplemented

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        async def GetModelStatus(self, request, context):
            try:
                version = _version(request.model_spec)
                states = server.status(request.model_spec.name, version)
            except ServingError as error:
                return await _abort(context, error)
            response = get_model_status_pb2.GetModelStatusResponse()
            for number, state in states:
                status = response.model_version_status.add()
                status.version = number
                status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            return response

        async def HandleReloadConfigRequest(self, request, context):
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "config reload is not implemented: restart with `make stop serve`")

    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(), grpc_server)


# ---- REST -------------------------------------------------------------------------------------

ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                   r"(?P<rest>/metadata|:predict|:classify|:regress)?$")


def rest_status(server: Server, name: str, version: int | None) -> dict:
    states = server.status(name, version)
    return {"model_version_status": [{"version": str(v), "state": state,
                                      "status": {"error_code": "OK", "error_message": ""}}
                                     for v, state in states]}


def rest_metadata(server: Server, name: str, version: int | None) -> dict:
    from google.protobuf import json_format

    servable = server.registry(name, version).servable(version)
    signature_defs = {n: json_format.MessageToDict(s, preserving_proto_field_name=True)
                      for n, s in servable.signature_defs.items()}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": signature_defs}}}


def input_warning(server: Server, name: str, shape: list[int], array: np.ndarray, source: str) -> str | None:
    """The range warning for an answered input of `shape` (core.contract.range_warning), logged; None when it
    looks right."""
    warning = range_warning(array, contract_of(server.registry(name), shape), source)
    if warning is not None:
        log.warning("%s: %s", name, warning)
    return warning


def is_picture(item) -> bool:
    """TF Serving's JSON form of binary data: {"b64": "<base64>"}."""
    return isinstance(item, dict) and set(item) == {"b64"}


def read_pictures(value, spec, field: str, max_batch: int | None):
    """Each {"b64": ...} item of a request's list -> the input its picture makes (training.preprocess, the
    spec's reduction); other items are left for the contract check. ServingError names a bad picture."""
    if not isinstance(value, list) or not any(is_picture(item) for item in value):
        return value
    if len(value) > (max_batch or spec.max_batch_size):  # too many: the contract check refuses it, undecoded
        return value
    if not np.isfinite(spec.value_max):  # a foreign layout: no spec.json says how a picture becomes an input
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'"{field}": this model has no spec.json to read '
                           "pictures with; send numbers")
    items = []
    for index, item in enumerate(value):
        if not is_picture(item):
            items.append(item)
            continue
        where, text = f'"{field}"[{index}]', item["b64"]
        if not isinstance(text, str):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'{where}: "b64" must be a base64 string')
        try:
            data = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f'{where}: "b64" is not valid base64 ({error})') from error
        try:
            items.append(picture_to_input(data, spec).tolist())
        except ImageError as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {error}") from error
    return items


def rest_predict(server: Server, name: str, version: int | None, body: dict, warnings: list | None = None) -> dict:
    """One REST predict; a range warning about the input is appended to `warnings`."""
    if not isinstance(body, dict):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           'the request body must be a JSON object with "instances" or "inputs"')
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           'the request must have exactly one of "instances" or "inputs"')
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f'"signature_name" must be a string, got {type(signature_name).__name__}')
    servable = server.registry(name, version).servable(version)
    signature_def, _ = signature(servable, signature_name)
    (input_name, tensor_info), = signature_def.inputs.items()  # this server handles one-input signatures
    field = "instances" if "instances" in body else "inputs"
    value = body[field]
    if isinstance(value, dict) and not is_picture(value):  # {"inputs": {"image": [...]}} or named-input form
        value = value.get(input_name, value)
    if is_picture(value):  # {"inputs": {"b64": ...}}: one picture
        value = [value]
    if field == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
        value = [row.get(input_name) if isinstance(row, dict) and not is_picture(row) else row
                 for row in value]  # [{"image": ...}, ...]
    shape = expected_shape(tensor_info)
    contract = contract_of(server.registry(name, version), shape)
    pictures = read_pictures(value, contract, field, server.max_batch_size)
    try:
        array = check_instances(pictures, contract, field, max_batch=server.max_batch_size)
    except ContractError as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
    served, _, outputs = server.predict(name, version, signature_name, {input_name: array})
    warning = input_warning(server, name, shape, array, f'"{field}"') if pictures is value else None
    if warning and warnings is not None:  # only for numbers sent: a picture's reduction maps it onto the range
        warnings.append(warning)
    if field == "instances":
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(len(array))]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


@dataclass(frozen=True)
class RestLimits(connections.ConnectionLimits):
    """How much the REST API takes on at once; what is over a limit is answered 503 + Retry-After, never dropped.

    The connection limits (counted from accept, header, body and keep-alive timeouts, what a refused
    client is told to wait) are core/connections.py's; these add the listen backlog and the model's.
    """

    # Kernel queue of connections not yet accepted: a crowd of clients connecting at once waits
    # here instead of getting resets (Python's http.server listened with 5). The kernel caps it at
    # net.core.somaxconn (4096 on current Linux).
    backlog: int = 2048
    # Predictions running at once, each on a thread of its own, off the event loop: the model call
    # and the JSON parsing are CPU work that would stall every other connection.
    model_threads: int = 4
    # Predictions waiting for a thread; one more is refused with 503 and Retry-After. Large enough
    # for a crowd of 1,000 connections with a request each in flight.
    queue: int = 2048
    # Seconds one prediction may run before it is answered 504 and its thread replaced (serving/watchdog.py).
    prediction_timeout_s: float = PREDICTION_TIMEOUT_S


def overloaded(server: Server, name: str, message: str, limits: RestLimits):
    from aiohttp import web

    server.count(name, "UNAVAILABLE")
    return web.json_response({"error": f"{message}; retry after {limits.retry_after_s} s"}, status=503,
                             headers={"Retry-After": str(limits.retry_after_s)})


class Admission:
    """At most `running + waiting` predictions admitted at once (used from the event loop only: no lock)."""

    def __init__(self, running: int, waiting: int):
        self.limit, self.inside = running + waiting, 0

    def enter(self) -> bool:
        if self.inside >= self.limit:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1


async def read_body(request) -> bytes:
    """The request body, at most MAX_REQUEST_BYTES (sized or chunked); ServingError when it is larger.

    An oversized body up to DRAIN_LIMIT is read and dropped, so the client reads the 413 on a
    connection that stays usable; beyond that the connection is closed after the answer.
    """
    declared = request.content_length
    if declared is not None and declared > MAX_REQUEST_BYTES:
        if declared > DRAIN_LIMIT:
            request["close"] = True
        else:
            await _drain(request.content, declared)  # so the client reads the 413, not a reset
        raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"the request body has {declared:,} bytes, more than the {MAX_REQUEST_BYTES:,} allowed")
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:  # chunked, no length given: count as it comes
            request["close"] = not await _drain(request.content, DRAIN_LIMIT - size)
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"the request body has more than the {MAX_REQUEST_BYTES:,} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(content, limit: int) -> bool:
    """Read and drop up to `limit` bytes of the body; True when the body ended within that."""
    remaining = limit
    while remaining > 0:
        chunk = await content.read(min(remaining, 1 << 20))
        if not chunk:
            return True
        remaining -= len(chunk)
    return content.at_eof()


def make_rest_app(server: Server, metrics_path: str | None, limits: RestLimits = RestLimits(),
                  threads: watchdog.ModelThreads | None = None):
    """The REST API as an aiohttp application: TF Serving's routes, status codes and {"error": ...} bodies.
    Predictions run on `threads` (model threads with a watchdog: a stuck one answers 504 and is replaced)."""
    from aiohttp import web

    threads = threads or watchdog.ModelThreads(limits.model_threads, limits.prediction_timeout_s, "rest-predict")
    admission = Admission(limits.model_threads, limits.queue)

    def send(status: int, body, content_type="application/json", request=None, warnings=()):
        if content_type == "application/json":
            response = web.Response(text=json.dumps(body), status=status, content_type="application/json")
            for warning in warnings:
                response.headers.add("Warning", warning_header(warning))
        else:
            response = web.Response(body=body.encode(), status=status, headers={"Content-Type": content_type})
        if request is not None and request.get("close"):
            response.force_close()  # the body's end is unknown: this connection cannot carry another request
        return response

    def predict_from_bytes(name, version, raw: bytes) -> tuple[dict, list]:
        try:
            body = parse_json(raw)
        except ContractError as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        warnings = []
        return rest_predict(server, name, version, body, warnings), warnings

    async def handle(request):
        method, path = request.method, request.raw_path
        if method not in ("GET", "POST"):
            return send(501, {"error": f"Unsupported method ({method})"})
        if method == "GET" and metrics_path and path == metrics_path:
            return send(200, server.metrics_text(), "text/plain; version=0.0.4")
        match = ROUTE.match(path)
        try:
            if not match or (method == "GET") != (match["rest"] in (None, "/metadata")):
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {method} {path}")
            name, rest = match["name"], match["rest"]
            version = int(match["version"]) if match["version"] else None
            if rest is None:
                return send(200, rest_status(server, name, version))
            if rest == "/metadata":
                return send(200, rest_metadata(server, name, version))
            if rest != ":predict":
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                   f"{rest[1:]} is not implemented by this server: use :predict")
            try:
                raw = await connections.read_body_within(lambda: read_body(request), limits)
            except TimeoutError:
                request["close"] = True
                return send(408, {"error": f"the request body did not arrive within {limits.body_timeout_s:g} s"},
                            request=request)
            if not admission.enter():
                return overloaded(server, name, f"the server is busy: {admission.limit} predictions are queued", limits)
            try:
                answer, warnings = await asyncio.wrap_future(threads.submit(predict_from_bytes, name, version, raw))
            except watchdog.Stuck as error:
                raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, str(error)) from None
            finally:
                admission.leave()
            return send(200, answer, warnings=warnings)
        except ServingError as error:
            return send(HTTP_STATUS.get(error.code, 500), {"error": error.message}, request=request)
        except Exception as error:  # keep serving; report it like TF Serving's INTERNAL
            log.exception("request failed")
            return send(500, {"error": f"internal error: {error}"}, request=request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app.on_cleanup.append(lambda _: asyncio.get_running_loop().run_in_executor(None, threads.shutdown))
    return app


async def serve_rest(server: Server, host: str, port: int, metrics_path: str | None, stop,
                     limits: RestLimits = RestLimits()) -> None:
    """Serve the REST API on host:port until `stop` (an asyncio.Event) is set."""
    from aiohttp import web

    app = make_rest_app(server, metrics_path, limits)
    # keepalive_timeout: an idle keep-alive connection is closed after this many seconds.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.keepalive_timeout_s, handle_signals=False)
    await runner.setup()
    # Connections counted from accept, header timeout, accept errors logged once per interval; no
    # SO_REUSEPORT: a second server on the same port must fail, not silently share it.
    guard = connections.ConnectionGuard(limits, "rest")
    try:
        listener = await guard.listen(runner, host, port, backlog=limits.backlog)
    except OSError as error:
        await runner.cleanup()
        raise SystemExit(f"error: cannot bind REST to {host}:{port}: {error}") from None
    log.info("REST on http://%s:%d%s (aiohttp; backlog %d, %d connections, %d model threads, queue %d)", host, port,
             f", metrics at {metrics_path}" if metrics_path else "", limits.backlog, limits.max_connections,
             limits.model_threads, limits.queue)
    try:
        await stop.wait()
    finally:
        log.info("shutting down: REST first (at the connection limit %d refused and %d replaced; %d closed for "
                 "late headers)", guard.refused, guard.evicted, guard.timed_out)
        listener.close()
        guard.close()
        await runner.cleanup()


def raise_open_files(needed: int) -> None:
    """Raise the soft limit on open files to `needed` (within the hard limit), so max_connections can be reached."""
    before, now, hard = connections.raise_open_files(needed)
    if now > before:
        log.info("open files: soft limit raised from %d to %d for the connection limits", before, now)
    if now < needed:
        log.warning("open files: the hard limit %d is below the %d the connection limits need: raise `ulimit -Hn`",
                    hard, needed)


def read_batching(args) -> batching_params.BatchingParameters | None:
    """The batching parameters the flags ask for, None without --enable_batching; exits on what
    tensorflow_model_server refuses too (a file without the flag, a bad file)."""
    if not args.enable_batching:
        if args.batching_parameters_file:
            raise SystemExit("error: server_options.batching_parameters_file is set without setting "
                             "server_options.enable_batching to true.")
        return None
    if not args.batching_parameters_file:
        return batching_params.BatchingParameters()
    try:
        return batching_params.load(args.batching_parameters_file)
    except (OSError, batching_params.BatchingConfigError) as error:
        raise SystemExit(f"error: {error}") from None


def _pem(text: str) -> bytes:
    """A PEM text from a text proto string (escaped newlines and quotes undone)."""
    return text.encode().decode("unicode_escape").encode()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port, 0 for none (default: 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--model_config_file", type=Path, required=True, help="ModelServerConfig text proto")
    parser.add_argument("--enable_batching", action="store_true",
                        help="merge concurrent requests into batches (TF Serving's defaults, or the file's)")
    parser.add_argument("--batching_parameters_file", type=Path,
                        help="BatchingParameters text proto (needs --enable_batching, as for tensorflow_model_server)")
    parser.add_argument("--grpc_max_threads", type=int, default=GRPC_MAX_THREADS,
                        help=f"gRPC calls handled at once, each waiting for its batch with batching on "
                             f"(default: {GRPC_MAX_THREADS}, 4 per core as tensorflow_model_server)")
    parser.add_argument("--monitoring_config_file", type=Path, help="MonitoringConfig text proto (Prometheus path)")
    parser.add_argument("--ssl_config_file", type=Path,
                        help="SSLConfig text proto (server_key, server_cert PEM texts): serve gRPC over TLS")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between looks for new versions (default: 1)")
    parser.add_argument("--rest_model_threads", type=int, default=RestLimits.model_threads,
                        help=f"REST predictions running at once (default: {RestLimits.model_threads}; "
                             "this server only)")
    parser.add_argument("--rest_queue", type=int, default=RestLimits.queue,
                        help=f"REST predictions waiting beyond those; more get 503 + Retry-After "
                             f"(default: {RestLimits.queue}; this server only)")
    parser.add_argument("--prediction_timeout_seconds", type=float, default=PREDICTION_TIMEOUT_S,
                        help="seconds one prediction may run before its request is answered DEADLINE_EXCEEDED / 504 "
                             f"and its thread replaced (default: {PREDICTION_TIMEOUT_S:g}; this server only)")
    # tensorflow_model_server's thread flags (0: TensorFlow picks, one per core): the settings search
    # (benchmarks/search.py) tries them, and the same flags reach the real binary.
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads one TensorFlow op may use (default: 0, TensorFlow's choice)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="TensorFlow ops run at once (default: 0, TensorFlow's choice)")
    parser.add_argument("--rest_api_num_threads", type=int, default=0,
                        help="REST predictions running at once; here the same as --rest_model_threads (default: 0, "
                             "--rest_model_threads decides)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    batching = read_batching(args)
    monitoring = configs.read_text_proto_values(args.monitoring_config_file) if args.monitoring_config_file else {}
    metrics_path = monitoring.get("path") if monitoring.get("enable") else None
    log.info("TF-Serving-compatible server (serving/tfserving/compat_server.py), not tensorflow_model_server")
    if batching:
        log.info("batching on: %s", batching.describe())

    if args.tensorflow_intra_op_parallelism or args.tensorflow_inter_op_parallelism:
        import tensorflow as tf  # before the first model loads: TensorFlow fixes its thread pools then

        tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
        tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
        log.info("TensorFlow threads: intra-op %d, inter-op %d (0: TensorFlow's choice)",
                 args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    server = Server(args.model_config_file, batching, args.prediction_timeout_seconds)
    for registry in server.models.values():
        registry.poll()
    limits = RestLimits(model_threads=args.rest_api_num_threads or args.rest_model_threads, queue=args.rest_queue,
                        prediction_timeout_s=args.prediction_timeout_seconds)
    raise_open_files(limits.max_connections + GRPC_MAX_CONCURRENT_RPCS + 256)
    # Connections of each protocol at once, both within the open files this process may have (a lower
    # `ulimit -n` lowers them: a flood meets the limit and its refusals, never EMFILE).
    grpc_connections = connections.fit_to_open_files(GRPC_MAX_CONCURRENT_RPCS, share=2)
    limits = dataclasses.replace(limits, max_connections=connections.fit_to_open_files(limits.max_connections, share=2))
    log.info("connections at once: REST %d, gRPC %d", limits.max_connections, grpc_connections)
    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        grpc_server = await start_grpc(server, args, grpc_connections)
        threading.Thread(target=server.poll_forever, args=(args.file_system_poll_wait_seconds, stop_polling),
                         daemon=True).start()
        try:
            if args.rest_api_port:
                await serve_rest(server, args.host, args.rest_api_port, metrics_path, stop, limits)
            else:
                await stop.wait()
        finally:
            log.info("REST stopped; stopping gRPC (2 s for calls in progress)")
            await grpc_server.stop(grace=2)

    stop_polling = threading.Event()
    try:
        asyncio.run(run())
    finally:
        stop_polling.set()
        if server.scheduler:
            server.scheduler.stop()
        log.info("stopped")


async def start_grpc(server: Server, args, max_connections: int):
    """The gRPC services on a grpc.aio server on this event loop, started (exits when the port is taken)."""
    # No SO_REUSEPORT: a second server on the same port must fail, not silently share it. Up to
    # GRPC_MAX_CONCURRENT_RPCS calls are accepted (--grpc_max_threads of them handled at once, the rest
    # waiting their turn); one more is answered RESOURCE_EXHAUSTED by grpcio, an explicit refusal the
    # clients retry.
    grpc_server = grpc.aio.server(interceptors=[connections.MalformedRequests()],
                                  maximum_concurrent_rpcs=GRPC_MAX_CONCURRENT_RPCS,
                                  options=[("grpc.so_reuseport", 0),
                                           ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                                           *connections.grpc_server_options(max_connections)])
    add_grpc_services(grpc_server, server,
                      watchdog.ModelThreads(args.grpc_max_threads, args.prediction_timeout_seconds, "grpc-predict"),
                      calls_at_once=args.grpc_max_threads)
    try:
        if args.ssl_config_file:
            ssl = configs.read_text_proto_values(args.ssl_config_file)
            credentials = grpc.ssl_server_credentials([(_pem(ssl["server_key"]), _pem(ssl["server_cert"]))])
            grpc_server.add_secure_port(f"{args.host}:{args.port}", credentials)
        else:
            grpc_server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError:
        raise SystemExit(f"error: cannot bind gRPC to {args.host}:{args.port}: "
                         "is another server using the port?") from None
    await grpc_server.start()
    log.info("gRPC on %s:%d%s", args.host, args.port, " (TLS)" if args.ssl_config_file else "")
    return grpc_server


if __name__ == "__main__":
    main()
