"""KServe 0.21's ModelServer with its REST and gRPC servers bound to one host, refusing what is too much.

kserve's RESTServer builds its uvicorn config with host "0.0.0.0" and its GRPCServer listens on
"[::]:<port>", both in code with no flag. `BoundModelServer.start` is ModelServer.start (one
REST process, gRPC beside it) with two differences: the uvicorn config's host is ours (and its
concurrency limit, no access log, repeated log lines counted), and the gRPC server is started here on our host, with the
message limit of the spec, a cap on RPCs in flight, TLS when configured, and an interceptor
that answers the protocol's errors with the right code and one log line. Both read requests
through `ReadingDataPlane` (kserve's parser errors are 400, not 500) and check what a request
declares (its datatypes, shape, budget and model version) before kserve's parser reads it.
Kept to what the pinned version does: tests/integration/test_kserve.py checks every listener.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent import futures

import grpc
from grpc import aio
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.errors import InvalidInput, ModelNotFound, UnsupportedProtocol
from kserve.logging import logger as kserve_logger
from kserve.logging import trace_logger
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from core import connections
from core.spec import MAX_REQUEST_BYTES
from serving import repeats, tls
from serving.v2 import protocol, rest_app

log = logging.getLogger("digits.kserve")


class BoundModelServer(ModelServer):
    def __init__(self, host: str, http_port: int, grpc_port: int, max_concurrency: int, grpc_threads: int,
                 request_logging: bool = False):
        # No per-request latency and access lines unless asked (kserve writes both for every request
        # by default; benchmarks/kserve_breakdown.py measures what they cost).
        super().__init__(http_port=http_port, grpc_port=grpc_port, enable_latency_logging=request_logging,
                         max_threads=grpc_threads)
        self.host, self.max_concurrency, self.request_logging = host, max_concurrency, request_logging
        self.model_repository_extension = ClosedRepository(self.registered_models)
        self.dataplane = ReadingDataPlane(model_registry=self.registered_models)
        if not request_logging:
            trace_logger.setLevel(logging.WARNING)  # the timing middleware's per-request lines

    def start(self, models) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        (model,) = models  # one model per server: its spec and version check what requests declare
        self._rest_server = BoundRESTServer(
            FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension, self.http_port,
            grace_period=self.grace_period, event_loop=self.event_loop, timeout_keep_alive=self.timeout_keep_alive)
        self._rest_server.model = model
        config = self._rest_server.config
        config.host = self.host
        config.limit_concurrency = self.max_concurrency  # beyond it uvicorn answers 503 at once
        config.access_log = self.request_logging
        # uvicorn reads access_log when its Config configures logging, in the constructor kserve already ran:
        # run that step again, or the access logger keeps its handler and writes a line per request.
        config.configure_logging()
        repeats.install()  # the same error again within seconds: counted, not written again
        self.servers.append(self._rest_server.start())
        self._grpc_server = BoundGRPCServer(self.host, self.grpc_port, self.dataplane,
                                            self.model_repository_extension, self.max_concurrency, model)
        self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


class ClosedRepository(ModelRepositoryExtension):
    """The V2 repository extension (POST /v2/repository/models/<name>/load|unload, and its gRPC
    twins) with loading and unloading refused: kserve serves them to anyone who reaches the port,
    and an unload takes the model down. What the server holds changes by restarting it."""

    REFUSED = ("the model repository API is off on this server (it has no authentication): "
               "restart the server to change what it serves")

    async def load(self, model_name: str) -> None:
        raise protocol.V2Error(403, self.REFUSED)

    async def unload(self, model_name: str) -> None:
        raise protocol.V2Error(403, self.REFUSED)


# kserve's errors that are the client's, with kserve's own status: one warning line each, where kserve
# logs an ERROR with the traceback (1.4 KB for every request naming an unknown model).
CLIENT_ERRORS = {ModelNotFound: 404, InvalidInput: 400, UnsupportedProtocol: 501}


class ReadingDataPlane(DataPlane):
    """kserve's data plane, whose reading of a request answers 400 for anything it cannot read: kserve's
    parser raises TypeError, ValueError, struct.error, KeyError on malformed requests, which its
    generic handler answers 500 with the raw text."""

    def decode(self, body, headers, *args, **kwargs):
        try:
            return super().decode(body, headers, *args, **kwargs)
        except protocol.V2Error:
            raise
        except InvalidInput as error:
            raise protocol.V2Error(400, error.reason) from None
        except Exception as error:
            raise protocol.V2Error(400, f"the request could not be read as an inference request "
                                        f"({type(error).__name__}: {error})") from None


def served_version(model) -> str:
    """The version `model` (serving/kserve/model.py) serves now, as V2 names versions."""
    return str(model.served[0])


class BoundRESTServer(RESTServer):
    """kserve's REST app (V1, V2, /metrics) plus the protocol's answers for what kserve would 422 or 500."""

    model = None  # the one model served: set before start

    def create_application(self):
        super().create_application()
        from uvicorn.importer import import_from_string

        model = self.model
        app = import_from_string(FASTAPI_APP_IMPORT_STRING)
        rest_app.install(app, model.spec, lambda: served_version(model))
        for error, status in CLIENT_ERRORS.items():
            app.add_exception_handler(error, refused(status))


def refused(status: int):
    """An exception handler answering `status` with kserve's body, logging one line (no traceback)."""
    from fastapi.responses import JSONResponse

    async def handler(request, error) -> JSONResponse:
        log.warning("refused %s %s: %s", request.method, request.url.path, error)
        return JSONResponse({"error": str(error)}, status_code=status)

    return handler


