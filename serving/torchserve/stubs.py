"""Import the gRPC stubs generated from TorchServe's protos (see gen_stubs.py)."""
from __future__ import annotations

import importlib

from serving.torchserve.gen_stubs import STUBS_DIR


def load(service: str):
    """(pb2, pb2_grpc) modules for "inference" or "management"; clear error when not generated."""
    if not (STUBS_DIR / f"{service}_pb2_grpc.py").exists():
        raise ImportError(f"TorchServe gRPC stubs missing in {STUBS_DIR}: run `make setup` "
                          "(or `python -m serving.torchserve.gen_stubs`)")
    package = "serving.torchserve.grpc_stubs"
    return importlib.import_module(f"{package}.{service}_pb2"), importlib.import_module(f"{package}.{service}_pb2_grpc")
