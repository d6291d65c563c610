"""KServe's ModelServer serving one framework's model: V2 over REST and gRPC, V1 REST, Prometheus metrics.

    .venv-kserve/bin/python -m serving.kserve.server --framework torch --artifacts artifacts \\
        --host 127.0.0.1 --http-port 8090 --grpc-port 8091

`make serve` / `make deploy-all` start one per framework (deploy/local/servers.py). What this adds
to KServe 0.21's own ModelServer, and why:
- **the address**: kserve binds REST to 0.0.0.0 and gRPC to [::] in its own code, with no flag;
  here both bind `--host` (DIGITS_SERVING_HOST, default 127.0.0.1), gRPC over TLS when
  DIGITS_GRPC_TLS_CERT/KEY are set (serving/tls.py);
- **refusals, not queues**: uvicorn's `limit_concurrency` answers 503 past `--max-concurrency`
  requests in flight, gRPC's `maximum_concurrent_rpcs` RESOURCE_EXHAUSTED; bodies over the spec's
  request limit get 413 / RESOURCE_EXHAUSTED;
- **the protocol's errors**: serving/v2/protocol.py's V2Error (400/404/413) as `{"error": ...}` and
  the gRPC code that says the same; malformed JSON is a 400, not FastAPI's 422;
- **stuck predictions answered**: the model runs on threads with a watchdog (serving/watchdog.py),
  not on the event loop: one that sticks is answered 504 / DEADLINE_EXCEEDED within
  `--prediction-timeout` seconds and replaced, and the server keeps answering;
- **quiet logs**: no per-request access or latency lines (kserve writes one of each by default),
  a refused request is one warning line, not a traceback, a client that goes away mid-request one
  line too, and the same line again within 10 s is counted, not repeated (serving/repeats.py).
KServe's ModelServer has no authentication: put it behind a gateway that has (deploy/kserve/).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("digits.kserve")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", required=True, choices=("torch", "tensorflow"))
    parser.add_argument("--artifacts", type=Path, required=True, help="the trained artifacts folder")
    parser.add_argument("--host", default="127.0.0.1", help="address both servers bind (default: 127.0.0.1)")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--max-concurrency", type=int, default=2048,
                        help="requests in flight per protocol before new ones are refused (default: 2048)")
    parser.add_argument("--grpc-threads", type=int, default=4, help="gRPC handler threads (default: 4)")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    # Defaults in serving/kserve/model.py (imported only after kserve may parse sys.argv).
    parser.add_argument("--model-threads", type=int,
                        help="predictions running at once, off the event loop (default: model.MODEL_THREADS, 4)")
    parser.add_argument("--prediction-timeout", type=float,
                        help="seconds one prediction may run before it is answered 504 / DEADLINE_EXCEEDED and its "
                             "thread replaced (default: serving/watchdog.py's TIMEOUT_S, 5)")
    parser.add_argument("--request-logging", action="store_true",
                        help="kserve's default logging back on: an access and a latency line per request "
                             "(for the benchmark's breakdown; off by default)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    # kserve parses sys.argv when imported (its own flags): give it none of ours.
    sys.argv[1:] = []
    from kserve.logging import configure_logging

    from serving.kserve import bound
    from serving.kserve.model import SpecModel

    configure_logging()  # kserve's and uvicorn's loggers, first: kserve skips this once the root has a handler
    # Our own lines (digits.*: refusals, versions, the watchdog) with a time and a level, as kserve's own.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

    if args.framework == "torch" and args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    threads = {key: value for key, value in (("model_threads", args.model_threads),
                                             ("prediction_timeout", args.prediction_timeout)) if value is not None}
    model = SpecModel(args.artifacts.resolve(), args.framework, **threads)
    model.load()
    server = bound.BoundModelServer(host=args.host, http_port=args.http_port, grpc_port=args.grpc_port,
                                    max_concurrency=args.max_concurrency, grpc_threads=args.grpc_threads,
                                    request_logging=args.request_logging)
    log.info("serving %s (%s) on http://%s:%d and grpc %s:%d", model.name, args.framework, args.host,
             args.http_port, args.host, args.grpc_port)
    server.start([model])


if __name__ == "__main__":
    main()
