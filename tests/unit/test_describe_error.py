"""A target's error line names its real cause: only a server that could not be reached gets the
"is it running?" hint; a server that answered (400, unknown model) is running and says why."""
from __future__ import annotations

import grpc
import pytest
import requests

from core import registry as targets
from serving.rest import RestError

HINT = "(is it running? `make serve`)"


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


@pytest.mark.parametrize("error", [
    requests.ConnectionError("Max retries exceeded: Connection refused"),
    FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
    FileNotFoundError("artifacts/run/torchserve/key_file.json not found: start TorchServe with `make serve` first"),
])
def test_a_server_that_cannot_be_reached_gets_the_hint(error):
    assert targets.describe_error("torchserve-rest", error).endswith(HINT)


@pytest.mark.parametrize("error, cause", [
    (RestError(400, "instances: expected (N, 8, 8), got (1, 3)"), "RestError: HTTP 400: instances: expected"),
    (RestError(404, "Model not found: digits"), "RestError: HTTP 404: Model not found"),
    (FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "bad shape"), "FakeRpcError: bad shape"),
    (FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "Token Authorization failed"), "FakeRpcError: Token"),
])
def test_a_server_that_answered_is_named_with_its_own_message_and_no_hint(error, cause):
    line = targets.describe_error("tfserving-rest", error)
    assert line.startswith(cause) and HINT not in line, line


def test_an_in_process_target_never_gets_the_server_hint():
    assert HINT not in targets.describe_error("onnx-fp32", requests.ConnectionError("refused"))
