"""The V2 clients (serving/v2/client.py) of the two KServe ModelServers `make serve` starts, by port.

    from serving.kserve.client import KServeTorchRest
    KServeTorchRest(root=root).predict(batch)       # POST http://127.0.0.1:8090/v2/models/<model>/infer
"""
from __future__ import annotations

from serving.v2.client import V2Grpc, V2Rest


class KServeTorchRest(V2Rest):
    name, framework = "kserve-torch-v2-rest", "torch"
    rest_port = "kserve_torch_rest"


class KServeTorchGrpc(V2Grpc):
    name, framework = "kserve-torch-v2-grpc", "torch"
    grpc_port = "kserve_torch_grpc"


class KServeTfRest(V2Rest):
    name, framework = "kserve-tf-v2-rest", "tensorflow"
    rest_port = "kserve_tf_rest"


class KServeTfGrpc(V2Grpc):
    name, framework = "kserve-tf-v2-grpc", "tensorflow"
    grpc_port = "kserve_tf_grpc"
