"""The benchmarks' native load generator: NVIDIA's perf_analyzer, for loads a Python client cannot offer.

    make setup                       # .venv-perf (requirements/perf.txt) and Debian's libb64-0d
    python -m benchmarks native --check    # the binary runs here: its version
    python -m benchmarks native --target tfserving-grpc --concurrency 64   # needs `make serve`

    result = native.run("tfserving-grpc", root, endpoints, concurrency=64, seconds=3)

A Python client on the same two cores as the servers cannot send 2,000 gRPC calls a second and time
them: its own CPU becomes the limit (benchmarks/openloop.py flags such figures `generator_limited`).
perf_analyzer, the field's standard generator, is a C++ binary: the `tritonclient==2.41.0` wheel
carries it (.venv-perf/bin/perf_analyzer); it links the CUDA runtime even without a GPU, so
`libcudart.so.12` from the pip package `nvidia-cuda-runtime-cu12` goes on LD_LIBRARY_PATH here.

It keeps `--concurrency` requests in flight (closed loop, synchronous: one thread per request in
flight), sending the spec's test images (TorchServe; the TF server gets the first, see input_data), so
every answer is a real one, and measures in windows of `--seconds` until three agree within `--stability` percent
(at most --max-trials windows; on a shared machine a generous stability is the honest choice). Its
figures come from its CSV report (`-f`), read with the csv module: infer/s and client p50/p90/p95/p99;
its --profile-export-file JSON gives the count of requests timed. A request that fails stops it:
the run raises NativeError with its last lines. perf_analyzer does not read the answers: a wrong one
is not caught here (the project's clients and tests check answers). Targets (core/registry.py) it
speaks: `SERVICES`.

The generator's own CPU over the run (the child's rusage) and whether it was the limit are reported
the load engine's way (openloop.generator_figures: >= 90% of the cores it may use), so a figure says
when it measures the client too, whichever generator made it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, openloop, results
from core import paths

VENV = paths.REPO_ROOT / ".venv-perf"
BINARY = VENV / "bin" / "perf_analyzer"
# Served target -> (perf_analyzer's --service-kind, its -i protocol): TF Serving's gRPC Predict API
# (with GetModelMetadata for the signature), TorchServe's REST predictions API (the body read from a
# file, the inference key as a header). KServe's V2 servers are not here: perf_analyzer asks a V2
# server for Triton's model configuration first, an extension KServe does not serve ("Method not found").
SERVICES = {"tfserving-grpc": ("tfserving", "grpc"), "torchserve-rest": ("torchserve", "http")}
STABILITY_PERCENT = 50  # three windows within this of each other; noise from other work on the cores is large
MAX_TRIALS = 10


class NativeError(RuntimeError):
    """perf_analyzer is missing, cannot run, or stopped on a failed request; the message says which."""


def environment() -> dict:
    """This process's environment with the CUDA runtime's pip folder on LD_LIBRARY_PATH (perf_analyzer links it)."""
    found = sorted(VENV.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
    if not BINARY.exists() or not found:
        raise NativeError(f"{BINARY.relative_to(paths.REPO_ROOT)} is not installed: run `make setup`")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(found[0]), env.get("LD_LIBRARY_PATH")]))
    return env


def version() -> str:
    """perf_analyzer's version line, or NativeError naming what is missing (`make setup`)."""
    try:
        done = subprocess.run([str(BINARY), "--version"], env=environment(), capture_output=True, text=True, timeout=30)
    except OSError as error:
        raise NativeError(f"{BINARY} cannot run: {error}") from error
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "error while loading shared libraries" in text:
        raise NativeError(f"{BINARY} cannot run (exit {done.returncode}): {text[-300:]}; run `make setup`")
    return text.splitlines()[-1] if text else "perf_analyzer"


