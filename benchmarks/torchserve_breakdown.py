"""Where TorchServe's latency goes: one request taken apart by TorchServe's own timers, then what can be cut.

    make bench TOOL=torchserve-breakdown                   # = python -m benchmarks torchserve-breakdown
    python -m benchmarks torchserve-breakdown --seconds 5 --stages "latency profile" "metrics in the log"

The same shape as KServe's (benchmarks/kserve_breakdown.py): one keep-alive client (the project's REST
client, core/registry.py "torchserve-rest") sends one test image at a time to each stage, a TorchServe
started here with the latency profile (deploy/local/profiles.json) plus the stage's changes, in its
own variant root on free ports (benchmarks/variants.py, deploy/local/runner.py), stopped after it.
The model in-process (core/registry.py IN_PROCESS, no server) is timed in the same run: every
stage's p50 is also given as a multiple of it (the goal: the latency profile's REST p50 <= 20x).

One request, piece by piece (the "handler timers" stage, means per request over the timed calls):
TorchServe's Prometheus counters (metrics_mode=prometheus) read before and after the calls give
  frontend   ts_inference_latency_microseconds: from the Java frontend taking the request to its answer
  queue      ts_queue_latency_microseconds: waiting in the frontend's job queue for the worker
and the handler's own timers (serving/torchserve/handler.py, DIGITS_HANDLER_TIMERS=1) its decode,
model and encode; the client's own JSON work (the request written, the answer read: timed in this
process) is taken off too, so that
  client JSON                   = the request body written and the answer parsed, in this process
  HTTP and frontend I/O         = client round trip - frontend - client JSON   (requests' own work,
                                   the loopback, Netty's parsing and the token check, the answer back)
  frontend <-> worker           = frontend - queue - handler     (the job handed to the Python worker
                                   over its socket, TorchServe's framing there, the answer back)
  handler                       = decode + model + encode (+ the rest of its call)
The other stages each change one thing that can be cut (STAGES: the metrics in the log instead of
Prometheus, TorchServe's logging without its per-request lines, one Netty thread each, and all of
these together; a new connection per request shows what keep-alive saves, gRPC the other protocol)
and report the client's p50 and, where the metrics are still served, TorchServe's own figures. Writes
artifacts/bench/torchserve-breakdown.json (benchmarks/results.py) and prints a table. Compare
stages of one run, not runs: the machine is shared.
"""
from __future__ import annotations

import argparse
import functools
import json
import re
import time
from pathlib import Path

import numpy as np
import requests

from benchmarks import machine, results, timing, variants
from core import paths, registry
from core import spec as specs
from deploy.local import runner
from deploy.local import settings as settings_mod
from serving.endpoints import free_endpoints

GOAL_X = 20  # the latency profile's REST p50 within this many times the model in-process
TIMED = {"DIGITS_HANDLER_TIMERS": "1"}  # the handler's own timers (its worker's environment)
DETECT = {"model_metrics_auto_detect": "true"}  # TorchServe lists metrics its yaml does not declare
# TorchServe's logging without its per-request lines (serving/torchserve/log4j2-quiet.xml; {repo}: this checkout).
QUIET_LOGS = "-Dlog4j.configurationFile=file://{repo}/serving/torchserve/log4j2-quiet.xml"
# Stage -> (changes on top of the latency profile: ServerSettings fields merged key by key, the client's way).
STAGES = {
    "latency profile": ({}, "keep-alive"),
    "handler timers": ({"torchserve_env": TIMED, "torchserve_config": DETECT}, "keep-alive"),
    "new connection per request": ({}, "new connection"),
    "metrics in the log": ({"torchserve_config": {"metrics_mode": "log"}}, "keep-alive"),
    "one Netty thread each": ({"torchserve_config": {"number_of_netty_threads": 1, "netty_client_threads": 1}},
                              "keep-alive"),
    "quiet logs": ({"torchserve_config": {"vmargs": QUIET_LOGS}}, "keep-alive"),
    "gRPC": ({}, "grpc"),
    "every cut": ({"torchserve_config": {"vmargs": QUIET_LOGS, "metrics_mode": "log", "number_of_netty_threads": 1,
                                         "netty_client_threads": 1}}, "keep-alive"),
}
COUNTERS = {"requests": "ts_inference_requests_total", "frontend_us": "ts_inference_latency_microseconds",
            "queue_us": "ts_queue_latency_microseconds", "handler_calls": "DigitsHandlerCalls"}


