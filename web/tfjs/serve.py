"""Serve the built demo page (`<artifacts>/web`) as static files, after verifying it.

    python -m web.tfjs.serve                        # http://127.0.0.1:8000/
    python -m web.tfjs.serve --port 0               # any free port; the URL line says which
    make demo DEMO_PORT=8080                        # build, then serve

The folder is checked against its manifest entry (`web_demo`) before anything is served. The first
line printed is `serving <url>`, so scripts and tests can read the address. Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from training import manifest, paths


class Handler(SimpleHTTPRequestHandler):
    """Static files, with the MIME types tfjs needs and no caching (a rebuild shows at once).

    The two Cross-Origin headers make the page cross-origin isolated: the wasm backend may then use
    its threaded build (SharedArrayBuffer), and timers keep their full precision for the benchmark.
    Everything the page loads is same-origin, so they block nothing.
    """

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming refuses anything else
        ".js": "text/javascript",
        ".json": "application/json",
        ".bin": "application/octet-stream",
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(root: Path, host: str, port: int, verbose: bool = False) -> ThreadingHTTPServer:
    """A server for `<root>/web`, bound but not yet serving; refuses a folder that fails its hash."""
    folder = manifest.verify("web_demo", root)
    server = ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(folder)))
    server.verbose = verbose
    return server


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port, 0 for any free one (default: 8000)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    try:
        server = make_server(root, args.host, args.port, args.verbose)
    except manifest.ManifestError as error:
        raise SystemExit(f"error: {error}")
    except OSError as error:
        raise SystemExit(f"error: cannot listen on {args.host}:{args.port} ({error.strerror}); try --port 0")
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/  (from {root / 'web'}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
