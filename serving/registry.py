"""Every served target, and its in-process reference, as a Predictor: the one list to iterate.

    load_predictor("tfserving-grpc")              # a client of the running server
    load_predictor("torch-inprocess", root=...)   # the same model without a server

Server clients need the servers up (`make serve`); addresses come from serving/endpoints.py.
Adding a served target is one client class and one line here.
"""
from __future__ import annotations

import importlib
from pathlib import Path

# name -> (module, class, what the constructor needs: "server", "server+key" or "artifacts")
SERVED = {
    "torchserve-rest": ("serving.torchserve.client", "TorchServeRest", "server+key"),
    "torchserve-grpc": ("serving.torchserve.client", "TorchServeGrpc", "server+key"),
    "tfserving-grpc": ("serving.tfserving.client", "TFServingGrpc", "server"),
    "tfserving-rest": ("serving.tfserving.client", "TFServingRest", "server"),
}
IN_PROCESS = {
    "torch-inprocess": ("serving.inprocess", "TorchInProcess", "artifacts"),
    "tensorflow-inprocess": ("serving.inprocess", "SavedModelInProcess", "artifacts"),
}


def load_predictor(name: str, endpoints=None, root: Path | None = None):
    module, cls, needs = {**SERVED, **IN_PROCESS}[name]
    target = getattr(importlib.import_module(module), cls)
    if needs == "artifacts":
        return target(root)
    if needs == "server+key":  # TorchServe: the token key file lies under the artifacts folder
        return target(endpoints, root=root)
    return target(endpoints)