@functools.cache
def counter_names() -> dict:
    """COUNTERS and the handler's own timers (imported here: the handler module imports torch and TorchServe)."""
    from serving.torchserve.handler import TIMERS

    return {**COUNTERS, **{name.removeprefix("Digits").removesuffix("Time").lower() + "_us": name for name in TIMERS}}


def stage_settings(changes: dict) -> settings_mod.ServerSettings:
    """The latency profile with a stage's changes merged into each field (dicts key by key)."""
    base = settings_mod.preset("latency")
    merged = {field: {**getattr(base, field), **value} if isinstance(value, dict) else value
              for field, value in changes.items()}
    return base.merged(name="latency", **merged)


def counters(text: str) -> dict:
    """{key of counter_names(): value} summed over label sets, from a Prometheus text page; absent ones are left
    out."""
    out: dict = {}
    for key, metric in counter_names().items():
        values = [float(v) for v in re.findall(rf"^{metric}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", text, re.MULTILINE)]
        if values:
            out[key] = sum(values)
    return out


def scrape(endpoints) -> dict:
    try:
        answer = requests.get(f"{endpoints.url('torchserve_metrics')}/metrics", timeout=5)
        return counters(answer.text) if answer.ok else {}
    except requests.RequestException:
        return {}


def per_request(before: dict, after: dict) -> dict:
    """Means per request of the counters' growth over the timed calls (TorchServe's own figures)."""
    requests_ = after.get("requests", 0) - before.get("requests", 0)
    if requests_ <= 0:
        return {}
    out = {"requests": int(requests_)}
    for key in counter_names():
        if key not in ("requests", "handler_calls") and key in after:
            out[key] = round((after[key] - before.get(key, 0.0)) / requests_, 1)
    if "handler_calls" in after:
        batches = max(after["handler_calls"] - before.get("handler_calls", 0), 1)
        out["requests_per_batch"] = round(requests_ / batches, 2)
    return out


def pieces(client_mean_us: float, server: dict, client_json_us: float = 0.0) -> list[dict] | None:
    """One request taken apart (means, microseconds), or None without the frontend's and the handler's figures."""
    if not {"frontend_us", "queue_us", "decode_us", "model_us", "encode_us"} <= set(server):
        return None
    handler = server["decode_us"] + server["model_us"] + server["encode_us"]
    rows = [("client JSON (the request written, the answer read)", client_json_us),
            ("HTTP and frontend I/O", client_mean_us - server["frontend_us"] - client_json_us),
            ("frontend job queue", server["queue_us"]),
            ("frontend <-> Python worker", server["frontend_us"] - server["queue_us"] - handler),
            ("handler: decode (JSON to array, the contract check)", server["decode_us"]),
            ("handler: model", server["model_us"]),
            ("handler: encode (the answers)", server["encode_us"])]
    return [{"piece": name, "mean_us": round(value, 1), "share": round(value / client_mean_us, 3)}
            for name, value in rows]


def client_json(image: np.ndarray, classes: list[str], seconds: float) -> dict:
    """The REST client's own JSON work per call, in this process: its request body written, an answer of
    the handler's form parsed to probabilities (serving/torchserve/client.py)."""
    from serving.torchserve.client import probabilities_of

    answer = json.dumps({"predictions": [{"label": classes[0], "probabilities": [1 / len(classes)] * len(classes)}]})

    def both():
        json.dumps({"instances": np.asarray(image).tolist()})
        probabilities_of(json.loads(answer))

    return timing.summarize(timing.time_for(both, seconds, warmup=100)[0], "us", digits=2)


def timed_calls(predictor, image: np.ndarray, client: str, seconds: float, warmup: int) -> list[float]:
    if client == "new connection":  # the session's pool dropped before each call: a TCP connect every time
        def call():
            predictor.session.close()
            predictor.predict(image)
    else:
        def call():
            predictor.predict(image)
    return timing.time_for(call, seconds, warmup)[0]