class ProtocolErrors(ExceptionToStatusInterceptor):
    """V2Error as its gRPC code with one warning line; everything else as kserve maps it."""

    async def handle_exception(self, ex, request_or_iterator, context, method_name):
        if isinstance(ex, protocol.V2Error):
            log.warning("refused %s: %s", method_name, ex)
            await context.abort(getattr(grpc.StatusCode, ex.grpc_code), str(ex))
        await super().handle_exception(ex, request_or_iterator, context, method_name)


class CheckedServicer(InferenceServicer):
    """kserve's V2 servicer, with what a request declares checked on the raw message, as REST does
    (serving/v2/declared.py): kserve upper-cases datatypes and ignores the model version."""

    def __init__(self, data_plane, model_repository_extension, model):
        super().__init__(data_plane, model_repository_extension)
        self.model = model

    def check_version(self, name: str, version: str) -> None:
        if name == self.model.name:  # another model: kserve's own 404
            protocol.check_version(version, served_version(self.model))

    async def ModelInfer(self, request, context):
        self.check_version(request.model_name, request.model_version)
        if request.model_name == self.model.name:
            for tensor in request.inputs:
                protocol.check_declared(self.model.spec, tensor.name, tensor.datatype, list(tensor.shape))
        return await super().ModelInfer(request, context)

    async def ModelMetadata(self, request, context):
        self.check_version(request.name, request.version)
        return await super().ModelMetadata(request, context)

    async def ModelReady(self, request, context):
        self.check_version(request.name, request.version)
        return await super().ModelReady(request, context)


class BoundGRPCServer:
    """kserve's V2 gRPC servicer on an aio server of ours: our host, our limits, TLS when configured."""

    def __init__(self, host: str, port: int, data_plane, model_repository_extension, max_concurrency: int, model):
        self.host, self.port, self.max_concurrency = host, port, max_concurrency
        self.data_plane, self.model_repository_extension, self.model = data_plane, model_repository_extension, model
        self.server = None

    async def start(self, max_workers: int) -> None:
        self.server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(connections.MalformedRequests(), ProtocolErrors()),
            maximum_concurrent_rpcs=self.max_concurrency,  # beyond it: RESOURCE_EXHAUSTED at once
            options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
                     ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
                     # handshake timeout, connection cap within the open files, idle and ping limits
                     *connections.grpc_server_options(connections.fit_to_open_files(4096, share=2))])
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            CheckedServicer(self.data_plane, self.model_repository_extension, self.model), self.server)
        address = f"{self.host}:{self.port}"
        files = tls.from_environment()
        if files is None:
            self.server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(files.key.read_bytes(), files.cert.read_bytes())])
            self.server.add_secure_port(address, credentials)
        kserve_logger.info("gRPC (V2) on %s%s", address, " over TLS" if files else "")
        await self.server.start()
        await self.server.wait_for_termination()

    async def stop(self, sig: int = None) -> None:
        if self.server:
            await self.server.stop(grace=5)
