"""Clients for the trained model on TorchServe, over REST and gRPC; both are Predictors.

Token authorization is on: TorchServe writes `key_file.json` into its working directory
(`artifacts/run/torchserve/` when started by `make serve`), and every call carries
`Authorization: Bearer <inference key>`. The clients read the key from there unless given one.
Every call is retried on connection errors and overload refusals (HTTP 503/429, gRPC UNAVAILABLE/
RESOURCE_EXHAUSTED, and the INTERNAL that TorchServe's gRPC API answers when its job queue is full),
waiting at least the server's Retry-After, under one deadline (serving/retry.py; NO_RETRY
turns that off). TorchServe's keys are renewed while it runs (serving/torchserve/keys.py) and a
restarted TorchServe writes new ones: a client that read its key from the key file sends the
file's current key (it looks for a change before every call), and when TorchServe refuses a key
(HTTP 400 / PERMISSION_DENIED, "Token Authorization failed") and the file then holds another,
sends the call once more with that one.

    python -m serving.torchserve.client                  # predict 5 test images over REST and gRPC
    python -m serving.torchserve.client --png digit.png  # one picture, over REST
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import requests

from core import paths
from serving import endpoints as endpoints_mod
from serving import tls
from serving.rest import call
from serving.retry import GRPC_CHANNEL_OPTIONS, RetryPolicy, call_with_retry
from serving.wire import Wire

FROM_KEY_FILE = "from-key-file"  # the token argument's default: read it from key_file.json


def run_dir(root: Path | None = None) -> Path:
    """TorchServe's working directory under the runner: its key file, logs and pid live here."""
    return (root or paths.artifacts_dir()) / "run" / "torchserve"


def read_token(root: Path | None = None, kind: str = "inference") -> str:
    """The `inference` (or `management`) key from the key file TorchServe wrote at start-up."""
    key_file = run_dir(root) / "key_file.json"
    if not key_file.exists():
        raise FileNotFoundError(f"{key_file} not found: start TorchServe with `make serve` first")
    return json.loads(key_file.read_text())[kind]["key"]


TOKEN_REFUSED = "Token Authorization failed"  # TorchServe's answer to a wrong, expired or missing key


KEY_CHANGE_WAIT_S = 2.0  # after a refusal, how long the key file may take to show the new key


class _Key:
    """The inference key a client sends, and whether it may be read again from the key file.

    TorchServe renews its keys while it runs (serving/torchserve/keys.py) and writes new ones when
    it restarts; both rewrite the key file. Before each call the file's identity (inode, size,
    modification time) is compared with the one last read, so a renewed key is sent from the next
    call on: one stat per call, the file is read only when it changed.
    """

    def __init__(self, token, root: Path | None):
        self.from_file, self.root = token == FROM_KEY_FILE, root
        self.seen = None  # the key file's (inode, size, mtime) when it was last read
        self.value = token
        if self.from_file:
            self.value = read_token(root)  # FileNotFoundError, with what to do, when TorchServe never ran
            self.reload()

    def reload(self) -> bool:
        """Read the key file again if it changed; True when it holds another key."""
        if not self.from_file:
            return False
        try:
            stat = (run_dir(self.root) / "key_file.json").stat()
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if signature == self.seen:
                return False
            fresh = read_token(self.root)
        except (OSError, ValueError, KeyError):  # absent, or half written (TorchServe rewrites it in place)
            return False
        self.seen = signature
        changed, self.value = fresh != self.value, fresh
        return changed

    def wait_for_new(self, seconds: float = KEY_CHANGE_WAIT_S) -> bool:
        """True as soon as the key file holds another key; False when it did not change within `seconds`.

        TorchServe drops a renewed key before it has written the new one to the file: a call sent in
        between is refused, and the new key appears in the file a moment later.
        """
        deadline = time.monotonic() + seconds
        while True:
            if self.reload():
                return True
            if not self.from_file or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def refused_key(error: BaseException) -> bool:
    """Whether TorchServe refused the call's key (REST 400, gRPC PERMISSION_DENIED, same message)."""
    from serving.rest import RestError

    if isinstance(error, RestError):
        return error.status in (400, 401) and TOKEN_REFUSED in error.message
    code, details = getattr(error, "code", None), getattr(error, "details", None)
    if callable(code) and callable(details):
        try:
            return code().name in ("PERMISSION_DENIED", "UNAUTHENTICATED") and TOKEN_REFUSED in (details() or "")
        except Exception:  # not a finished gRPC call
            return False
    return False


def with_fresh_key(send, key: _Key, on_new_key):
    """send() with the key file's current key; when TorchServe refuses it and the file then holds
    another (renewed, or the server restarted), once more with that one."""
    if key.reload():
        on_new_key(key.value)
    try:
        return send()
    except Exception as error:
        if not (refused_key(error) and key.wait_for_new()):
            raise
    on_new_key(key.value)
    return send()


