"""A TF-Serving-compatible model server, for machines where tensorflow_model_server is missing.

    python -m serving.tfserving.compat_server --port=8500 --rest_api_port=8501 \
        --model_config_file=models.config [--enable_batching --batching_parameters_file=...] \
        [--monitoring_config_file=...] [--file_system_poll_wait_seconds=1] [--host=127.0.0.1]

It takes tensorflow_model_server's flags and files and serves the same directory layout
(`<base_path>/<int version>/saved_model.pb`), so `make serve` starts either with one command line.
gRPC, through the official tensorflow-serving-api protos: PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus (Classify, Regress, MultiInference and
HandleReloadConfigRequest answer UNIMPLEMENTED). REST: GET /v1/models/<name>[/versions/<v>],
GET .../metadata, POST ...:predict with "instances" (row format) or "inputs" (columnar).
Errors use TF Serving's status codes: NOT_FOUND for an unknown model or version,
INVALID_ARGUMENT with a message naming the problem (HTTP 404 / 400 with {"error": ...}), also for
a request that is not a valid protobuf; a request body over the spec's MAX_REQUEST_BYTES gets
RESOURCE_EXHAUSTED (HTTP 413).

Differences from the real server, on purpose: it checks each version against the artifact
manifest before loading it; it refuses NaN/Inf and values outside the spec's value range; it does not merge concurrent requests into batches (the batching
file's max_batch_size is enforced as the largest request); metrics are a few counters.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np

from core.contract import ContractError, check_instances, parse_json
from core.spec import MAX_REQUEST_BYTES
from serving.tfserving import configs
from serving.tfserving.compat_models import (ModelRegistry, ServingError, check_proto_shape, contract_of, predict,
                                             signature)

log = logging.getLogger("compat_server")
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
               grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.INTERNAL: 500}
DRAIN_LIMIT = 64 * MAX_REQUEST_BYTES  # an oversized body up to this is read and dropped (keeps the connection); beyond, the connection closes


class Server:
    """The models of one models.config, plus request counters for the metrics endpoint."""

    def __init__(self, model_config_file: Path, max_batch_size: int | None):
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2

        config = text_format.Parse(Path(model_config_file).read_text(), model_server_config_pb2.ModelServerConfig())
        self.models = {}
        for model in config.model_config_list.config:
            base = Path(model.base_path)
            # Our layout is <artifacts>/tfserving/<model>: check versions against that manifest.
            root = configs.artifacts_root_of(base)
            if root is None:
                log.warning("%s: no artifact manifest next to %s; versions are loaded unchecked", model.name, base)
            self.models[model.name] = ModelRegistry(model, root)
        self.max_batch_size = max_batch_size
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
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})")
        return self.models[name]

    def predict(self, name, version, signature_name, inputs, output_filter=()):
        start = time.perf_counter()
        code = "OK"
        try:
            return predict(self.registry(name, version), version, signature_name, inputs, output_filter, self.max_batch_size)
        except ServingError as error:
            code = error.code.name
            raise
        finally:
            with self.lock:
                key = (name, code)
                self.counts[key] = self.counts.get(key, 0) + 1
                self.latency_us["sum"] += (time.perf_counter() - start) * 1e6
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
        return "\n".join(lines) + "\n"


# ---- gRPC -------------------------------------------------------------------------------------

def _abort(context, error: ServingError):
    context.abort(error.code, error.message)


def _version(model_spec) -> int | None:
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "version labels are not supported by this server; use a version")
    return None


class MalformedRequests(grpc.ServerInterceptor):
    """Answer a request that does not parse as its method's protobuf with INVALID_ARGUMENT.

    grpcio itself answers INTERNAL ("Exception deserializing request!"), a server error, for what is
    the client's mistake; this hands each method the raw bytes and parses them itself.
    """

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        parse, behaviour = handler.request_deserializer, handler.unary_unary
        method = handler_call_details.method

        def unary(raw: bytes, context):
            from google.protobuf.message import DecodeError

            try:
                request = parse(raw)
            except (DecodeError, ValueError, RecursionError) as error:
                return context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                     f"the request to {method} is not a valid protobuf message ({error})")
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=handler.response_serializer)


def _dtype_name(number: int) -> str:
    """A DataType enum value's name (float32, string...), or words saying it is not one."""
    import tensorflow as tf

    try:
        return tf.dtypes.as_dtype(number).name if number else "an invalid dtype"
    except TypeError:
        return f"an unknown dtype ({number})"


