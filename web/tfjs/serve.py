"""Serve the built demo page (`<artifacts>/web`) as static files, after verifying it (aiohttp).

    python -m web.tfjs.serve                        # http://127.0.0.1:8000/
    python -m web.tfjs.serve --port 0               # any free port; the URL line says which
    make demo DEMO_PORT=8080                        # build, then serve

The folder is checked against its manifest entry (`web_demo`) before anything is served. The first
line printed is `serving <url>`, so scripts and tests can read the address. Ctrl-C stops it.

aiohttp's static handler does the file serving: it resolves every path inside the folder (a `..`
or an encoded one never leaves it; symlinks are not followed) and lists no directory. On top:
GET and HEAD only (anything else 405), `/` is index.html, the content types the page needs, a
Content-Security-Policy that allows this origin only (plus compiling WebAssembly; no blob: scripts
or workers), `X-Content-Type-Options: nosniff`, no request body (413), headers bounded by
aiohttp's parser (400 beyond 8 KiB a line) and idle connections closed after IDLE_SECONDS. Floods
(core/connections.py): connections are counted from accept, within the open-file limit; one
past MAX_CONNECTIONS takes the place of the oldest that has not sent its request, or gets an
immediate 503; request headers must be complete HEADER_SECONDS after connecting; failed accepts
(out of open files) are logged once per interval, not once per connection.
nginx (deploy/config/nginx.conf) serves the same folder with the same headers in the containers.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web
from aiohttp.log import access_logger

from core import connections, manifest, paths

IDLE_SECONDS = 15.0  # an open connection with no request in flight is closed after this
HEADER_SECONDS = 10.0  # a new connection's request headers must be complete this long after it was accepted
MAX_CONNECTIONS = 4096  # open connections at once (fewer when the open-file limit is lower)
MAX_BODY_BYTES = 0  # the page is read-only: a request carries no body
# Exact types, whatever the platform's mimetypes table says: WebAssembly.instantiateStreaming
# refuses anything but application/wasm, and with nosniff a script must be served as one.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",  # onnxruntime-web's Emscripten glue, imported as a module
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".bin": "application/octet-stream",
    ".onnx": "application/octet-stream",
    ".tflite": "application/octet-stream",
}
# Everything the page loads comes from its own origin, plus 'wasm-unsafe-eval' to compile WebAssembly
# (JavaScript eval stays forbidden). No blob: scripts or workers: the tfjs wasm backend runs its
# single-threaded build (page/runtimes.js), whose threaded one would start workers from blob: URLs,
# and onnxruntime-web and LiteRT.js run on one thread. nginx (deploy/config/nginx.conf) sends the same.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
                           "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # a rebuild shows at once
    # Cross-origin isolation: the wasm backend may use its threaded build (SharedArrayBuffer) and
    # timers keep their precision for the benchmark. Everything is same-origin, so they block nothing.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@web.middleware
async def no_body(request: web.Request, handler):
    """413 for a request that announces a body (GET and HEAD carry none), before any handler."""
    if (request.content_length or 0) > MAX_BODY_BYTES or request.headers.get("Transfer-Encoding"):
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY_BYTES, actual_size=request.content_length or 0)
    return await handler(request)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer, errors included; a file found gets its exact content type."""
    response.headers.update(HEADERS)
    content_type = CONTENT_TYPES.get(Path(request.path).suffix.lower())
    if isinstance(response, web.FileResponse) and response.status in (200, 206) and content_type:
        response.headers["Content-Type"] = content_type


def make_app(folder: Path) -> web.Application:
    """The page's application for the (already verified) folder."""
    app = web.Application(middlewares=[no_body], client_max_size=MAX_BODY_BYTES or 1)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html", headers={"Content-Type": CONTENT_TYPES[".html"]})

    app.router.add_get("/", index)  # add_get answers HEAD too
    app.router.add_static("/", folder, show_index=False, follow_symlinks=False)
    app.on_response_prepare.append(_headers)
    return app


def limits(idle_seconds: float = IDLE_SECONDS, header_seconds: float = HEADER_SECONDS) -> connections.ConnectionLimits:
    return connections.ConnectionLimits(max_connections=connections.fit_to_open_files(MAX_CONNECTIONS),
                                        header_timeout_s=header_seconds, keepalive_timeout_s=idle_seconds)


async def _serve(app: web.Application, sock: socket.socket, idle_seconds: float, access_log=None,
                 header_seconds: float = HEADER_SECONDS):
    """Serve `app` on `sock` behind the connection guard; `stop` (a coroutine function) ends it."""
    runner = web.AppRunner(app, access_log=access_log, keepalive_timeout=idle_seconds, handle_signals=False)
    await runner.setup()
    guard = connections.ConnectionGuard(limits(idle_seconds, header_seconds), "page")
    listener = await guard.listen(runner, sock=sock)

    async def stop() -> None:
        listener.close()
        guard.close()
        await runner.cleanup()

    return stop


def bind(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port))
    sock.setblocking(False)
    return sock


def verified_folder(root: Path) -> Path:
    """`<root>/web`, refused (ManifestError) when it does not match its manifest entry."""
    return manifest.verify("web_demo", root)


def running(root: Path, host: str = "127.0.0.1", port: int = 0):
    """Serve `<root>/web` (verified first) from a background thread; yields the page's URL `http://host:port/`."""
    return serving(make_app(verified_folder(root)), host, port)


@contextmanager
def serving(app: web.Application, host: str = "127.0.0.1", port: int = 0, idle_seconds: float = IDLE_SECONDS,
            header_seconds: float = HEADER_SECONDS):
    """Run `app` in a thread of its own with the server's limits (shorter ones for tests that wait them out); yields
    its URL; stops it after."""
    sock = bind(host, port)
    loop = asyncio.new_event_loop()
    stop = loop.run_until_complete(_serve(app, sock, idle_seconds, header_seconds=header_seconds))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port, 0 for any free one (default: 8000)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        app = make_app(verified_folder(root))
        sock = bind(args.host, args.port)
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}") from None
    except OSError as error:
        raise SystemExit(f"error: cannot listen on {args.host}:{args.port} ({error.strerror}); try --port 0") from None
    host, port = sock.getsockname()[:2]
    print(f"serving http://{host}:{port}/  (from {root / 'web'}; Ctrl-C stops)", flush=True)
    # Warnings (a flood's one line per interval) always; aiohttp's access log, one line per request, with --verbose.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        asyncio.run(_serve_forever(app, sock, access_logger if args.verbose else None))
    except KeyboardInterrupt:
        pass


async def _serve_forever(app: web.Application, sock: socket.socket, access_log) -> None:
    """Serve until SIGTERM or SIGINT (Ctrl-C), then close the listener and the open connections."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    close = await _serve(app, sock, IDLE_SECONDS, access_log)
    try:
        await stop.wait()
    finally:
        await close()


if __name__ == "__main__":
    main()