def input_data(target: str, images: np.ndarray, input_name: str, folder: Path) -> list[str]:
    """perf_analyzer's input flags, with the files they name written in `folder`.

    TorchServe: a JSON --input-data file, one step per image, each naming a file that holds the
    request body the project's REST client sends, {"instances": [image]}. TF Serving: a folder holding
    one file named after the input with the first image's float32 bytes, and --shape (1, *item shape).
    perf_analyzer 2.41's TF Serving client sends a JSON file's values as a tensor with no values at all
    (its shape only; the server would see zeros), while raw files reach the wire whole.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if SERVICES.get(target, ("",))[0] == "torchserve":
        steps = []
        for number, image in enumerate(images):
            body = folder / f"request-{number}.json"
            body.write_text(json.dumps({"instances": [image.tolist()]}))
            steps.append({"TORCHSERVE_INPUT": [str(body)]})
        path = folder / "input.json"
        path.write_text(json.dumps({"data": steps}))
        return ["--input-data", str(path)]
    raw = folder / "input"
    raw.mkdir(exist_ok=True)
    (raw / input_name).write_bytes(np.ascontiguousarray(images[0], dtype="<f4").tobytes())
    return ["--input-data", str(raw), "--shape", f"{input_name}:{','.join(map(str, (1, *images[0].shape)))}"]


def command(target: str, address: str, model: str, concurrency: int, seconds: float, data: list[str],
            csv_path: Path, export: Path, stability: float = STABILITY_PERCENT, max_trials: int = MAX_TRIALS,
            headers: dict | None = None) -> list[str]:
    """The perf_analyzer command line for `concurrency` requests in flight on `target` at `address`
    (host:port), with HTTP `headers` (TorchServe's key)."""
    if target not in SERVICES:
        raise NativeError(f"perf_analyzer does not speak {target}; it speaks {', '.join(SERVICES)}")
    kind, protocol = SERVICES[target]
    return [str(BINARY), f"--service-kind={kind}", "-i", protocol, "-u", address, "-m", model,
            "--concurrency-range", str(concurrency), "--measurement-interval", str(int(seconds * 1000)),
            "--stability-percentage", f"{stability:g}", "--max-trials", str(max_trials), *data,
            "-f", str(csv_path), "--profile-export-file", str(export),
            *[part for name, value in (headers or {}).items() for part in ("-H", f"{name}: {value}")]]


def parse_csv(path: Path) -> dict:
    """The last row of perf_analyzer's CSV report: concurrency, infer/s, client p50/p90/p95/p99 (ms)."""
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise NativeError(f"{path}: perf_analyzer wrote no measurement")
    row = rows[-1]
    out = {"concurrency": int(row["Concurrency"]), "infer_per_s": round(float(row["Inferences/Second"]), 1)}
    for percentile in (50, 90, 95, 99):
        out[f"p{percentile}_ms"] = round(float(row[f"p{percentile} latency"]) / 1000, 3)  # microseconds in the CSV
    return out


def count_requests(path: Path) -> int:
    """How many requests the profile export records (the measured windows, every experiment)."""
    export = json.loads(Path(path).read_text())
    return sum(len(experiment["requests"]) for experiment in export["experiments"])


def headers(target: str, root: Path) -> dict:
    """HTTP headers a target needs: TorchServe's inference key (from the key file its runner keeps)."""
    if SERVICES[target][0] != "torchserve":
        return {}
    from serving.torchserve.client import read_token

    return {"Authorization": f"Bearer {read_token(root, 'inference')}"}


def address_of(target: str, root: Path, endpoints) -> str:
    """host:port of a served target (core/registry.py base_address without its scheme)."""
    from core import registry

    base = registry.base_address(target, root, endpoints)
    if base is None:
        raise NativeError(f"{target} is not a served target")
    return re.sub(r"^[a-z]+://", "", base)


def run(target: str, root: Path, endpoints, concurrency: int = 64, seconds: float = 3.0, images: int = 64,
        stability: float = STABILITY_PERCENT, max_trials: int = MAX_TRIALS, progress=print) -> dict:
    """`concurrency` requests in flight on `target` until perf_analyzer's windows agree; its figures."""
    from core import spec as specs

    spec = specs.load(root)
    env = environment()
    with tempfile.TemporaryDirectory(prefix="perf-analyzer-") as folder:
        folder = Path(folder)
        data = input_data(target, openloop.test_images(root, images), spec.input_name, folder / "input")
        argv = command(target, address_of(target, root, endpoints), spec.model_name, concurrency, seconds, data,
                       folder / "report.csv", folder / "export.json", stability, max_trials, headers(target, root))
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in process.stdout:  # its progress, as it goes (one line per window with -v; a summary without)
            lines.append(line.rstrip())
            if line.startswith(("Request concurrency", "    Throughput", "    p99", "Failed to obtain", "Thread")):
                progress(f"    perf_analyzer: {line.strip()}")
        process.wait()
        elapsed = time.perf_counter() - began
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        failed = [line for line in lines if "had error" in line]  # a request that failed ends its thread
        if process.returncode != 0 or failed or not (folder / "report.csv").exists():
            raise NativeError(f"perf_analyzer on {target} failed (exit {process.returncode}): "
                              + " | ".join(failed[:1] + lines[-4:]))
        figures = parse_csv(folder / "report.csv")
        measured = count_requests(folder / "export.json")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    generator = openloop.generator_figures(cpu, elapsed, None)
    return {"target": target, "generator": "perf_analyzer", "generator_version": version(),
            "generator_command": re.sub(r"Bearer \S+", "Bearer <key>",
                                        " ".join(argv[1:]).replace(str(folder), "<tmp>")),
            **figures,
            "requests_measured": measured, "window_seconds": seconds, "seconds": round(elapsed, 1),
            "generator_cpu": generator, "generator_limited": generator["limited"]}


def main(argv=None) -> dict | None:
    from serving import endpoints as endpoints_mod

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that perf_analyzer runs here")
    parser.add_argument("--target", default="tfserving-grpc", choices=list(SERVICES), help="served target")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default: 64)")
    parser.add_argument("--seconds", type=float, default=3.0, help="each measurement window, seconds (default: 3)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--out", type=Path, help="JSON result (default: <artifacts>/bench/native-<target>.json)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            print(f"  perf_analyzer: {version()}")
            return None
        root = (args.artifacts or paths.artifacts_dir()).resolve()
        print(f"perf_analyzer: {args.concurrency} requests in flight on {args.target} (`make serve`'s), "
              f"{args.seconds:g} s windows", flush=True)
        result = {"command": results.command(__name__, argv), "machine": machine.describe(),
                  **run(args.target, root, endpoints_mod.resolve(root=root), args.concurrency, args.seconds)}
    except NativeError as error:
        raise SystemExit(f"error: {error}") from None
    out = results.save(result, args.out) if args.out else results.write(result, root, f"native-{args.target}")
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result