def probabilities_of(answer: dict) -> np.ndarray:
    """{"predictions": [{"label", "probabilities"}, ...]} -> (N, 10) float32."""
    return np.array([p["probabilities"] for p in answer["predictions"]], dtype=np.float32)


class TorchServeRest:
    """POST /predictions/<model> with {"instances": ...} or picture bytes."""

    name, framework, precision = "torchserve-rest", "torch", "fp32"

    def __init__(self, endpoints=None, token=FROM_KEY_FILE, root: Path | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = RetryPolicy()):
        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        self.session = requests.Session()
        self.key = _Key(token, root)
        self._use_key(self.key.value)
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def _use_key(self, token) -> None:
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _post(self, url: str, **kwargs) -> dict:
        def send():
            return call_with_retry(
                lambda left: call(self.session, "POST", url, timeout=min(self.timeout, left), **kwargs), self.retry)

        return with_fresh_key(send, self.key, self._use_key)

    def url(self, model_name: str | None = None, version: str | None = None) -> str:
        url = f"{self.endpoints.url('torchserve_inference')}/predictions/{model_name or self.endpoints.model_name}"
        return url if version is None else f"{url}/{version}"

    def predict_json(self, body, model_name: str | None = None, version: str | None = None) -> dict:
        """Send any JSON body; the decoded answer (raises RestError on an error status)."""
        return self._post(self.url(model_name, version), json=body)

    def predict_image(self, image: bytes, content_type: str = "image/png") -> dict:
        return self._post(self.url(), data=image, headers={"Content-Type": content_type})

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return probabilities_of(self.predict_json({"instances": np.asarray(batch).tolist()}))

    def wire(self, batch: np.ndarray) -> Wire:
        return Wire("rest", self.url(), json.dumps({"instances": np.asarray(batch).tolist()}).encode(),
                    {"Authorization": f"Bearer {self.key.value}", "Content-Type": "application/json"}, probabilities_of)


class TorchServeGrpc:
    """InferenceAPIsService.Predictions with the JSON body as input["data"]."""

    name, framework, precision = "torchserve-grpc", "torch", "fp32"

    def __init__(self, endpoints=None, token=FROM_KEY_FILE, root: Path | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = RetryPolicy()):
        from serving.torchserve.stubs import load

        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        self.pb2, pb2_grpc = load("inference")
        # TLS if configured
        self.channel = tls.channel(self.endpoints.target("torchserve_grpc_inference"), GRPC_CHANNEL_OPTIONS)
        self.stub = pb2_grpc.InferenceAPIsServiceStub(self.channel)
        self.key = _Key(token, root)
        self._use_key(self.key.value)
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def _use_key(self, token) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()

    def predict_bytes(self, payload: bytes, model_name: str | None = None, version: str | None = None) -> dict:
        """Send raw bytes (JSON or a picture); the decoded answer (raises grpc.RpcError)."""
        request = self.pb2.PredictionsRequest(model_name=model_name or self.endpoints.model_name,
                                              model_version=version or "", input={"data": payload})

        def send():
            return call_with_retry(lambda left: self.stub.Predictions(request, metadata=self.metadata,
                                                                      timeout=min(self.timeout, left)), self.retry)

        reply = with_fresh_key(send, self.key, self._use_key)
        answer = json.loads(reply.prediction)
        if "error" in answer:  # a bad request batched with good ones: TorchServe answers OK + error body
            raise ValueError(answer["error"])
        return answer

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return probabilities_of(self.predict_bytes(json.dumps({"instances": np.asarray(batch).tolist()}).encode()))

    def wire(self, batch: np.ndarray) -> Wire:
        body = json.dumps({"instances": np.asarray(batch).tolist()}).encode()
        request = self.pb2.PredictionsRequest(model_name=self.endpoints.model_name, input={"data": body})
        service = self.pb2.DESCRIPTOR.services_by_name["InferenceAPIsService"].full_name
        def rows(reply):
            return probabilities_of(json.loads(self.pb2.PredictionResponse.FromString(reply).prediction))
        return Wire("grpc", self.endpoints.target("torchserve_grpc_inference"), request.SerializeToString(),
                    self.metadata, rows, method=f"/{service}/Predictions")

    def close(self) -> None:
        self.channel.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--png", type=Path, help="a PNG/JPEG of one digit to send instead of test images")
    parser.add_argument("--count", type=int, default=5, help="test images to send (default: 5)")
    args = parser.parse_args(argv)
    rest = TorchServeRest()
    if args.png:
        print(json.dumps(rest.predict_image(args.png.read_bytes()), indent=2))
        return
    from training import data

    test = data.load_split(paths.split_path())["test"]
    for client in (rest, TorchServeGrpc()):
        labels = client.predict(test.x[: args.count]).argmax(axis=1)
        print(f"{client.name:<16} labels {labels.tolist()}  (true {test.y[: args.count].tolist()})")


if __name__ == "__main__":
    main()
