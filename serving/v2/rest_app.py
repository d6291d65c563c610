"""The Open Inference Protocol's REST answers for any FastAPI app: what KServe's ModelServer and the Ray
Serve application (serving/rayserve/) both install, so a V2 client cannot tell them apart.

    from serving.v2 import rest_app
    rest_app.install(app)     # V2Error -> its status and {"error": ...}; 422 -> 400 naming the problem; 413

- `V2Error` (serving/v2/protocol.py) as its HTTP status with the protocol's error body, one log line;
- FastAPI's 422 for a body that is not the protocol's JSON, and Starlette's own 400s, as the
  protocol's 400 whose message the contract's reading of the body gives (empty, not UTF-8, not JSON,
  nested too deeply);
- a body over the request limit: 413, by its Content-Length before reading, else as it streams in
  (a body of reasonable size is read and dropped first, so the client reads the 413, not a reset);
- a client that went away before its body was read: one log line, not two tracebacks.
Runs where FastAPI is installed (.venv-kserve).
"""
from __future__ import annotations

import json
import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from core import contract
from core.spec import DRAIN_LIMIT, MAX_REQUEST_BYTES
from serving.v2 import protocol

log = logging.getLogger("digits.v2")
EXPECT = 'a JSON inference request {"inputs": [...]}'  # what the messages ask for instead


def install(app) -> None:
    """The protocol's error answers and the body limit on FastAPI app `app`."""
    app.add_exception_handler(protocol.V2Error, _v2_error)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(BodyLimit)


async def _v2_error(request: Request, error: protocol.V2Error) -> JSONResponse:
    log.warning("refused %s %s: %s", request.method, request.url.path, error)
    return JSONResponse(error.body, status_code=error.status)


async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    """Starlette's own refusals (a body it cannot parse, an unknown path) in the protocol's error body;
    for a body it could not parse, the contract's reading says why (not UTF-8, nested too deeply)."""
    message = f"{error.detail}"
    if error.status_code == 400 and request.method == "POST":
        try:
            contract.parse_json(await request.body(), EXPECT)
        except contract.ContractError as reason:
            message = str(reason)
        log.warning("refused %s %s: %s", request.method, request.url.path, message)
    return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)


async def _malformed(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a body that is not the protocol's JSON, as the protocol's 400: the contract's
    reading of the body names what is wrong (empty, not UTF-8, not JSON), else the schema's complaint."""
    try:
        contract.parse_json(await request.body(), EXPECT)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                             for e in error.errors()[:3])
        message = f"the request body is not a valid inference request ({problems})"
    except contract.ContractError as reason:
        message = str(reason)
    log.warning("refused %s %s: %s", request.method, request.url.path, message)
    return JSONResponse({"error": message}, status_code=400)


class BodyLimit:
    """413 for a body over the request limit: by its Content-Length before reading, else as it streams in."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            protocol.check_size(int(declared) if declared and declared.isdigit() else None)
        except protocol.V2Error as error:
            # Read and drop a body of reasonable size first, so the client reads the 413, not a reset.
            if int(declared) <= DRAIN_LIMIT:
                await _drain(receive)
            return await _answer(send, error)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_REQUEST_BYTES:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except ClientDisconnect:  # nobody left to answer: one line, not the framework's traceback
            log.info("client went away before its request was read: %s %s", scope.get("method"), scope.get("path"))
        except _TooLarge:
            await _answer(send, protocol.V2Error(413, f"the request body has more than the {MAX_REQUEST_BYTES:,} "
                                                      "bytes allowed"))


class _TooLarge(Exception):
    pass


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _answer(send, error: protocol.V2Error) -> None:
    body = json.dumps(error.body).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