def add_grpc_services(grpc_server, server: Server) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                spec = request.model_spec
                version = _version(spec)
                servable = server.registry(spec.name, version).servable(version)
                signature_def, _ = signature(servable, spec.signature_name)
                inputs = {}
                if set(request.inputs) != set(signature_def.inputs):  # before any tensor is materialized
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "input names do not match the signature: "
                                       f"sent {sorted(request.inputs)}, expected {sorted(signature_def.inputs)}")
                for name, proto in request.inputs.items():
                    if proto.dtype != signature_def.inputs[name].dtype:
                        want = tf.dtypes.as_dtype(signature_def.inputs[name].dtype).name
                        got = _dtype_name(proto.dtype)
                        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                           f'input "{name}": expects arg to be {want} but {got} is provided')
                    check_proto_shape(name, proto, signature_def.inputs[name], server.max_batch_size)
                    try:
                        inputs[name] = tf.make_ndarray(proto)
                    except (ValueError, TypeError) as error:
                        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'input "{name}" is not a valid tensor: {error}')
                version, signature_name, outputs = server.predict(spec.name, version, spec.signature_name, inputs,
                                                                  list(request.output_filter))
            except ServingError as error:
                return _abort(context, error)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = spec.name
            response.model_spec.version.value = version
            response.model_spec.signature_name = signature_name
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

        def GetModelMetadata(self, request, context):
            try:
                fields = list(request.metadata_field)
                if not fields:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field")
                unsupported = [f for f in fields if f != "signature_def"]
                if unsupported:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {unsupported[0]} is not supported")
                version = _version(request.model_spec)
                servable = server.registry(request.model_spec.name, version).servable(version)
            except ServingError as error:
                return _abort(context, error)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = request.model_spec.name
            response.model_spec.version.value = servable.version
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature_def in servable.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(signature_def)
            response.metadata["signature_def"].Pack(signature_map)
            return response

        def _unimplemented(self, request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "not implemented by the TF-Serving-compatible server: use Predict")

        Classify = Regress = MultiInference = _unimplemented

    class ModelService(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            try:
                version = _version(request.model_spec)
                states = server.status(request.model_spec.name, version)
            except ServingError as error:
                return _abort(context, error)
            response = get_model_status_pb2.GetModelStatusResponse()
            for number, state in states:
                status = response.model_version_status.add()
                status.version = number
                status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
            return response

        def HandleReloadConfigRequest(self, request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "config reload is not implemented: restart with `make stop serve`")

    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), grpc_server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(), grpc_server)


# ---- REST -------------------------------------------------------------------------------------

ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>/metadata|:predict|:classify|:regress)?$")


def rest_status(server: Server, name: str, version: int | None) -> dict:
    states = server.status(name, version)
    return {"model_version_status": [{"version": str(v), "state": state, "status": {"error_code": "OK", "error_message": ""}}
                                     for v, state in states]}


def rest_metadata(server: Server, name: str, version: int | None) -> dict:
    from google.protobuf import json_format

    servable = server.registry(name, version).servable(version)
    signature_defs = {n: json_format.MessageToDict(s, preserving_proto_field_name=True)
                      for n, s in servable.signature_defs.items()}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": signature_defs}}}


def rest_predict(server: Server, name: str, version: int | None, body: dict) -> dict:
    if not isinstance(body, dict):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, 'the request body must be a JSON object with "instances" or "inputs"')
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, 'the request must have exactly one of "instances" or "inputs"')
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f'"signature_name" must be a string, got {type(signature_name).__name__}')
    servable = server.registry(name, version).servable(version)
    signature_def, _ = signature(servable, signature_name)
    (input_name, tensor_info), = signature_def.inputs.items()  # this server handles one-input signatures
    field = "instances" if "instances" in body else "inputs"
    value = body[field]
    if isinstance(value, dict):  # {"inputs": {"image": [...]}} or named-input form
        value = value.get(input_name, value)
    if field == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
        value = [row.get(input_name) if isinstance(row, dict) else row for row in value]  # [{"image": ...}, ...]
    try:
        array = check_instances(value, contract_of(server.registry(name, version), tensor_info), field,
                                max_batch=server.max_batch_size)
    except ContractError as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    served, _, outputs = server.predict(name, version, signature_name, {input_name: array})
    if field == "instances":
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(len(array))]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


