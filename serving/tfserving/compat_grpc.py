"""The compatible server's gRPC front: TF Serving's PredictionService and ModelService on grpc.aio.

Through the official tensorflow-serving-api protos: Predict, GetModelMetadata and GetModelStatus
(Classify, Regress, MultiInference and HandleReloadConfigRequest answer UNIMPLEMENTED). The handlers
run on the event loop; a prediction waits there for its batch (batching on) or runs on model threads
with a watchdog. A ServingError is answered with its status code and message; an input far off the
spec's range gets a `warning` trailing metadata entry.
"""
from __future__ import annotations

import asyncio
import os

import grpc

from core import connections
from core.spec import MAX_REQUEST_BYTES
from serving import watchdog
from serving.tfserving.compat_core import PREDICTION_TIMEOUT_S, Server
from serving.tfserving.compat_models import ServingError, view_of
from serving.tfserving.compat_protos import array_to_tensor, read_inputs, version_of

GRPC_MAX_CONCURRENT_RPCS = 4096  # gRPC calls in progress at once, queued ones included; more: RESOURCE_EXHAUSTED
# tensorflow_model_server's --grpc_max_threads default: gRPC handler threads, and as many model threads
# behind them (a batch merges only the calls in progress, so this also bounds a gRPC batch).
GRPC_MAX_THREADS = 4 * (os.cpu_count() or 1)


def make_grpc_server(server: Server, max_threads: int, prediction_timeout_s: float, max_connections: int):
    """A grpc.aio server (on this event loop) carrying the services, no port bound yet.

    No SO_REUSEPORT: a second server on the same port must fail, not silently share it. Up to
    GRPC_MAX_CONCURRENT_RPCS calls are accepted (`max_threads` of them handled at once, the rest
    waiting their turn); one more is answered RESOURCE_EXHAUSTED by grpcio, an explicit refusal the
    clients retry.
    """
    grpc_server = grpc.aio.server(interceptors=[connections.MalformedRequests()],
                                  maximum_concurrent_rpcs=GRPC_MAX_CONCURRENT_RPCS,
                                  options=[("grpc.so_reuseport", 0),
                                           ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                                           *connections.grpc_server_options(max_connections)])
    add_grpc_services(grpc_server, server, watchdog.ModelThreads(max_threads, prediction_timeout_s, "grpc-predict"),
                      calls_at_once=max_threads)
    return grpc_server


async def _abort(context, error: ServingError):
    await context.abort(error.code, error.message)


def add_grpc_services(grpc_server, server: Server, threads: watchdog.ModelThreads | None = None,
                      calls_at_once: int = GRPC_MAX_THREADS) -> None:
    """PredictionService and ModelService on the grpc.aio server `grpc_server`.

    The handlers run on its event loop. A prediction waits for its batch there (the scheduler's batch
    threads run the model, watched); without batching it runs on `threads` (model threads with a
    watchdog: a stuck one answers DEADLINE_EXCEEDED and is replaced). `calls_at_once`
    (--grpc_max_threads) predictions are handled at once; later ones wait their turn.
    """
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

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):
            async with handled:
                try:
                    spec = request.model_spec
                    version = version_of(spec)
                    servable = server.registry(spec.name, version).servable(version)
                    view = view_of(servable, spec.signature_name)
                    inputs = read_inputs(request, view, server.max_batch_size)
                    version, signature_name, outputs = await run_predict(spec.name, version, spec.signature_name,
                                                                         inputs, list(request.output_filter))
                except ServingError as error:
                    return await _abort(context, error)
            warnings = [w for n, array in inputs.items()
                        if (w := server.input_warning(spec.name, view.shapes[n], array, f'input "{n}"'))]
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
                version = version_of(request.model_spec)
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
                version = version_of(request.model_spec)
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
