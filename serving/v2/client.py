"""One client of the Open Inference Protocol (KServe V2), over REST and gRPC; both are Predictors.

    from serving.v2.client import V2Rest, V2Grpc
    rest = V2Rest(url="http://127.0.0.1:8090", model="digits")
    probabilities = rest.predict(batch)            # float32 (N, *item_shape) -> (N, K)
    rest.metadata(), rest.ready(), rest.predict_pictures([png_bytes])

REST posts the protocol's JSON (`POST /v2/models/<model>/infer`, the tensor flat in row-major
order, as the spec's examples write it) and reads `/v2/health/*` and `/v2/models/<model>[/ready]`;
gRPC calls `inference.GRPCInferenceService` through stubs generated from KServe's own V2 proto
(serving/v2/gen_stubs.py), sending the batch as raw little-endian FP32 bytes. The input and output
names come from the spec when the artifacts folder is at hand, else from the server's metadata,
as any client would. Any V2 server answers it: KServe's ModelServer, Ray Serve's app, Triton.
Predictions are retried on connection errors and overload refusals under one deadline
(serving/retry.py). `wire()` gives the bytes of one request (serving/wire.py).

A server row picks its ports by subclassing (serving/kserve/client.py): `rest_port`/`grpc_port`
name keys of core.spec.SERVING_PORTS.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import requests

from core import spec as specs
from serving import endpoints as endpoints_mod
from serving import tls
from serving.rest import call
from serving.retry import GRPC_CHANNEL_OPTIONS, RetryPolicy, call_with_retry
from serving.wire import Wire


class _Names:
    """The model's name and its input/output names: the spec's, or the server's metadata."""

    def _resolve_names(self, root, endpoints, model):
        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root) if model is None else None
        self.model = model or self.endpoints.model_name
        try:
            spec = specs.load(root)
            self._names = spec.input_name, spec.output_name
        except specs.SpecError:  # no artifacts at hand: ask the server, as any client can
            self._names = None

    def tensor_names(self) -> tuple[str, str]:
        if self._names is None:
            meta = self.metadata()
            self._names = meta["inputs"][0]["name"], meta["outputs"][0]["name"]
        return self._names


class V2Rest(_Names):
    framework, precision = "torch", "fp32"
    rest_port = ""  # a key of SERVING_PORTS (set by a server's subclass)

    def __init__(self, endpoints=None, root=None, *, url: str | None = None, model: str | None = None,
                 timeout: float = 30.0, retry: RetryPolicy = RetryPolicy()):
        self._resolve_names(root, endpoints, model)
        self.base = url or self.endpoints.url(self.rest_port)
        self.session = requests.Session()
        self.timeout, self.retry = timeout, retry

    @property
    def model_url(self) -> str:
        return f"{self.base}/v2/models/{self.model}"

    def _get(self, url: str) -> dict:
        return call(self.session, "GET", url, timeout=self.timeout)

    def live(self) -> bool:
        return bool(self._get(f"{self.base}/v2/health/live").get("live"))

    def ready(self) -> bool:
        return bool(self._get(f"{self.base}/v2/health/ready").get("ready"))

    def model_ready(self) -> bool:
        return bool(self._get(f"{self.model_url}/ready").get("ready"))

    def metadata(self) -> dict:
        return self._get(self.model_url)

    def infer_json(self, body) -> dict:
        """POST any JSON (or bytes) to /infer; the decoded answer (RestError with the server's message)."""
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
        return call_with_retry(lambda left: call(self.session, "POST", f"{self.model_url}/infer", data=data,
                                                 headers={"Content-Type": "application/json"},
                                                 timeout=min(self.timeout, left)), self.retry)

    def request_body(self, batch: np.ndarray) -> dict:
        batch = np.asarray(batch, dtype=np.float32)
        return {"inputs": [{"name": self.tensor_names()[0], "shape": list(batch.shape), "datatype": "FP32",
                            "data": batch.ravel().tolist()}]}

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.rows(self.infer_json(self.request_body(batch)))

    def predict_pictures(self, pictures: list[bytes]) -> np.ndarray:
        """PNG/JPEG pictures as one BYTES input (base64 in JSON); the probabilities of each."""
        body = {"inputs": [{"name": self.tensor_names()[0], "shape": [len(pictures)], "datatype": "BYTES",
                            "data": [base64.b64encode(p).decode() for p in pictures]}]}
        return self.rows(self.infer_json(body))

    def rows(self, answer: dict) -> np.ndarray:
        """The output tensor of a V2 JSON answer as float32 (N, K)."""
        output = next(o for o in answer["outputs"] if o["name"] == self.tensor_names()[1])
        return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])

    def wire(self, batch: np.ndarray) -> Wire:
        return Wire("rest", f"{self.model_url}/infer", json.dumps(self.request_body(batch)).encode(),
                    {"Content-Type": "application/json"}, self.rows)

    def close(self) -> None:
        self.session.close()


