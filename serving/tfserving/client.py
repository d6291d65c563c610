"""Clients for the trained model on TF Serving (real or compatible), over gRPC and REST; both are Predictors.

gRPC goes through the official `tensorflow-serving-api` stubs (PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus); REST posts `{"instances": ...}` to
`/v1/models/<model>:predict` (the model name, input and output names come from the spec). No
token: TF Serving has no authentication of its own. Predictions are retried on connection errors
and overload refusals (HTTP 503/429, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED), waiting at least the
server's Retry-After, under one deadline (serving/retry.py; `retry=NO_RETRY` turns that off).

    python -m serving.tfserving.client           # status, signature, and 5 test images both ways
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import requests

from core import spec as specs
from serving import endpoints as endpoints_mod
from serving import tls
from serving.rest import call
from serving.retry import GRPC_CHANNEL_OPTIONS, RetryPolicy, call_with_retry
from serving.wire import Wire


class TFServingGrpc:
    name, framework, precision = "tfserving-grpc", "tensorflow", "fp32"

    def __init__(self, endpoints=None, root=None, timeout: float = 30.0, retry: RetryPolicy = RetryPolicy()):
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        self.root = root
        self._names = None  # (input name, output name), known at the first predict
        self.channel = tls.channel(self.endpoints.target("tfserving_grpc"), GRPC_CHANNEL_OPTIONS)  # TLS if configured
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def _spec(self, spec, model_name, version, signature_name=None):
        spec.name = model_name or self.endpoints.model_name
        if version is not None:
            spec.version.value = version
        if signature_name is not None:
            spec.signature_name = signature_name

    def predict_tensors(self, inputs: dict, model_name=None, version=None, signature_name="serving_default"):
        """Predict with {input name: ndarray or TensorProto}; the PredictResponse (raises grpc.RpcError)."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model_name, version, signature_name)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(value if hasattr(value, "tensor_shape") else tf.make_tensor_proto(value))
        return call_with_retry(lambda left: self.predictions.Predict(request, timeout=min(self.timeout, left)),
                               self.retry)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        input_name, output_name = self.tensor_names()
        response = self.predict_tensors({input_name: np.asarray(batch, dtype=np.float32)})
        return tf.make_ndarray(response.outputs[output_name]).astype(np.float32)

    def wire(self, batch: np.ndarray) -> Wire:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        input_name, output_name = self.tensor_names()
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, None, None)
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.asarray(batch, dtype=np.float32)))
        def rows(reply):
            return tf.make_ndarray(predict_pb2.PredictResponse.FromString(reply).outputs[output_name])
        return Wire("grpc", self.endpoints.target("tfserving_grpc"), request.SerializeToString(), (), rows,
                    method="/tensorflow.serving.PredictionService/Predict")

    def tensor_names(self) -> tuple[str, str]:
        """The serving signature's input and output names: the spec's, or (no spec at hand) the server's own."""
        if self._names is None:
            try:
                spec = specs.load(self.root)
                self._names = spec.input_name, spec.output_name
            except specs.SpecError:  # a client without the artifacts folder asks the server, as any client can
                signature = self.metadata()[0].signature_def["serving_default"]
                (input_name,), (output_name,) = list(signature.inputs), list(signature.outputs)
                self._names = input_name, output_name
        return self._names

    def metadata(self, model_name=None, version=None):
        """The served signature_def map (SignatureDefMap) and the version that answered."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model_name, version)
        response = self.predictions.GetModelMetadata(request, timeout=self.timeout)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return signatures, response.model_spec.version.value

    def status(self, model_name=None, version=None) -> list[tuple[int, str]]:
        """[(version, state name)] from ModelService.GetModelStatus."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model_name, version)
        response = self.models.GetModelStatus(request, timeout=self.timeout)
        return [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
                for s in response.model_version_status]

    def close(self) -> None:
        self.channel.close()


class TFServingRest:
    name, framework, precision = "tfserving-rest", "tensorflow", "fp32"

    def __init__(self, endpoints=None, root=None, timeout: float = 30.0, retry: RetryPolicy = RetryPolicy()):
        self.endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)
        self.base = f"{self.endpoints.url('tfserving_rest')}/v1/models"
        self.session = requests.Session()
        self.timeout = timeout  # seconds per attempt
        self.retry = retry

    def model_url(self, model_name=None, version=None) -> str:
        url = f"{self.base}/{model_name or self.endpoints.model_name}"
        return url if version is None else f"{url}/versions/{version}"

    def predict_json(self, body, model_name=None, version=None) -> dict:
        """POST any JSON body to :predict; the decoded answer (raises RestError)."""
        url = self.model_url(model_name, version) + ":predict"
        return call_with_retry(lambda left: call(self.session, "POST", url, json=body, timeout=min(self.timeout, left)),
                               self.retry)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        answer = self.predict_json({"instances": np.asarray(batch).tolist()})
        return np.asarray(answer["predictions"], dtype=np.float32)

    def wire(self, batch: np.ndarray) -> Wire:
        return Wire("rest", self.model_url() + ":predict",
                    json.dumps({"instances": np.asarray(batch).tolist()}).encode(),
                    {"Content-Type": "application/json"}, lambda answer: answer["predictions"])

    def status(self, model_name=None, version=None) -> dict:
        return call(self.session, "GET", self.model_url(model_name, version), timeout=self.timeout)

    def metadata(self, model_name=None, version=None) -> dict:
        return call(self.session, "GET", self.model_url(model_name, version) + "/metadata", timeout=self.timeout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5, help="test images to send (default: 5)")
    args = parser.parse_args(argv)
    from core import paths
    from training import data

    grpc_client, rest = TFServingGrpc(), TFServingRest()
    print("status (gRPC):", grpc_client.status())
    signatures, version = grpc_client.metadata()
    print(f"signature serving_default (version {version}):",
          signatures.signature_def["serving_default"].inputs[grpc_client.tensor_names()[0]].tensor_shape)
    test = data.load_split(paths.split_path())["test"]
    for client in (grpc_client, rest):
        labels = client.predict(test.x[: args.count]).argmax(axis=1)
        print(f"{client.name:<16} labels {labels.tolist()}  (true {test.y[: args.count].tolist()})")


if __name__ == "__main__":
    main()
