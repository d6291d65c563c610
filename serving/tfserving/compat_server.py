"""A TF-Serving-compatible model server, for machines where tensorflow_model_server is missing.

    python -m serving.tfserving.compat_server --port=8500 --rest_api_port=8501 \
        --model_config_file=models.config [--enable_batching --batching_parameters_file=...] \
        [--monitoring_config_file=...] [--file_system_poll_wait_seconds=1] [--host=127.0.0.1]

It takes tensorflow_model_server's flags and files and serves the same directory layout
(`<base_path>/<int version>/saved_model.pb`), so `make serve` starts either with one command line.
gRPC, through the official tensorflow-serving-api protos: PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus (Classify, Regress, MultiInference and
HandleReloadConfigRequest answer UNIMPLEMENTED). REST: GET /v1/models/<name>[/versions/<v>],
GET .../metadata, POST ...:predict with "instances" (row format) or "inputs" (columnar); an image
may be a picture as TF Serving's binary convention `{"b64": "<base64 PNG/JPEG>"}`, made into one
input the spec's way (training/preprocess.py, as TorchServe reads a posted picture). A batch that
is answered but sits far off the spec's range (0..1 values for a 0..255 model) is logged and gets an
HTTP `Warning` header (REST) or a `warning` trailing metadata entry (gRPC).
Errors use TF Serving's status codes: NOT_FOUND for an unknown model or version,
INVALID_ARGUMENT with a message naming the problem (HTTP 404 / 400 with {"error": ...}), also for
a request that is not a valid protobuf; a request body over the spec's MAX_REQUEST_BYTES gets
RESOURCE_EXHAUSTED (HTTP 413).

With --enable_batching it batches as TF Serving does (batcher.py): concurrent requests to one
model version and signature, from REST and gRPC alike, are merged into one model call and each gets
exactly its own rows back. The --batching_parameters_file is TF Serving's BatchingParameters text
proto, read by protobuf's parser (batching_params.py): max_batch_size, batch_timeout_micros,
max_enqueued_batches, num_batch_threads (one scheduler for all models and versions),
allowed_batch_sizes (batches padded up to the next one), pad_variable_length_inputs. A request over
max_batch_size is INVALID_ARGUMENT "Task size N is larger than maximum input batch size M"; a full
queue is UNAVAILABLE (REST 503) "The batch scheduling queue to which this task was submitted is
full; ...". Batch sizes, padding and time queued are on the metrics page under TF Serving's names.

REST runs on aiohttp (asyncio) with a listen backlog, a connection limit counted from accept,
header, body and keep-alive timeouts (core/connections.py) and the predictions on bounded model
threads off the event loop (RestLimits); gRPC on grpc.aio on the same event loop, --grpc_max_threads
(TF Serving's flag and default) predictions handled at once, a limit on calls in progress and the
same connection limits in gRPC's terms. A gRPC prediction costs no thread: it waits for its batch on
the loop. Over a limit a request is refused explicitly, never dropped: HTTP 503 with Retry-After,
gRPC RESOURCE_EXHAUSTED. The model runs on threads with a watchdog (serving/watchdog.py; with
batching, the scheduler's batch threads): a prediction that runs past --prediction_timeout_seconds
is answered DEADLINE_EXCEEDED (HTTP 504) and its thread replaced.

Differences from the real server, on purpose: it checks each version against the artifact
manifest before loading it; it refuses NaN/Inf and values outside the spec's value range, and a
tensor that declares a shape but carries no values (TensorFlow reads zeros); it does not split a
request across batches (enable_large_batch_splitting is refused); metrics are a few counters and the
batching histograms.
"""
# The docstring above is --help's text. This module is the command line: it reads the flags and files,
# builds the models (compat_core.py), binds gRPC (compat_grpc.py; TLS here) and REST (compat_rest.py).
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import threading
from pathlib import Path

import grpc

from core import connections
from serving import repeats
from serving.tfserving import batching_params, configs
from serving.tfserving.compat_core import PREDICTION_TIMEOUT_S, Server
from serving.tfserving.compat_grpc import GRPC_MAX_CONCURRENT_RPCS, GRPC_MAX_THREADS, make_grpc_server
from serving.tfserving.compat_rest import RestLimits, serve_rest

log = logging.getLogger("compat_server")


def raise_open_files(needed: int) -> None:
    """Raise the soft limit on open files to `needed` (within the hard limit), so max_connections can be reached."""
    before, now, hard = connections.raise_open_files(needed)
    if now > before:
        log.info("open files: soft limit raised from %d to %d for the connection limits", before, now)
    if now < needed:
        log.warning("open files: the hard limit %d is below the %d the connection limits need: raise `ulimit -Hn`",
                    hard, needed)


def read_batching(args) -> batching_params.BatchingParameters | None:
    """The batching parameters the flags ask for, None without --enable_batching; exits on what
    tensorflow_model_server refuses too (a file without the flag, a bad file)."""
    if not args.enable_batching:
        if args.batching_parameters_file:
            raise SystemExit("error: server_options.batching_parameters_file is set without setting "
                             "server_options.enable_batching to true.")
        return None
    if not args.batching_parameters_file:
        return batching_params.BatchingParameters()
    try:
        return batching_params.load(args.batching_parameters_file)
    except (OSError, batching_params.BatchingConfigError) as error:
        raise SystemExit(f"error: {error}") from None