class V2Grpc(_Names):
    framework, precision = "torch", "fp32"
    grpc_port = ""  # a key of SERVING_PORTS (set by a server's subclass)
    SERVICE = "inference.GRPCInferenceService"

    def __init__(self, endpoints=None, root=None, *, target: str | None = None, model: str | None = None,
                 timeout: float = 30.0, retry: RetryPolicy = RetryPolicy()):
        from serving.v2.gen_stubs import load

        self._resolve_names(root, endpoints, model)
        self.pb2, pb2_grpc = load()
        self.target = target or self.endpoints.target(self.grpc_port)
        self.channel = tls.channel(self.target, GRPC_CHANNEL_OPTIONS)  # TLS if configured
        self.stub = pb2_grpc.GRPCInferenceServiceStub(self.channel)
        self.timeout, self.retry = timeout, retry

    def live(self) -> bool:
        return self.stub.ServerLive(self.pb2.ServerLiveRequest(), timeout=self.timeout).live

    def ready(self) -> bool:
        return self.stub.ServerReady(self.pb2.ServerReadyRequest(), timeout=self.timeout).ready

    def model_ready(self) -> bool:
        return self.stub.ModelReady(self.pb2.ModelReadyRequest(name=self.model), timeout=self.timeout).ready

    def metadata(self) -> dict:
        reply = self.stub.ModelMetadata(self.pb2.ModelMetadataRequest(name=self.model), timeout=self.timeout)
        def tensors(items):
            return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]
        return {"name": reply.name, "platform": reply.platform, "versions": list(reply.versions),
                "inputs": tensors(reply.inputs), "outputs": tensors(reply.outputs)}

    def request(self, batch: np.ndarray):
        """The ModelInferRequest of a float32 batch: shape and datatype declared, values as raw bytes."""
        batch = np.ascontiguousarray(batch, dtype="<f4")
        tensor = self.pb2.ModelInferRequest.InferInputTensor(name=self.tensor_names()[0], datatype="FP32",
                                                             shape=list(batch.shape))
        return self.pb2.ModelInferRequest(model_name=self.model, inputs=[tensor], raw_input_contents=[batch.tobytes()])

    def infer(self, request):
        """Send any ModelInferRequest; the ModelInferResponse (grpc.RpcError with the server's code)."""
        return call_with_retry(lambda left: self.stub.ModelInfer(request, timeout=min(self.timeout, left)), self.retry)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.rows(self.infer(self.request(batch)))

    def predict_pictures(self, pictures: list[bytes]) -> np.ndarray:
        """PNG/JPEG pictures as one BYTES input (bytes_contents); the probabilities of each."""
        tensor = self.pb2.ModelInferRequest.InferInputTensor(
            name=self.tensor_names()[0], datatype="BYTES", shape=[len(pictures)],
            contents=self.pb2.InferTensorContents(bytes_contents=list(pictures)))
        return self.rows(self.infer(self.pb2.ModelInferRequest(model_name=self.model, inputs=[tensor])))

    def rows(self, reply) -> np.ndarray:
        """The output tensor of a ModelInferResponse (raw bytes or typed contents) as float32 (N, K)."""
        if isinstance(reply, (bytes, bytearray)):
            reply = self.pb2.ModelInferResponse.FromString(reply)
        name = self.tensor_names()[1]
        index = next(i for i, o in enumerate(reply.outputs) if o.name == name)
        output = reply.outputs[index]
        if len(reply.raw_output_contents) > index:
            values = np.frombuffer(reply.raw_output_contents[index], dtype="<f4")
        else:
            values = np.asarray(output.contents.fp32_contents, dtype=np.float32)
        return values.reshape(list(output.shape)).astype(np.float32)

    def wire(self, batch: np.ndarray) -> Wire:
        return Wire("grpc", self.target, self.request(batch).SerializeToString(), (), self.rows,
                    method=f"/{self.SERVICE}/ModelInfer")

    def close(self) -> None:
        self.channel.close()