def make_rest_handler(server: Server, metrics_path: str | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like TF Serving
        disable_nagle_algorithm = True  # headers and body go out in two writes: do not wait on delayed ACKs

        def log_message(self, fmt, *args):  # route access lines to the server log at debug level
            log.debug("%s %s", self.address_string(), fmt % args)

        def send(self, status: int, body, content_type="application/json"):
            data = (json.dumps(body) if content_type == "application/json" else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def route(self, method: str):
            if method == "GET" and metrics_path and self.path == metrics_path:
                return self.send(200, server.metrics_text(), "text/plain; version=0.0.4")
            match = ROUTE.match(self.path)
            try:
                if not match or (method == "GET") != (match["rest"] in (None, "/metadata")):
                    raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {method} {self.path}")
                name, rest = match["name"], match["rest"]
                version = int(match["version"]) if match["version"] else None
                if rest is None:
                    return self.send(200, rest_status(server, name, version))
                if rest == "/metadata":
                    return self.send(200, rest_metadata(server, name, version))
                if rest != ":predict":
                    raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"{rest[1:]} is not implemented by this server: use :predict")
                try:
                    body = parse_json(self.read_body())
                except ContractError as error:
                    raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                return self.send(200, rest_predict(server, name, version, body))
            except ServingError as error:
                return self.send(HTTP_STATUS.get(error.code, 500), {"error": error.message})
            except Exception as error:  # keep serving; report it like TF Serving's INTERNAL
                log.exception("request failed")
                return self.send(500, {"error": f"internal error: {error}"})

        def read_body(self) -> bytes:
            """The request body, at most MAX_REQUEST_BYTES; ServingError when it is larger or unsized."""
            text = self.headers.get("Content-Length")
            if text is None:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "the request has no Content-Length: send a JSON body with its length")
            if not text.strip().isdigit():
                self.close_connection = True  # the body's end is unknown: this connection cannot carry another request
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"Content-Length {text!r} is not a number of bytes")
            length = int(text)
            if length > MAX_REQUEST_BYTES:
                if length <= DRAIN_LIMIT:  # read and drop it, so the client sees the answer, not a reset
                    remaining = length
                    while remaining > 0:
                        chunk = self.rfile.read(min(remaining, 1 << 20))
                        if not chunk:
                            break
                        remaining -= len(chunk)
                else:
                    self.close_connection = True
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"the request body has {length:,} bytes, more than the {MAX_REQUEST_BYTES:,} allowed")
            return self.rfile.read(length)

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

    return Handler


def _pem(text: str) -> bytes:
    """A PEM text from a text proto string (escaped newlines and quotes undone)."""
    return text.encode().decode("unicode_escape").encode()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port, 0 for none (default: 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--model_config_file", type=Path, required=True, help="ModelServerConfig text proto")
    parser.add_argument("--enable_batching", action="store_true", help="read --batching_parameters_file")
    parser.add_argument("--batching_parameters_file", type=Path, help="BatchingParameters text proto")
    parser.add_argument("--monitoring_config_file", type=Path, help="MonitoringConfig text proto (Prometheus path)")
    parser.add_argument("--ssl_config_file", type=Path,
                        help="SSLConfig text proto (server_key, server_cert PEM texts): serve gRPC over TLS")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between looks for new versions (default: 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    batching = configs.read_text_proto_values(args.batching_parameters_file) if args.enable_batching and args.batching_parameters_file else {}
    monitoring = configs.read_text_proto_values(args.monitoring_config_file) if args.monitoring_config_file else {}
    metrics_path = monitoring.get("path") if monitoring.get("enable") else None
    log.info("TF-Serving-compatible server (serving/tfserving/compat_server.py), not tensorflow_model_server")
    if batching:
        log.info("batching file read: max_batch_size %s enforced per request; requests are not merged", batching.get("max_batch_size"))

    server = Server(args.model_config_file, batching.get("max_batch_size"))
    for registry in server.models.values():
        registry.poll()
    # No SO_REUSEPORT: a second server on the same port must fail, not silently share it.
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=[MalformedRequests()],
                              options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", MAX_REQUEST_BYTES)])
    add_grpc_services(grpc_server, server)
    try:
        if args.ssl_config_file:
            ssl = configs.read_text_proto_values(args.ssl_config_file)
            credentials = grpc.ssl_server_credentials([(_pem(ssl["server_key"]), _pem(ssl["server_cert"]))])
            grpc_server.add_secure_port(f"{args.host}:{args.port}", credentials)
        else:
            grpc_server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError:
        raise SystemExit(f"error: cannot bind gRPC to {args.host}:{args.port}: is another server using the port?") from None
    grpc_server.start()
    log.info("gRPC on %s:%d%s", args.host, args.port, " (TLS)" if args.ssl_config_file else "")
    http = None
    if args.rest_api_port:
        try:
            http = ThreadingHTTPServer((args.host, args.rest_api_port), make_rest_handler(server, metrics_path))
        except OSError as error:
            raise SystemExit(f"error: cannot bind REST to {args.host}:{args.rest_api_port}: {error}") from None
        http.daemon_threads = True
        threading.Thread(target=http.serve_forever, daemon=True).start()
        log.info("REST on http://%s:%d%s", args.host, args.rest_api_port,
                 f" (metrics at {metrics_path})" if metrics_path else "")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    poller = threading.Thread(target=server.poll_forever, args=(args.file_system_poll_wait_seconds, stop), daemon=True)
    poller.start()
    stop.wait()
    log.info("shutting down")
    if http:
        http.shutdown()
    grpc_server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