def _pem(text: str) -> bytes:
    """A PEM text from a text proto string (escaped newlines and quotes undone)."""
    return text.encode().decode("unicode_escape").encode()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (default: 8500)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port, 0 for none (default: 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--model_config_file", type=Path, required=True, help="ModelServerConfig text proto")
    parser.add_argument("--enable_batching", action="store_true",
                        help="merge concurrent requests into batches (TF Serving's defaults, or the file's)")
    parser.add_argument("--batching_parameters_file", type=Path,
                        help="BatchingParameters text proto (needs --enable_batching, as for tensorflow_model_server)")
    parser.add_argument("--grpc_max_threads", type=int, default=GRPC_MAX_THREADS,
                        help=f"gRPC calls handled at once, each waiting for its batch with batching on "
                             f"(default: {GRPC_MAX_THREADS}, 4 per core as tensorflow_model_server)")
    parser.add_argument("--monitoring_config_file", type=Path, help="MonitoringConfig text proto (Prometheus path)")
    parser.add_argument("--ssl_config_file", type=Path,
                        help="SSLConfig text proto (server_key, server_cert PEM texts): serve gRPC over TLS")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between looks for new versions (default: 1)")
    parser.add_argument("--rest_model_threads", type=int, default=RestLimits.model_threads,
                        help=f"REST predictions running at once (default: {RestLimits.model_threads}; "
                             "this server only)")
    parser.add_argument("--rest_queue", type=int, default=RestLimits.queue,
                        help=f"REST predictions waiting beyond those; more get 503 + Retry-After "
                             f"(default: {RestLimits.queue}; this server only)")
    parser.add_argument("--prediction_timeout_seconds", type=float, default=PREDICTION_TIMEOUT_S,
                        help="seconds one prediction may run before its request is answered DEADLINE_EXCEEDED / 504 "
                             f"and its thread replaced (default: {PREDICTION_TIMEOUT_S:g}; this server only)")
    # tensorflow_model_server's thread flags (0: TensorFlow picks, one per core): the settings search
    # (benchmarks/search.py) tries them, and the same flags reach the real binary.
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads one TensorFlow op may use (default: 0, TensorFlow's choice)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="TensorFlow ops run at once (default: 0, TensorFlow's choice)")
    parser.add_argument("--rest_api_num_threads", type=int, default=0,
                        help="REST predictions running at once; here the same as --rest_model_threads (default: 0, "
                             "--rest_model_threads decides)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    repeats.install()  # per-request errors (a failed request, a body that is not a protobuf) at most once per 10 s

    batching = read_batching(args)
    monitoring = configs.read_text_proto_values(args.monitoring_config_file) if args.monitoring_config_file else {}
    metrics_path = monitoring.get("path") if monitoring.get("enable") else None
    log.info("TF-Serving-compatible server (serving/tfserving/compat_server.py), not tensorflow_model_server")
    if batching:
        log.info("batching on: %s", batching.describe())

    if args.tensorflow_intra_op_parallelism or args.tensorflow_inter_op_parallelism:
        import tensorflow as tf  # before the first model loads: TensorFlow fixes its thread pools then

        tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
        tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
        log.info("TensorFlow threads: intra-op %d, inter-op %d (0: TensorFlow's choice)",
                 args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    server = Server(args.model_config_file, batching, args.prediction_timeout_seconds)
    for registry in server.models.values():
        registry.poll()
    limits = RestLimits(model_threads=args.rest_api_num_threads or args.rest_model_threads, queue=args.rest_queue,
                        prediction_timeout_s=args.prediction_timeout_seconds)
    raise_open_files(limits.max_connections + GRPC_MAX_CONCURRENT_RPCS + 256)
    # Connections of each protocol at once, both within the open files this process may have (a lower
    # `ulimit -n` lowers them: a flood meets the limit and its refusals, never EMFILE).
    grpc_connections = connections.fit_to_open_files(GRPC_MAX_CONCURRENT_RPCS, share=2)
    limits = dataclasses.replace(limits, max_connections=connections.fit_to_open_files(limits.max_connections, share=2))
    log.info("connections at once: REST %d, gRPC %d", limits.max_connections, grpc_connections)
    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        grpc_server = await start_grpc(server, args, grpc_connections)
        threading.Thread(target=server.poll_forever, args=(args.file_system_poll_wait_seconds, stop_polling),
                         daemon=True).start()
        try:
            if args.rest_api_port:
                await serve_rest(server, args.host, args.rest_api_port, metrics_path, stop, limits)
            else:
                await stop.wait()
        finally:
            log.info("REST stopped; stopping gRPC (2 s for calls in progress)")
            await grpc_server.stop(grace=2)

    stop_polling = threading.Event()
    try:
        asyncio.run(run())
    finally:
        stop_polling.set()
        if server.scheduler:
            server.scheduler.stop()
        log.info("stopped")


async def start_grpc(server: Server, args, max_connections: int):
    """The gRPC services on a grpc.aio server on this event loop, bound (over TLS with --ssl_config_file) and
    started; exits when the port is taken."""
    grpc_server = make_grpc_server(server, args.grpc_max_threads, args.prediction_timeout_seconds, max_connections)
    try:
        if args.ssl_config_file:
            ssl = configs.read_text_proto_values(args.ssl_config_file)
            credentials = grpc.ssl_server_credentials([(_pem(ssl["server_key"]), _pem(ssl["server_cert"]))])
            grpc_server.add_secure_port(f"{args.host}:{args.port}", credentials)
        else:
            grpc_server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError:
        raise SystemExit(f"error: cannot bind gRPC to {args.host}:{args.port}: "
                         "is another server using the port?") from None
    await grpc_server.start()
    log.info("gRPC on %s:%d%s", args.host, args.port, " (TLS)" if args.ssl_config_file else "")
    return grpc_server


if __name__ == "__main__":
    main()
