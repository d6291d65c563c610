"""The V2 REST client (serving/v2/client.py) of the Ray Serve application `make serve` starts, by port.

    from serving.rayserve.client import RayServeRest
    RayServeRest(root=root).predict(batch)       # POST http://127.0.0.1:8094/v2/models/<model>/infer
"""
from __future__ import annotations

from serving.v2.client import V2Rest


class RayServeRest(V2Rest):
    name, framework = "rayserve-v2-rest", "torch"
    rest_port = "rayserve_rest"
