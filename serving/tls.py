"""Optional TLS for every server's gRPC API, switched on by two environment variables.

    DIGITS_GRPC_TLS_CERT=/path/cert.pem DIGITS_GRPC_TLS_KEY=/path/key.pem make serve

With both set, the runner starts TorchServe with `enable_grpc_ssl` and TF Serving with an
`--ssl_config_file` (the real server's flag; the compatible server reads it too), both KServe
ModelServers with a TLS port (serving/kserve/bound.py), and the
project's gRPC clients open TLS channels that trust that certificate (a self-signed one works:
it is its own root). With neither set, gRPC stays plaintext on 127.0.0.1, as before. REST is
unchanged either way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CERT_VARIABLE, KEY_VARIABLE = "DIGITS_GRPC_TLS_CERT", "DIGITS_GRPC_TLS_KEY"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # PEM certificate chain (the clients trust it as their root)
    key: Path  # PEM private key (PKCS#8, as `openssl req -newkey ... -nodes` writes it)


def from_environment(environ=None) -> TlsFiles | None:
    """The configured certificate and key, or None when TLS is off; ValueError when half-configured."""
    environ = os.environ if environ is None else environ
    cert, key = environ.get(CERT_VARIABLE), environ.get(KEY_VARIABLE)
    if not cert and not key:
        return None
    if not (cert and key):
        raise ValueError(f"set both {CERT_VARIABLE} and {KEY_VARIABLE} for gRPC TLS, or neither")
    files = TlsFiles(Path(cert), Path(key))
    for path in (files.cert, files.key):
        if not path.is_file():
            raise ValueError(f"gRPC TLS: {path} is not a file")
    return files


def channel(target: str, options=(), aio: bool = False):
    """A gRPC channel to `target`: TLS trusting the configured certificate, else plaintext (grpc.aio's with `aio`)."""
    import grpc

    module = grpc.aio if aio else grpc
    files = from_environment()
    if files is None:
        return module.insecure_channel(target, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=files.cert.read_bytes())
    return module.secure_channel(target, credentials, options=options)


def tfserving_ssl_config(files: TlsFiles) -> str:
    """TF Serving's SSLConfig text proto (--ssl_config_file) holding the PEM texts."""
    def quoted(path: Path) -> str:
        return '"' + path.read_text().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    return f"server_key: {quoted(files.key)}\nserver_cert: {quoted(files.cert)}\nclient_verify: false\n"
