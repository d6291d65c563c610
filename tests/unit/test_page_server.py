"""The demo page's server (web/tfjs/serve.py) on a small folder of its own: what it serves, with
which headers, and what it refuses (other methods, directories, paths outside the folder, bodies,
oversized headers, idle connections). Raw requests (http.client, sockets) so no client library
cleans a path before it is sent. The real page under this policy: tests/browser/test_chromium.py."""
from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from web.tfjs import serve

IDLE = 1.0  # seconds, idle and header time-outs alike; the server's own are serve.IDLE_SECONDS, HEADER_SECONDS


@pytest.fixture
def page(tmp_path):
    """A page folder with one file of each kind, and a secret beside (outside) it; yields (host, port)."""
    folder = tmp_path / "web"
    (folder / "vendor").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "index.html").write_text("<!doctype html><title>Draw a digit</title>")
    (folder / "app.js").write_text("export const x = 1;\n")
    (folder / "style.css").write_text("body { margin: 0 }\n")
    (folder / "vendor" / "backend.wasm").write_bytes(b"\0asm\1\0\0\0")
    (folder / "model" / "model.json").write_text("{}")
    (folder / "model" / "group1-shard1of1.bin").write_bytes(b"\1\2\3\4")
    (tmp_path / "secret.txt").write_text("not for the web")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    with serve.serving(serve.make_app(folder), idle_seconds=IDLE, header_seconds=IDLE) as url:
        parts = urlsplit(url)
        yield parts.hostname, parts.port


def ask(page, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection(*page, timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response, content


@pytest.mark.parametrize("path, content_type, start", [
    ("/", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/index.html", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/app.js", "text/javascript; charset=utf-8", b"export"),
    ("/style.css", "text/css; charset=utf-8", b"body"),
    ("/vendor/backend.wasm", "application/wasm", b"\0asm"),
    ("/model/model.json", "application/json", b"{}"),
    ("/model/group1-shard1of1.bin", "application/octet-stream", b"\1\2"),
])
def test_files_come_with_their_exact_type_and_the_security_headers(page, path, content_type, start):
    response, content = ask(page, "GET", path)
    assert response.status == 200 and content.startswith(start)
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == serve.CONTENT_SECURITY_POLICY


def test_the_policy_allows_this_origin_only_plus_what_wasm_needs():
    directives = dict(part.strip().split(" ", 1) for part in serve.CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    # No 'unsafe-eval', no 'unsafe-inline', no other origin, no blob: scripts or workers (the wasm backend runs
    # single-threaded: its threaded build starts workers from blob: URLs).
    assert directives["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert directives["worker-src"] == "'self'"
    assert "blob:" not in serve.CONTENT_SECURITY_POLICY
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "http" not in serve.CONTENT_SECURITY_POLICY and "*" not in serve.CONTENT_SECURITY_POLICY


def test_head_answers_like_get_without_a_body(page):
    response, content = ask(page, "HEAD", "/vendor/backend.wasm")
    assert (response.status, content) == (200, b"")
    assert response.headers["Content-Type"] == "application/wasm" and response.headers["Content-Length"] == "8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_every_other_method_is_405(page, method):
    response, _ = ask(page, method, "/app.js")
    assert response.status == 405
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # error answers carry the headers too


@pytest.mark.parametrize("path", ["/vendor/", "/vendor", "/model/", "/model"])
def test_no_directory_is_listed(page, path):
    response, content = ask(page, "GET", path)
    assert response.status in (403, 404) and b"backend.wasm" not in content and b"model.json" not in content


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/vendor/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/vendor/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/vendor/..%2f..%2fsecret.txt", "/..%5csecret.txt",
    "/%252e%252e/secret.txt", "/link.txt", "//secret.txt",
])
def test_nothing_outside_the_folder_is_served(page, path):
    response, content = ask(page, "GET", path)
    assert response.status in (403, 404), (path, response.status)
    assert b"not for the web" not in content


def test_a_request_body_is_refused_with_413(page):
    response, _ = ask(page, "GET", "/", {"Content-Length": "11"}, b"hello world")
    assert response.status == 413


def test_an_oversized_header_is_refused(page):
    response, _ = ask(page, "GET", "/", {"X-Padding": "a" * 20_000})
    assert response.status in (400, 431)


def test_an_idle_connection_is_closed(page):
    """A connection that sends nothing, or half a request, is closed after the idle time."""
    for opening in (b"", b"GET / HTTP/1.1\r\nHost: x\r\n"):
        with socket.create_connection(page, timeout=IDLE + 30) as idle:
            idle.sendall(opening)
            began = time.monotonic()
            assert idle.recv(100) == b""  # closed by the server, no answer
            assert time.monotonic() - began < IDLE + 20


def test_nginx_sends_the_page_server_s_headers():
    """The containers' page (deploy/config/nginx.conf) under the same policy as `make demo`'s."""
    import re

    from core import paths

    conf = (paths.REPO_ROOT / "deploy" / "config" / "nginx.conf").read_text()
    sent = dict(re.findall(r'add_header ([\w-]+) "([^"]*)" always;', conf))
    assert {name: sent.get(name) for name in serve.HEADERS} == serve.HEADERS
