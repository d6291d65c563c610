"""Connection limits for the project's aiohttp servers and options for its gRPC servers: floods cost nothing.

    guard = ConnectionGuard(ConnectionLimits(max_connections=4096), name="rest")
    listener = await guard.listen(runner, host, port, backlog=2048)   # instead of web.TCPSite / SockSite
    ...
    listener.close(); guard.close(); await runner.cleanup()

aiohttp on its own counts a connection only once a whole request has arrived (the handler is the
first place that sees it), waits for a request's first bytes as long as the keep-alive timeout and
for a body for ever; and asyncio logs a traceback for every failed accept. 20,000 half-sent
requests then ran the TF server out of open files and wrote 285 MB of log in 45 s. Here:
- **counted when accepted**: every accepted connection counts until it is closed. At
  `max_connections`, a new connection takes the place of the oldest one still waiting for its
  request's headers (a half-sent or idle-from-the-start connection, closed; a real client sends its
  headers with or right after connecting, so it is the newest of them, not the oldest); when every
  connection holds a request, the new one gets an immediate 503 with Retry-After and
  `Connection: close`, written before anything is read, and is closed. `fit_to_open_files` keeps
  the limit below the process's open-file limit, so the limit, not EMFILE, is what a flood meets;
- **header timeout**: a connection whose request headers are not complete `header_timeout_s` after
  it was accepted is closed (later requests on a kept-alive connection: aiohttp's keep-alive
  timeout, `keepalive_timeout_s`, closes a connection that sends nothing whole). Until its headers
  are complete a connection is only this module's small protocol, buffering at most MAX_HEADER_BYTES:
  aiohttp's request handler is made once there is a request to hand it, so thousands of half-sent
  connections cost little more than their sockets;
- **body timeout**: `read_body_within` gives a handler's body read `body_timeout_s` seconds;
- **accept errors once per interval**: the event loop's exception handler writes a failed accept
  (EMFILE: out of open files) as one line per ACCEPT_LOG_INTERVAL_S with the count since, never
  one traceback per connection; everything else goes to asyncio's own handler.
`grpc_server_options` is the gRPC twin (handshake timeout, incoming connection cap, idle and ping limits),
and `MalformedRequests` the gRPC servers' interceptor for bytes that are not a protobuf message.
"""
from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from dataclasses import dataclass

import grpc
from grpc import aio

log = logging.getLogger("digits.connections")
ACCEPT_LOG_INTERVAL_S = 10.0  # at most one line about failed accepts per this many seconds
HEADER_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 64 * 1024  # a first request's headers beyond this: the connection is closed (aiohttp: 8 KiB a line)
SPARE_FILES = 64  # open files kept out of the connection limits: logs, models, the listeners themselves


@dataclass(frozen=True)
class ConnectionLimits:
    # Open connections at once (counted from accept); one more is answered 503 and closed at once.
    max_connections: int = 4096
    # Seconds from accept until a request's headers are complete; then the connection is closed.
    header_timeout_s: float = 10.0
    # Seconds a handler may take to read a request body (read_body_within); then 408 and close.
    body_timeout_s: float = 10.0
    # Seconds an idle kept-alive connection stays open (aiohttp's keepalive_timeout; it was 75).
    keepalive_timeout_s: float = 15.0
    retry_after_s: int = 1  # what a refused connection is told to wait


def raise_open_files(needed: int) -> tuple[int, int, int]:
    """Raise this process's soft limit on open files towards `needed`, within the hard limit (never lower it).
    (the soft limit before, the soft limit now, the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return soft, target, hard
    return soft, soft, hard


def fit_to_open_files(wanted: int, share: int = 1) -> int:
    """`wanted` connections, or fewer: `share` listeners together stay SPARE_FILES below RLIMIT_NOFILE's soft limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, (soft - SPARE_FILES) // share))


def grpc_server_options(max_connections: int) -> list:
    """grpcio server options (core channel arguments): the same limits in gRPC's terms."""
    return [
        # A connection that has not finished the HTTP/2 (and TLS) handshake within 5 s is closed: a
        # half-sent connection costs its file descriptor seconds, not the default 120 s.
        ("grpc.server_handshake_timeout_ms", 5_000),
        # Connections at once; more are closed as they arrive (the REST limit's twin).
        ("grpc.max_allowed_incoming_connections", max_connections),
        *GRPC_KEEPALIVE_OPTIONS,
    ]


class MalformedRequests(aio.ServerInterceptor):
    """INVALID_ARGUMENT for a request that is not its method's protobuf message, on a grpc.aio server.

    grpcio itself answers a server error (INTERNAL "Exception deserializing request!" or UNKNOWN) for
    what is the client's mistake; here each unary method gets the raw bytes and parses them itself.
    The wrapped handler is made at a method's first call and kept (the services are fixed); an unknown
    method is not remembered, since a client may send any name.
    """

    def __init__(self):
        self.wrapped = {}

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        wrapped = self.wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
                return handler
            wrapped = self.wrapped[method] = _parsing_itself(handler, method)
        return wrapped


def _parsing_itself(handler, method: str):
    """`handler` taking raw bytes: what does not parse is answered INVALID_ARGUMENT, naming the method."""
    parse, behaviour = handler.request_deserializer, handler.unary_unary

    async def unary(raw: bytes, context):
        from google.protobuf.message import DecodeError

        try:
            request = parse(raw)
        except (DecodeError, ValueError, RecursionError) as error:
            log.warning("refused %s: not a protobuf message", method)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the request to {method} is not a valid protobuf message ({error})")
        return await behaviour(request, context)

    return grpc.unary_unary_rpc_method_handler(unary, response_serializer=handler.response_serializer)


