"""The floor under KServe's V2 REST latency: the same model and the same V2 checks in a bare ASGI app on
the same server (uvicorn), with nothing else: no FastAPI routing, no pydantic request model, no
middleware, no metrics. What KServe adds is its latency minus this one's (benchmarks/kserve_breakdown.py).

    .venv-kserve/bin/python -m benchmarks kserve-floor --framework torch --artifacts artifacts --port 8190
    .venv-kserve/bin/python -m benchmarks kserve-floor ... --echo     # no model at all: the HTTP round trip

A POST takes a V2 JSON request of one input and answers its outputs; any GET (the breakdown asks
/v2/health/ready) answers 200. A benchmark fixture, not a server to deploy: it has no limits and no errors
beyond a 400 with the message.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def application(model, echo: bool):
    """The ASGI app: `model` is a loaded serving.kserve.model.SpecModel."""
    from serving.v2 import protocol

    spec = model.spec

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        status, answer = 200, b"{}"
        if scope["method"] == "POST" and not echo:
            try:
                (one,) = json.loads(body)["inputs"]
                batch = protocol.input_batch(spec, one["name"], one["datatype"], one["shape"], one["data"])
                probabilities = model.predictor.predict(batch)
                answer = json.dumps({"model_name": spec.model_name, "outputs": [
                    {"name": spec.output_name, "datatype": "FP32", "shape": list(probabilities.shape),
                     "data": probabilities.astype(np.float32).ravel().tolist()}]}).encode()
            except (ValueError, KeyError, TypeError) as error:
                status, answer = 400, json.dumps({"error": str(error)}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--echo", action="store_true", help="answer {} without reading the request: no model")
    args = parser.parse_args(argv)
    import uvicorn

    from serving.kserve.model import SpecModel

    model = SpecModel(args.artifacts.resolve(), args.framework)
    model.load()
    # uvicorn as kserve's RESTServer configures it (one process, its default loop and HTTP parser), no access log.
    uvicorn.run(application(model, args.echo), host=args.host, port=args.port, log_config=None, access_log=False)
