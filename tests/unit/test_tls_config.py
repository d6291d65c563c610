"""gRPC TLS settings (serving/tls.py) and how the runner passes them to each server, without servers."""
import pytest

from serving import tls
from serving.endpoints import resolve
from training.spec import digits_spec, write_spec


def test_tls_is_off_unless_both_files_are_given(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n")
    assert tls.from_environment({}) is None
    with pytest.raises(ValueError, match="set both DIGITS_GRPC_TLS_CERT and DIGITS_GRPC_TLS_KEY"):
        tls.from_environment({"DIGITS_GRPC_TLS_CERT": str(cert)})
    with pytest.raises(ValueError, match="is not a file"):
        tls.from_environment({"DIGITS_GRPC_TLS_CERT": str(cert), "DIGITS_GRPC_TLS_KEY": str(tmp_path / "absent")})
    files = tls.from_environment({"DIGITS_GRPC_TLS_CERT": str(cert), "DIGITS_GRPC_TLS_KEY": str(key)})
    assert files == tls.TlsFiles(cert, key)
    # TF Serving's SSLConfig text proto carries the PEM texts; the compatible server reads them back.
    from serving.tfserving.compat_server import _pem
    from serving.tfserving.configs import read_text_proto_values

    config = tmp_path / "ssl.config"
    config.write_text(tls.tfserving_ssl_config(files))
    values = read_text_proto_values(config)
    assert _pem(values["server_cert"]) == cert.read_bytes() and _pem(values["server_key"]) == key.read_bytes()


def test_the_runner_turns_on_torchserve_grpc_tls(tmp_path, monkeypatch):
    from deploy.local.servers import torchserve_config

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    for run in ("plain", "tls"):  # two artifacts folders of the built-in task
        write_spec(digits_spec(), tmp_path / run / "spec.json")
    plain = torchserve_config(tmp_path / "plain", resolve({})).read_text()
    assert "enable_grpc_ssl" not in plain
    monkeypatch.setenv("DIGITS_GRPC_TLS_CERT", str(cert))
    monkeypatch.setenv("DIGITS_GRPC_TLS_KEY", str(key))
    lines = torchserve_config(tmp_path / "tls", resolve({})).read_text().splitlines()
    assert {"enable_grpc_ssl=true", f"certificate_file={cert}", f"private_key_file={key}"} <= set(lines)
    assert "inference_address=http://127.0.0.1:8080" in lines  # REST unchanged