def measure_stage(root: Path, stage: str, image: np.ndarray, seconds: float, warmup: int) -> tuple[list, dict, dict]:
    """(the client's samples in s, TorchServe's counters before and after them) of one stage's own server."""
    changes, client = STAGES[stage]
    settings = stage_settings(changes)
    variant = variants.prepare(root, "torchserve-breakdown")
    endpoints = free_endpoints()
    runner.stop(variant)  # left over from an interrupted run
    try:
        runner.start(variant, endpoints, timeout=300, settings=settings, only=("torchserve",))
        predictor = registry.load("torchserve-grpc" if client == "grpc" else "torchserve-rest", root=variant,
                                  endpoints=endpoints)
        for _ in range(warmup):
            predictor.predict(image)
        before = scrape(endpoints)
        samples = timed_calls(predictor, image, client, seconds, 0)
        after = scrape(endpoints)
        getattr(predictor, "close", lambda: None)()
    finally:
        runner.stop(variant)
    return samples, before, after


def stage_row(stage: str, runs: list[tuple[list, dict, dict]], client_json_us: float = 0.0) -> dict:
    """A stage's figures over its rounds: the client's samples pooled, TorchServe's counters summed."""
    changes, client = STAGES[stage]
    samples = [sample for run in runs for sample in run[0]]
    before = {key: sum(run[1].get(key, 0.0) for run in runs) for key in runs[0][2]}
    after = {key: sum(run[2].get(key, 0.0) for run in runs) for key in runs[0][2]}
    server = per_request(before, after)
    row = {"stage": stage, "client": client, "changes": changes, "rounds": len(runs),
           **timing.summarize(samples, "ms", digits=4), "mean_us": round(float(np.mean(samples)) * 1e6, 1),
           "server": server}
    found = pieces(row["mean_us"], server, client_json_us)
    if found:
        row["pieces"] = found
    return row


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed calls per stage, seconds (default: 3)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls first (default: 100)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="every stage this many times, in turn, pooled: slow spells of other work on the "
                             "machine fall on every stage alike (default: 2)")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES), metavar="STAGE",
                        help=f"stages to run (default: all: {', '.join(STAGES)})")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    from benchmarks import openloop

    image = openloop.test_images(root, 1)  # (1, *item shape)
    began = time.monotonic()
    name = registry.IN_PROCESS["torch"]
    print(f"breakdown: in-process {name} ...", flush=True)
    reference = registry.load(name, root=root)
    model = timing.summarize(timing.time_for(lambda: reference.predict(image), args.seconds, args.warmup)[0],
                             "ms", digits=4)
    runs: dict = {stage: [] for stage in args.stages}
    for number in range(1, args.rounds + 1):
        for stage in args.stages:
            print(f"breakdown: round {number}/{args.rounds}, {stage} ...", flush=True)
            runs[stage].append(measure_stage(root, stage, image, args.seconds, args.warmup))
    json_work = client_json(image, specs.load(root).labels, min(args.seconds, 1.0))
    rows = [stage_row(stage, stage_runs, json_work["mean_us"]) for stage, stage_runs in runs.items()]
    for row in rows:
        row["x_in_process"] = round(row["p50_ms"] / model["p50_ms"], 1)
    report = {"command": results.command(__name__, argv), "batch": 1, "client_threads": 1,
              "seconds_per_stage": args.seconds, "rounds": args.rounds, "machine": machine.describe(), "goal_x": GOAL_X,
              "profile": settings_mod.preset("latency").to_dict(), "in_process": {"target": name, **model},
              "client_json": json_work,
              "stages": rows, "seconds": round(time.monotonic() - began, 1)}
    out = results.write(report, root, "torchserve-breakdown")
    print(f"\n{'stage':<28}{'p50 ms':>9}{'p99 ms':>9}{'x model':>9}  TorchServe's own (us per request)")
    print(f"{'in-process ' + name:<28}{model['p50_ms']:>9.3f}{model['p99_ms']:>9.3f}{1.0:>9.1f}")
    for r in rows:
        own = ", ".join(f"{k} {v:g}" for k, v in r["server"].items() if k != "requests")
        print(f"{r['stage']:<28}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['x_in_process']:>9.1f}  {own}")
    for r in rows:
        for piece in r.get("pieces", []):  # the handler timers' stage
            print(f"  {piece['piece']:<52}{piece['mean_us']:>9.1f} us {piece['share']:>6.0%}")
    print(f"\nbatch 1, one client, {args.seconds:g} s per stage; written to {out}")
    return report
