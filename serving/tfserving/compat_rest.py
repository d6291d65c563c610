"""The compatible server's REST front: TF Serving's REST API as an aiohttp application.

GET /v1/models/<name>[/versions/<v>], GET .../metadata, POST ...:predict with "instances" (row
format) or "inputs" (columnar); an image may be a picture as TF Serving's binary convention
`{"b64": "<base64 PNG/JPEG>"}`. Errors are TF Serving's status codes as HTTP statuses with
{"error": ...}. Predictions (JSON parsing and the model call) run on model threads with a watchdog,
off the event loop, admitted up to RestLimits (more: 503 + Retry-After); the connection limits are
core/connections.py's.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass

import grpc
import numpy as np

from core import connections
from core.contract import ContractError, check_instances, parse_json, warning_header
from core.spec import DRAIN_LIMIT, MAX_REQUEST_BYTES
from serving import watchdog
from serving.tfserving.compat_core import PREDICTION_TIMEOUT_S, Server
from serving.tfserving.compat_models import ServingError, contract_of, expected_shape, signature
from training.preprocess import ImageError, picture_to_input

log = logging.getLogger("compat_server")
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
               grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.INTERNAL: 500,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.UNAVAILABLE: 503}  # 503: a full batch queue
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
    warning = server.input_warning(name, shape, array, f'"{field}"') if pictures is value else None
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

    server.requests.count(name, "UNAVAILABLE")
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
