"""core/connections.py on a small aiohttp app: counted at accept, the oldest half-sent replaced, 503 past the
limit, header and body timeouts, accept errors one line per interval, limits within the open-file limit."""
from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from aiohttp import web

from core import connections

LIMITS = connections.ConnectionLimits(max_connections=4, header_timeout_s=0.5, body_timeout_s=0.5,
                                      keepalive_timeout_s=2.0)


def run_with_server(client, limits: connections.ConnectionLimits = LIMITS):
    """Serve a small app behind the guard and run `client(port, guard)` (blocking) against it; its result."""

    async def main():
        async def echo(request):
            try:
                body = await connections.read_body_within(request.read, limits)
            except TimeoutError:
                return web.json_response({"error": "body late"}, status=408)
            return web.json_response({"length": len(body)})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", echo)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.keepalive_timeout_s)
        await runner.setup()
        guard = connections.ConnectionGuard(limits, "test")
        listener = await guard.listen(runner, "127.0.0.1", 0)
        try:
            port = listener.sockets[0].getsockname()[1]
            return await asyncio.get_running_loop().run_in_executor(None, client, port, guard)
        finally:
            listener.close()
            await runner.cleanup()

    return asyncio.run(main())


def connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def post(port: int, body: bytes = b"abc") -> bytes:
    with connect(port, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body)) as sock:
        return sock.recv(1000)


def test_a_new_connection_replaces_the_oldest_half_sent_one():
    def client(port, guard):
        half_sent = [connect(port, b"GET / HTTP/1.1\r\nHost: x\r\n") for _ in range(LIMITS.max_connections)]
        time.sleep(0.1)
        answer = post(port)  # over the limit: the oldest half-sent connection makes room
        oldest_closed = closed_by_server(half_sent[0])
        for sock in half_sent:
            sock.close()
        return answer, oldest_closed, guard.evicted

    answer, oldest_closed, evicted = run_with_server(client)
    assert answer.startswith(b"HTTP/1.1 200") and b'"length": 3' in answer
    assert oldest_closed and evicted >= 1


def test_past_the_limit_with_every_connection_busy_a_new_one_gets_503_at_once():
    def client(port, guard):
        # Whole headers, half a body: each holds a request (not replaceable) until the body timeout.
        busy = [connect(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
                for _ in range(LIMITS.max_connections)]
        time.sleep(0.1)
        start = time.monotonic()
        with connect(port) as extra:
            refusal, seconds = extra.recv(1000), time.monotonic() - start
        late = [sock.recv(1000) for sock in busy]  # the body timeout answers each
        for sock in busy:
            sock.close()
        return refusal, seconds, late, guard.refused

    refusal, seconds, late, refused = run_with_server(client)
    assert refusal.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in refusal and b"Connection: close" in refusal
    assert b"more than 4 open connections" in refusal and seconds < 0.4  # before any timeout
    assert refused == 1
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in late), late


def test_headers_late_are_closed_and_counted_out():
    def client(port, guard):
        sock = connect(port, b"GET / HTTP/1.1\r\n")
        start = time.monotonic()
        closed = closed_by_server(sock)
        sock.close()
        time.sleep(0.1)
        return closed, time.monotonic() - start, guard.timed_out, guard.open

    closed, seconds, timed_out, still_open = run_with_server(client)
    assert closed and 0.3 < seconds < 3 and timed_out == 1 and still_open == 0


def test_headers_split_over_many_packets_are_still_a_request():
    def client(port, guard):
        with connect(port) as sock:
            for piece in (b"POST / HTTP/1.1\r\nHost: x\r", b"\nContent-Length: 2\r\n\r", b"\nhi"):
                sock.sendall(piece)
                time.sleep(0.05)
            return sock.recv(1000)

    assert b'"length": 2' in run_with_server(client)


def test_accept_errors_are_one_line_per_interval(caplog):
    handler = connections._AcceptErrors()
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.WARNING, logger="digits.connections"):
            for _ in range(1000):
                handler(loop, {"message": "socket.accept() out of system resource",
                               "exception": OSError(24, "Too many open files")})
    finally:
        loop.close()
    lines = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(lines) == 1 and "Too many open files" in lines[0].getMessage()


@pytest.mark.parametrize("soft, wanted, share, expected", [(256, 4096, 2, 96), (20000, 4096, 2, 4096),
                                                           (100, 4096, 1, 36), (70, 4096, 2, 16)])
def test_limits_fit_the_open_file_limit(monkeypatch, soft, wanted, share, expected):
    monkeypatch.setattr(connections.resource, "getrlimit", lambda _: (soft, soft))
    assert connections.fit_to_open_files(wanted, share) == expected
