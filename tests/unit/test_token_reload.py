"""The TorchServe REST client sends the key file's current key (TorchServe renews its keys while it
runs and writes new ones when it restarts): a changed file is read before the next call; when a
key is refused and the file shows a new one a moment later, the call is sent once more; it does not
loop when the key did not change."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from serving.endpoints import free_endpoints
from serving.rest import RestError
from serving.retry import NO_RETRY
from serving.torchserve.client import TOKEN_REFUSED, TorchServeRest, refused_key, run_dir

REFUSAL = f"{TOKEN_REFUSED}. Token either incorrect, expired, or not provided correctly"


def write_keys(root, inference: str) -> None:
    folder = run_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    keys = {kind: {"key": f"{kind}-{inference}", "expiration time": "later"} for kind in ("management", "API")}
    keys["inference"] = {"key": inference, "expiration time": "later"}
    (folder / "key_file.json").write_text(json.dumps(keys))


@pytest.fixture
def server():
    """A stand-in for TorchServe's token check: only the key in `accepted` gets an answer."""
    state = {"accepted": "second", "seen": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the base class's naming)
            self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            state["seen"].append(key)
            ok = key == state["accepted"]
            body = json.dumps({"predictions": []} if ok else {"code": 400, "type": "InvalidKeyException",
                                                               "message": REFUSAL}).encode()
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    endpoints = free_endpoints()
    httpd = ThreadingHTTPServer((endpoints.host, endpoints.ports["torchserve_inference"]), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield endpoints, state
    httpd.shutdown()
    httpd.server_close()


def test_a_key_file_changed_between_calls_is_read_before_the_next_call(server, spec_folder):
    endpoints, state = server
    write_keys(spec_folder, "first")
    client = TorchServeRest(endpoints, root=spec_folder, retry=NO_RETRY)
    write_keys(spec_folder, "second")  # renewed, or the server restarted and wrote new keys
    assert client.predict_json({"instances": []}) == {"predictions": []}
    assert state["seen"] == ["second"]  # no refused call: the new key was sent at once
    assert client.predict_json({"instances": []}) == {"predictions": []}
    assert state["seen"] == ["second", "second"]


def test_a_key_refused_before_the_file_shows_the_new_one_is_sent_again_with_it(server, spec_folder):
    """TorchServe drops a renewed key before it writes the new one: the refused call waits for the file."""
    endpoints, state = server
    write_keys(spec_folder, "first")
    client = TorchServeRest(endpoints, root=spec_folder, retry=NO_RETRY)
    threading.Timer(0.3, write_keys, (spec_folder, "second")).start()  # the file catches up a moment later
    assert client.predict_json({"instances": []}) == {"predictions": []}
    assert state["seen"] == ["first", "second"]


def test_an_unchanged_key_file_is_not_retried(server, spec_folder):
    endpoints, state = server
    write_keys(spec_folder, "first")
    state["accepted"] = "none of them"
    client = TorchServeRest(endpoints, root=spec_folder, retry=NO_RETRY)
    with pytest.raises(RestError) as error:
        client.predict_json({"instances": []})
    assert (error.value.status, error.value.message) == (400, REFUSAL)
    assert state["seen"] == ["first"]  # one call: the file held the same key


def test_a_key_given_by_the_caller_is_never_replaced(server, spec_folder):
    endpoints, state = server
    write_keys(spec_folder, "second")
    with pytest.raises(RestError):
        TorchServeRest(endpoints, token="mine", root=spec_folder, retry=NO_RETRY).predict_json({"instances": []})
    assert state["seen"] == ["mine"]


def test_only_the_token_refusal_counts_as_a_refused_key():
    assert refused_key(RestError(400, REFUSAL))
    assert not refused_key(RestError(400, "instances: expected a list"))
    assert not refused_key(RestError(503, REFUSAL))
