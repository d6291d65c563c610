"""The Open Inference Protocol's REST answers for any FastAPI app: what KServe's ModelServer and the Ray
Serve application (serving/rayserve/) both install, so a V2 client cannot tell them apart.

    from serving.v2 import rest_app
    rest_app.install(app, spec, version)  # V2Error -> its status and {"error": ...}; 422 -> 400; 413; versions

- `V2Error` (serving/v2/protocol.py) as its HTTP status with the protocol's error body, one log line;
- FastAPI's 422 for a body that is not the protocol's JSON, and Starlette's own 400s, as the
  protocol's 400 whose message the contract's reading of the body gives (empty, not UTF-8, not JSON,
  nested too deeply);
- a body over the request limit: 413, by its Content-Length before reading, else as it streams in
  (a body of reasonable size is read and dropped first, so the client reads the 413, not a reset);
- a client that went away before its body was read: one log line, not two tracebacks;
- an inference request's declared inputs checked from its raw bytes before KServe's parser reads
  them (serving/v2/declared.py): datatypes and integer shapes as the protocol spells them, the
  request's budget (413), the binary extension's sizes;
- model versions: a path naming the version served answers as the unversioned path does, any other
  version is 404 (KServe answers 501 to every versioned path, and its gRPC ignores the version);
- any other exception: 500 naming its type only (KServe's own handler sends its raw text).
Runs where FastAPI is installed (.venv-kserve).
"""
from __future__ import annotations

import json
import logging
import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from core import contract
from core.spec import DRAIN_LIMIT, MAX_REQUEST_BYTES
from serving.v2 import declared, protocol

log = logging.getLogger("digits.v2")
EXPECT = 'a JSON inference request {"inputs": [...]}'  # what the messages ask for instead


def install(app, spec=None, version=None) -> None:
    """The protocol's error answers and the body limit on FastAPI app `app`; given the served model's `spec`
    and `version` (a callable: the version served now, as text), its requests' declared inputs and versions."""
    app.add_exception_handler(protocol.V2Error, _v2_error)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _failed)
    if spec is not None:
        app.add_middleware(DeclaredInputs, spec=spec, version=version)
    app.add_middleware(BodyLimit)  # the outer one: the body is within the limit before it is read whole


async def _v2_error(request: Request, error: protocol.V2Error) -> JSONResponse:
    log.warning("refused %s %s: %s", request.method, request.url.path, error)
    return JSONResponse(error.body, status_code=error.status)


async def _failed(request: Request, error: Exception) -> JSONResponse:
    """A failure of the server's own: its traceback logged, the client told its type, not its raw text."""
    log.error("failed %s %s: %s", request.method, request.url.path, type(error).__name__)  # the traceback: uvicorn's
    return JSONResponse({"error": f"the server failed on this request ({type(error).__name__}); its log says why"},
                        status_code=500)


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


# /v2/models/<name>[/versions/<version>][/infer | /ready]
MODEL_PATH = re.compile(r"^/v2/models/(?P<name>[^/]+)"
                        r"(?P<versioned>/versions/(?P<version>[^/]+))?(?P<rest>/infer|/ready)?$")


class DeclaredInputs:
    """The served model's versions and the declared inputs of its inference requests, checked before the
    app reads them (serving/v2/declared.py); the body read here is handed on as it came."""

    def __init__(self, app, spec, version=None):
        self.app, self.spec, self.version = app, spec, version

    async def __call__(self, scope, receive, send):
        found = MODEL_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            return await self.app(scope, receive, send)
        try:
            if found["versioned"] and self.version is not None:
                protocol.check_model(self.spec, found["name"])
                protocol.check_version(found["version"], self.version())
                path = scope["path"].replace(found["versioned"], "", 1)  # the unversioned route answers it
                scope = {**scope, "path": path, "raw_path": path.encode()}
            if found["rest"] != "/infer" or scope["method"] != "POST" or found["name"] != self.spec.model_name:
                return await self.app(scope, receive, send)
            body, receive = await _read(receive)
            if body is None:
                raise ClientDisconnect()  # BodyLimit, outside, logs it once
            headers = dict(scope.get("headers") or [])
            json_length = headers.get(b"inference-header-content-length")
            declared.check_body(self.spec, body, None if json_length is None else json_length.decode("latin-1"))
        except protocol.V2Error as error:
            log.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), error)
            return await _answer(send, error, close=False)
        await self.app(scope, receive, send)


async def _read(receive):
    """The whole request body, and a `receive` that hands it on once, then what the client sends next."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive  # the client left: nobody to answer
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, handed = b"".join(chunks), False

    async def replay():
        nonlocal handed
        if handed:
            return await receive()
        handed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


class _TooLarge(Exception):
    pass


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


async def _answer(send, error: protocol.V2Error, close: bool = True) -> None:
    """`error` as the answer; `close`: the connection too (a body that was not read whole)."""
    body = json.dumps(error.body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status,
                "headers": headers + [(b"connection", b"close")] * close})
    await send({"type": "http.response.body", "body": body})
