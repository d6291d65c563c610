"""Clients for the trained model on TorchServe, over REST and gRPC; both are Predictors.

Token authorization is on: TorchServe writes `key_file.json` into its working directory
(`artifacts/run/torchserve/` when started by `make serve`), and every call carries
`Authorization: Bearer <inference key>`. The clients read the key from there unless given one.
Every call is retried on connection errors and overload refusals (HTTP 503/429, gRPC UNAVAILABLE/
RESOURCE_EXHAUSTED, and the INTERNAL that TorchServe's gRPC API answers when its job queue is full),
waiting at least the server's Retry-After, under one deadline (serving/retry.py; `retry=NO_RETRY`
turns that off).

    python -m serving.torchserve.client                  # predict 5 test images over REST and gRPC
    python -m serving.torchserve.client --png digit.png  # one picture, over REST
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import requests

from serving import endpoints as endpoints_mod
from serving import tls
from serving.rest import call
from serving.retry import GRPC_CHANNEL_OPTIONS, RetryPolicy, call_with_retry
from training import paths

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


def _token(token, root):
    return read_token(root) if token == FROM_KEY_FILE else token


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
        token = _token(token, root)
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def _post(self, url: str, **kwargs) -> dict:
        return call_with_retry(lambda left: call(self.session, "POST", url, timeout=min(self.timeout, left), **kwargs),
                               self.retry)

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


class TorchServeGrpc:
    """InferenceAPIsService.Predictions with the JSON body as input["data"]."""

    name, framework, precision = "torchserve-grpc", "torch", "fp32"

    def __init__(self, endpoints=None, token=FROM_KEY_FILE, root: Path | None = None, timeout: float = 30.0,
                 retry: RetryPolicy = RetryPolicy()):
        from serving.torchserve.stubs import load

        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        self.pb2, pb2_grpc = load("inference")
        self.channel = tls.channel(self.endpoints.target("torchserve_grpc_inference"), GRPC_CHANNEL_OPTIONS)  # TLS if configured
        self.stub = pb2_grpc.InferenceAPIsServiceStub(self.channel)
        token = _token(token, root)
        self.metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def predict_bytes(self, payload: bytes, model_name: str | None = None, version: str | None = None) -> dict:
        """Send raw bytes (JSON or a picture); the decoded answer (raises grpc.RpcError)."""
        request = self.pb2.PredictionsRequest(model_name=model_name or self.endpoints.model_name,
                                              model_version=version or "", input={"data": payload})
        reply = call_with_retry(lambda left: self.stub.Predictions(request, metadata=self.metadata,
                                                                   timeout=min(self.timeout, left)), self.retry)
        answer = json.loads(reply.prediction)
        if "error" in answer:  # a bad request batched with good ones: TorchServe answers OK + error body
            raise ValueError(answer["error"])
        return answer

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return probabilities_of(self.predict_bytes(json.dumps({"instances": np.asarray(batch).tolist()}).encode()))

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