GRPC_KEEPALIVE_OPTIONS = (
    # An idle connection (no call in flight) is closed after 5 minutes; clients reconnect on demand.
    ("grpc.max_connection_idle_ms", 300_000),
    # Keep-alive pings from the server every 60 s find dead peers; 10 s to answer one.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # A client may ping at most every 10 s without calls, and ping floods are answered with GOAWAY.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
)


def refusal_bytes(limits: ConnectionLimits, why: str) -> bytes:
    body = json.dumps({"error": f"{why}; retry after {limits.retry_after_s} s"}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Retry-After: {limits.retry_after_s}\r\nConnection: close\r\n\r\n").encode()
    return head + body


class _Guarded(asyncio.Protocol):
    """One connection: counted, then its first request's headers awaited (timer, buffer), then aiohttp's
    request handler made and handed the bytes; from there on everything is delegated to it."""

    def __init__(self, guard: ConnectionGuard, make_inner):
        self.guard, self.make_inner = guard, make_inner
        self.admitted = False  # counted in guard.open
        self.inner = None  # aiohttp's RequestHandler, made once the first request's headers are complete
        self.timer = None  # set while the first request's headers are incomplete
        self.buffer = bytearray()  # what arrived before that

    def connection_made(self, transport) -> None:
        self.transport = transport
        guard = self.guard
        if guard.open >= guard.limits.max_connections and guard.waiting:
            oldest = next(iter(guard.waiting))  # dicts keep insertion order: the longest waiting
            guard.evicted += 1
            oldest.close_waiting()
        if guard.open >= guard.limits.max_connections:
            guard.refused += 1
            transport.write(guard.refusal)
            transport.close()  # after the refusal is written
            return
        guard.open += 1
        self.admitted = True
        self.timer = asyncio.get_running_loop().call_later(guard.limits.header_timeout_s, self._headers_late)
        guard.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.guard.waiting.pop(self, None)

    def close_waiting(self) -> None:
        """Close a connection that never completed its request's headers (nothing owed to it)."""
        self._stop_waiting()
        self.buffer = bytearray()
        if self.admitted:
            self.admitted = False
            self.guard.open -= 1  # counted out now: its slot is taken at once
        self.transport.abort()  # the descriptor comes back now; no answer is owed

    def _headers_late(self) -> None:
        self.guard.timed_out += 1
        self.close_waiting()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)
            return
        if not self.admitted:
            return
        start = max(len(self.buffer) - len(HEADER_END) + 1, 0)
        self.buffer += data
        if self.buffer.find(HEADER_END, start) < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                self.close_waiting()
            return
        self._stop_waiting()
        self.inner = self.make_inner()
        self.inner.connection_made(self.transport)
        received, self.buffer = bytes(self.buffer), bytearray()
        self.inner.data_received(received)

    def eof_received(self):
        if self.inner is not None:
            return self.inner.eof_received()
        if self.admitted:  # the client gave up before its headers were whole
            self.close_waiting()
        return None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc) -> None:
        self._stop_waiting()
        if self.admitted:
            self.admitted = False
            self.guard.open -= 1
        if self.inner is not None:
            self.inner.connection_lost(exc)


class ConnectionGuard:
    """Counts one aiohttp server's connections from accept (see the module docstring)."""

    def __init__(self, limits: ConnectionLimits = ConnectionLimits(), name: str = "http"):
        self.limits, self.name = limits, name
        self.open = self.refused = self.timed_out = self.evicted = 0
        self.waiting: dict[_Guarded, None] = {}  # admitted connections whose first request's headers are incomplete
        self.refusal = refusal_bytes(limits, f"more than {limits.max_connections} open connections")

    async def listen(self, runner, host: str | None = None, port: int | None = None, *, sock=None,
                     backlog: int = 2048) -> asyncio.AbstractServer:
        """Serve `runner`'s (aiohttp AppRunner, set up) application on host:port or `sock`. To stop: close
        the returned listener and this guard (`close`), then clean the runner up (it closes the rest)."""
        loop = asyncio.get_running_loop()
        quiet_accept_errors(loop)
        server = runner.server  # aiohttp's web.Server: a call makes the request handler of one connection
        return await loop.create_server(lambda: _Guarded(self, server), host, port, sock=sock, backlog=backlog,
                                        reuse_port=False)

    def close(self) -> None:
        """Close the connections still waiting for their first request's headers (aiohttp never saw them)."""
        for connection in list(self.waiting):
            connection.close_waiting()


async def read_body_within(read, limits: ConnectionLimits):
    """`await read()` with the body timeout; TimeoutError when the body did not arrive in time."""
    return await asyncio.wait_for(read(), limits.body_timeout_s)


class _AcceptErrors:
    """The loop's exception handler: failed accepts as one line per interval, the rest as asyncio does."""

    def __init__(self):
        self.last, self.since = 0.0, 0

    def __call__(self, loop, context: dict) -> None:
        message = str(context.get("message", ""))
        if "accept" not in message:
            loop.default_exception_handler(context)
            return
        self.since += 1
        now = time.monotonic()
        if now - self.last >= ACCEPT_LOG_INTERVAL_S:
            error = context.get("exception")
            log.warning("cannot accept connections: %s (%d failed accepts since the last line; the server goes on "
                        "answering the connections it holds; this line is written at most every %g s)",
                        error or message, self.since, ACCEPT_LOG_INTERVAL_S)
            self.last, self.since = now, 0


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Install the rate-limited accept-error handler on `loop` (once)."""
    if not isinstance(loop.get_exception_handler(), _AcceptErrors):
        loop.set_exception_handler(_AcceptErrors())
