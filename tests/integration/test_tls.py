"""gRPC over TLS on every server with a gRPC target (core/registry.py: TorchServe, TF Serving, both KServe
ModelServers), with a self-signed certificate made here (the openssl CLI).

The servers of this test's own start with DIGITS_GRPC_TLS_CERT/KEY set (serving/tls.py): the
project's clients, trusting that certificate, get the right answers over TLS; a plaintext client
and a client trusting another certificate are refused.
"""
from __future__ import annotations

import shutil
import subprocess

import grpc
import numpy as np
import pytest

from tests.integration.own_servers import own_servers

pytestmark = [pytest.mark.slow, pytest.mark.concerns("torchserve", "tfserving", "kserve")]


def self_signed(folder, name: str):
    """(cert.pem, key.pem) for 127.0.0.1, valid one day."""
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI makes the test certificate")
def test_grpc_over_tls_with_a_self_signed_certificate(trained_artifacts, tmp_path, monkeypatch):
    from core import paths, registry
    from edge.eager import TorchEagerPredictor
    from serving.inprocess import SavedModelInProcess
    from serving.retry import NO_RETRY
    from training import data

    grpc_targets = [name for name in registry.served() if name.endswith("-grpc")]  # each gRPC server's endpoint
    assert len(grpc_targets) >= 4

    def client_of(name: str, **options):
        return registry.named(registry.TARGETS[name].predictor)(served.endpoints, root=served.root, **options)

    cert, key = self_signed(tmp_path, "server")
    other_cert, other_key = self_signed(tmp_path, "other")
    monkeypatch.setenv("DIGITS_GRPC_TLS_CERT", str(cert))
    monkeypatch.setenv("DIGITS_GRPC_TLS_KEY", str(key))
    with own_servers(trained_artifacts, tmp_path) as served:
        images = data.load_split(paths.split_path(served.root))["test"].x[:5]
        references = {"torch": TorchEagerPredictor(served.root), "tensorflow": SavedModelInProcess(served.root)}
        for client in map(client_of, grpc_targets):
            expected = references[client.framework].predict(images)
            np.testing.assert_allclose(client.predict(images), expected, atol=1e-5)
            client.close()

        def refused(make_client):
            client = make_client()
            with pytest.raises(grpc.RpcError) as error:
                client.predict(images)
            client.close()
            return error.value.code()

        clients = {name: lambda name=name: client_of(name, retry=NO_RETRY) for name in grpc_targets}
        monkeypatch.delenv("DIGITS_GRPC_TLS_CERT")
        monkeypatch.delenv("DIGITS_GRPC_TLS_KEY")  # plaintext clients
        assert ({server: refused(make) for server, make in clients.items()}
                == dict.fromkeys(clients, grpc.StatusCode.UNAVAILABLE))
        monkeypatch.setenv("DIGITS_GRPC_TLS_CERT", str(other_cert))
        monkeypatch.setenv("DIGITS_GRPC_TLS_KEY", str(other_key))  # TLS, but trusting another certificate
        assert ({server: refused(make) for server, make in clients.items()}
                == dict.fromkeys(clients, grpc.StatusCode.UNAVAILABLE))
