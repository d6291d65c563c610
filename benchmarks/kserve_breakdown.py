"""Where KServe's V2 REST latency goes: the same model and request, one layer at a time, side by side.

    make bench TOOL=kserve-breakdown                      # = .venv-kserve/bin/python -m benchmarks kserve-breakdown
    .venv-kserve/bin/python -m benchmarks kserve-breakdown --seconds 5 --frameworks torch

Per framework, one keep-alive client sends the same V2 JSON request (one test image) sequentially to
each stage, started here on free loopback ports and stopped after it:
  model             the Predictor in this process (no request at all)
  model + V2 JSON   the same, plus what a server does with the body: JSON decode, the V2 and spec
                    checks (serving/v2/protocol.py), the answer encoded (still in this process)
  HTTP round trip   a bare ASGI app on uvicorn that answers {} (the client, the loopback, uvicorn)
  floor             the bare ASGI app on uvicorn doing "model + V2 JSON" (benchmarks/kserve_floor.py)
  kserve            KServe's ModelServer as `make serve` runs it (serving/kserve/server.py)
  kserve V1 REST    the same server, the same image as V1's {"instances": [...]}
  kserve + logging  the same with kserve's default per-request access and latency lines
  kserve, 1 torch thread   (PyTorch only) --torch-threads 1
Each stage's p50/p99 in ms and its ratio to "model". Writes artifacts/bench/kserve-breakdown.json
(benchmarks/results.py) and prints a table. Compare stages of one run, not runs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import requests

from benchmarks import machine, results, timing
from core import paths
from core import spec as specs
from core.ports import free_ports
from training import data

FRAMEWORKS = ("torch", "tensorflow")


def servers(framework: str) -> dict:
    """Stage -> the command line after `python -m` that starts it ({port}, {grpc} filled in later)."""
    floor = ["benchmarks", "kserve-floor", "--framework", framework, "--port", "{port}"]
    kserve = ["serving.kserve.server", "--framework", framework, "--http-port", "{port}", "--grpc-port", "{grpc}"]
    stages = {"HTTP round trip": [*floor, "--echo"], "floor": floor, "kserve": kserve,
              "kserve + logging": [*kserve, "--request-logging"]}
    if framework == "torch":
        stages["kserve, 1 torch thread"] = [*kserve, "--torch-threads", "1"]
    return stages


def started(module_args: list[str], root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """A stage's server on free loopback ports, ready; (process, its /v2/models/<model>/infer URL base)."""
    port, grpc = free_ports(2)
    args = [a.format(port=port, grpc=grpc) for a in module_args] + ["--artifacts", str(root), "--host", "127.0.0.1"]
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("ab"), stderr=subprocess.STDOUT,
                               cwd=paths.REPO_ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(args[:3])} exited with {process.returncode}; see {log}")
        try:
            if requests.get(f"{base}/v2/health/ready", timeout=1).status_code == 200:
                return process, base
        except requests.ConnectionError:
            pass
        time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"{' '.join(args[:3])} was not ready within 120 s; see {log}")


def in_process(framework: str, root: Path, body: bytes, seconds: float, warmup: int) -> dict:
    """The "model" and "model + V2 JSON" stages, timed in this process on the served model."""
    from serving.kserve.model import SpecModel
    from serving.v2 import protocol

    model = SpecModel(root, framework)
    model.load()
    spec = model.spec
    (one,) = json.loads(body)["inputs"]
    batch = protocol.input_batch(spec, one["name"], one["datatype"], one["shape"], one["data"])

    def with_json():  # what benchmarks/kserve_floor.py does per request
        (got,) = json.loads(body)["inputs"]
        checked = protocol.input_batch(spec, got["name"], got["datatype"], got["shape"], got["data"])
        out = model.predictor.predict(checked)
        return json.dumps({"outputs": [{"name": spec.output_name, "datatype": "FP32", "shape": list(out.shape),
                                        "data": out.astype(np.float32).ravel().tolist()}]})

    return {"model": timing.time_for(lambda: model.predictor.predict(batch), seconds, warmup)[0],
            "model + V2 JSON": timing.time_for(with_json, seconds, warmup)[0]}


def post(session: requests.Session, url: str, body: bytes) -> None:
    answer = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    answer.raise_for_status()


def measure_framework(framework: str, root: Path, seconds: float, warmup: int, log: Path) -> list[dict]:
    spec = specs.load(root)
    image = data.load_split(paths.split_path(root))["test"].x[:1].astype(np.float32)
    body = json.dumps({"inputs": [{"name": spec.input_name, "shape": list(image.shape), "datatype": "FP32",
                                   "data": image.ravel().tolist()}]}).encode()
    samples = in_process(framework, root, body, seconds, warmup)
    for stage, module_args in servers(framework).items():
        print(f"breakdown: {framework}: {stage} ...", flush=True)
        process, base = started(module_args, root, log)
        try:
            session = requests.Session()
            v2 = (f"{base}/v2/models/{spec.model_name}/infer", body)
            samples[stage] = timing.time_for(lambda session=session, v2=v2: post(session, *v2), seconds, warmup)[0]
            if stage == "kserve":
                v1 = (f"{base}/v1/models/{spec.model_name}:predict", json.dumps({"instances": image.tolist()}).encode())
                samples["kserve V1 REST"] = timing.time_for(lambda session=session, v1=v1: post(session, *v1),
                                                             seconds, warmup)[0]
        finally:
            process.terminate()
            process.wait(30)
    model_p50 = float(np.percentile(samples["model"], 50))
    rows = []
    for stage, values in samples.items():
        summary = timing.summarize(values, "ms", digits=4)
        rows.append({"stage": stage, "framework": framework, **summary,
                     "x_model": round(summary["p50_ms"] / (model_p50 * 1e3), 1)})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured calls per stage, seconds (default: 3)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured calls first (default: 50)")
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    args = parser.parse_args(argv)
    root = paths.artifacts_dir().resolve()
    log = results.bench_dir(root) / "kserve-breakdown.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    rows = [row for framework in args.frameworks
            for row in measure_framework(framework, root, args.seconds, args.warmup, log)]
    report = {"command": results.command(__name__, argv), "batch": 1, "client_threads": 1,
              "seconds_per_stage": args.seconds, "machine": machine.describe(), "results": rows}
    out = results.write(report, root, "kserve-breakdown")
    print(f"\n{'framework':<12}{'stage':<26}{'p50 ms':>9}{'p99 ms':>9}{'x model':>9}")
    for r in rows:
        print(f"{r['framework']:<12}{r['stage']:<26}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{r['x_model']:>9.1f}")
    print(f"\nbatch 1, one keep-alive client, {args.seconds:g} s per stage; written to {out} (servers' log: {log})")
