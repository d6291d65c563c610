"""Locust users for the served endpoints: each user is a client Predictor in a closed loop.

    make loadtest LOAD_TARGET=tfserving-grpc LOAD_USERS=20 LOAD_DURATION=30    # headless, see locust_run.py
    .venv/bin/locust -f benchmarks/locust/locustfile.py TorchServeGrpcUser           # Locust's web UI (port 8089)

gRPC users go through the official stubs: TF Serving's `tensorflow-serving-api` PredictionService
and TorchServe's stubs generated from its own protos (serving/*/client.py); REST users through the
same clients' HTTP sessions. Each request sends one test-split image and checks the answer is ten
probabilities summing to 1; anything else is reported to Locust as a failure.
Addresses come from serving/endpoints.py (DIGITS_*_PORT), the artifacts (TorchServe's token, the
test split) from $DIGITS_ARTIFACTS.
"""
from __future__ import annotations

import sys
import time

# Locust runs users as gevent greenlets; gRPC's C core must be told before any channel exists,
# or a call blocks the whole process instead of yielding to the other users.
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()
# TensorFlow (which TF Serving's stubs import) starts threads while it is imported: imported inside
# a user's greenlet, that left the user stuck after its first request. Imported here, once, it works.
# Only when the TF Serving gRPC user may run (named on the command line, or no class named: the web
# UI offers them all), since the import takes seconds.
if "TFServingGrpcUser" in sys.argv or not any(arg.endswith("User") for arg in sys.argv[1:]):
    import tensorflow  # noqa: E402,F401

from locust import User, constant, task  # noqa: E402

from benchmarks import openloop  # noqa: E402
from core import paths, registry  # noqa: E402
from core import spec as specs  # noqa: E402
from serving import endpoints as endpoints_mod  # noqa: E402


class PredictorUser(User):
    abstract = True
    target = ""  # a served target of core/registry.py
    wait_time = constant(0)  # closed loop: the next request leaves when the answer is in

    def on_start(self) -> None:
        root = paths.artifacts_dir()
        self.predictor = registry.load(self.target, root=root, endpoints=endpoints_mod.resolve(root=root))
        self.predictor.timeout = openloop.CLIENT_TIMEOUT_S
        self.images = openloop.test_images(root)
        self.classes = specs.load(root).num_classes
        self.sent = 0

    @task
    def predict(self) -> None:
        image = self.images[self.sent % len(self.images)][None]
        self.sent += 1
        start, error = time.perf_counter(), None
        try:
            openloop.check_answer(self.predictor.predict(image), 1, self.classes)
        except Exception as exc:  # reported to Locust as this request's failure
            error = exc
        self.environment.events.request.fire(
            request_type=self.target.rsplit("-", 1)[1], name=self.target,
            response_time=(time.perf_counter() - start) * 1e3, response_length=0, exception=error, context={})


# One Locust user per served target, named by its row's `load_user` (core/registry.py).
for _target in registry.TARGETS.values():
    if _target.load_user:
        globals()[_target.load_user] = type(_target.load_user, (PredictorUser,), {"target": _target.name})
