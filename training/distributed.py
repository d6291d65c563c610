"""Data-parallel training on each framework's own engine, as N local processes on 127.0.0.1.

    make train-distributed WORKERS=2                 # = python -m training.distributed --workers 2
    python -m training.distributed --workers 2 --epochs 5
    python -m training.distributed --workers 2 --frameworks tensorflow --port 23456

PyTorch: DistributedDataParallel (gloo) under torchrun, c10d rendezvous on 127.0.0.1:<port>
(training/ddp_torch.py). TensorFlow: MultiWorkerMirroredStrategy, one process per worker with its
own TF_CONFIG on consecutive ports after it (training/mwms_keras.py). Both read the same saved
split; every worker trains on its own shard, with `--batch-size` examples per worker per step
(the global batch is that x WORKERS) and the learning rate x WORKERS. The ports are free ones
unless `--port` names the first. Each worker gets cores / WORKERS threads.

The result is a normal trained model, written exactly as `make train` writes it (training.train's
`finish`): checkpoint, Keras file, spec, manifest entries, the twin check and metrics.json (with a
`distributed` entry: workers, global batch, learning rate), so every export and target works on it.
With `--frameworks` naming one framework, its files stay in <artifacts>/run/distributed/ and
nothing else is written. Across machines, start the workers there yourself (README: the same
torchrun and TF_CONFIG commands with the machines' addresses), then `--collect` finishes the model.

Bad set-ups stop with a message, never a hang: WORKERS < 1, a port in use (checked before any
process starts), a worker that dies (the others are stopped within `--grace` seconds and the rank
is named), and a run past `--timeout` seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from core import paths
from core.spec import Spec
from training import data
from training.spec import ModelConfig, load_spec

FRAMEWORKS = ("torch", "tensorflow")
HOST = "127.0.0.1"


class LaunchError(RuntimeError):
    """A distributed run that cannot start or did not finish; the message says why and what to do."""


def stage_dir(root: Path) -> Path:
    """Where the workers leave their model, metrics and pid files before the run is finished."""
    return root / "run" / "distributed"


# ---- what the workers share (training/ddp_torch.py, training/mwms_keras.py) ----------------------

def worker_parser(description: str) -> argparse.ArgumentParser:
    from training import train

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(parser)
    parser.add_argument("--stage", type=Path, required=True, help="folder for the chief's model and metrics")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of this worker (default: 1)")
    parser.add_argument("--backend", default="gloo", help="torch.distributed backend (default: gloo; nccl on GPUs)")
    parser.add_argument("--collective-timeout", type=int, default=120,
                        help="seconds a collective waits for the other workers (default: 120)")
    return parser


def worker_inputs(args) -> tuple[Path, ModelConfig, dict, Spec]:
    """The artifacts folder, config, split and spec a worker trains with (made here if missing, as on
    another host: the split and the spec are deterministic by data and seed)."""
    from training import train

    root = (args.artifacts or paths.artifacts_dir()).resolve()
    if paths.split_path(root).exists() and paths.spec_path(root).exists():
        return root, train.config_of(args), data.load_split(paths.split_path(root)), load_spec(paths.spec_path(root))
    return train.prepare(args)


def worker_hyperparameters(args) -> dict:
    from training import train

    return train.hyperparameters(args)


def write_pid(stage: Path, framework: str, rank: int) -> None:
    stage.mkdir(parents=True, exist_ok=True)
    (stage / f"{framework}-rank{rank}.pid").write_text(str(os.getpid()))


def save_metrics(stage: Path, framework: str, metrics: dict, world: int) -> None:
    (stage / f"{framework}-metrics.json").write_text(json.dumps({**metrics, "workers": world}, indent=2) + "\n")


# ---- the launcher ------------------------------------------------------------------------------

def check_free(port: int) -> None:
    """Stop before anything starts when a port is taken (a worker would fail later, less clearly)."""
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError as error:
            raise LaunchError(f"port {HOST}:{port} is in use ({error.strerror}): choose another with --port, "
                              "or leave --port out to use free ports") from error


def choose_ports(first: int | None, count: int) -> list[int]:
    from core.ports import free_ports

    ports = list(range(first, first + count)) if first else free_ports(count, HOST)
    for port in ports:
        check_free(port)
    return ports


def threads_per_worker(workers: int) -> int:
    return max(1, len(os.sched_getaffinity(0)) // workers)


def passthrough(args) -> list[str]:
    """The training flags, as every worker takes them."""
    flags = ["--epochs", str(args.epochs), "--width", str(args.width), "--arch", args.arch, "--seed", str(args.seed),
             "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--artifacts", str(args.root),
             "--stage", str(stage_dir(args.root)), "--threads", str(threads_per_worker(args.workers)),
             "--collective-timeout", str(args.collective_timeout)]
    if args.value_min is not None:
        flags += ["--value-min", str(args.value_min), "--value-max", str(args.value_max)]
    flags.append("--augment" if args.augment else "--no-augment")  # as resolved here: every worker the same
    return flags + (["--data", str(args.data)] if args.data else [])


def torch_commands(args, ports: list[int]) -> list[tuple[list[str], dict]]:
    """One torchrun: it starts the ranks, and stops the others when one fails (no restarts)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(args.workers),
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{HOST}:{ports[0]}", "--rdzv-id", "digits",
               "--max-restarts", "0", "--local-addr", HOST, "-m", "training.ddp_torch", *passthrough(args)]
    return [(command, {"OMP_NUM_THREADS": str(threads_per_worker(args.workers))})]


def tensorflow_commands(args, ports: list[int]) -> list[tuple[list[str], dict]]:
    """One process per worker, each told the whole cluster and its own index (TF_CONFIG)."""
    cluster = {"worker": [f"{HOST}:{port}" for port in ports]}
    return [([sys.executable, "-m", "training.mwms_keras", *passthrough(args)],
             {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
              "OMP_NUM_THREADS": str(threads_per_worker(args.workers))})
            for index in range(args.workers)]


class Group:
    """Child processes (each in its own process group), their output echoed live and kept for errors."""

    def __init__(self, commands: list[tuple[list[str], dict]]):
        self.output = [bytearray() for _ in commands]
        self.processes, self.readers = [], []
        for number, (command, env) in enumerate(commands):
            process = subprocess.Popen(command, cwd=paths.REPO_ROOT, env={**os.environ, **env}, start_new_session=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.processes.append(process)
            reader = threading.Thread(target=self._echo, args=(process, self.output[number]), daemon=True)
            reader.start()
            self.readers.append(reader)

    @staticmethod
    def _echo(process, kept: bytearray) -> None:
        while chunk := os.read(process.stdout.fileno(), 4096):  # chunks, not lines: progress bars stay live
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            kept.extend(chunk)

    def wait(self, timeout: float) -> tuple[int, int] | None:
        """None when every process exited 0; else (index, exit code) of the first that failed."""
        deadline = time.monotonic() + timeout
        while True:
            codes = [process.poll() for process in self.processes]
            failed = [(number, code) for number, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                return failed[0]
            if all(code == 0 for code in codes):
                return None
            if time.monotonic() > deadline:
                return -1, None
            time.sleep(0.2)

    def stop(self, grace: float) -> None:
        """SIGTERM every process group still running; SIGKILL what is left after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            alive = [p for p in self.processes if p.poll() is None]
            for process in alive:
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
                time.sleep(0.1)
        for reader in self.readers:
            reader.join(timeout=2)

    def text(self, number: int) -> str:
        return self.output[number].decode(errors="replace")


def torchrun_failed_rank(output: str) -> int | None:
    """The rank torchrun's failure summary names as the root cause (its first observed failure)."""
    found = re.search(r"Root Cause.*?rank\s*:\s*(\d+)", output, re.S)
    return int(found.group(1)) if found else None


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    if code >= 128 and code - 128 in signal.Signals._value2member_map_:
        return f"exit code {code}, i.e. killed by {signal.Signals(code - 128).name}"
    return f"exit code {code}"


def run_framework(framework: str, args) -> None:
    """Start the workers of one framework and wait for them; a failure names the rank and stops the rest."""
    stage = stage_dir(args.root)
    for old in stage.glob(f"{framework}*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    count = 1 if framework == "torch" else args.workers
    ports = choose_ports(args.port if framework == "torch" or not args.port else args.port + 1, count)
    commands = (torch_commands if framework == "torch" else tensorflow_commands)(args, ports)
    print(f"\n== {framework}: {args.workers} worker(s) on {', '.join(f'{HOST}:{p}' for p in ports)}", flush=True)
    group = Group(commands)
    try:
        result = group.wait(args.timeout)
    except KeyboardInterrupt:
        group.stop(args.grace)
        raise
    if result is None:
        return
    number, code = result
    began = time.monotonic()
    group.stop(args.grace)
    stopped = f"the other workers were stopped in {time.monotonic() - began:.1f} s"
    if code is None:
        raise LaunchError(f"{framework}: no result after --timeout {args.timeout:g} s; {stopped}")
    if framework == "torch":
        rank = torchrun_failed_rank(group.text(0))
        who = f"rank {rank}" if rank is not None else "a rank (see torchrun's summary above)"
        raise LaunchError(f"torch: {who} of {args.workers} failed; torchrun stopped the other ranks and exited "
                          f"with {describe_exit(code)}")
    raise LaunchError(f"tensorflow: worker rank {number} of {args.workers} failed ({describe_exit(code)}); {stopped}")


def collect(args, spec: dict, splits: dict) -> dict:
    """The chiefs' models and metrics, finished like `make train`'s (files, manifest, twin check, metrics.json)."""
    import keras

    from training import train
    from training.model_torch import load_checkpoint

    stage = stage_dir(args.root)
    trained, workers = {}, {}
    for framework, model_file in (("torch", "torch.pt"), ("tensorflow", "tensorflow.keras")):
        if not (stage / f"{framework}-metrics.json").exists():
            raise SystemExit(f"error: {stage / f'{framework}-metrics.json'} is missing: the {framework} run did not "
                             "finish (its chief writes it)")
        metrics = json.loads((stage / f"{framework}-metrics.json").read_text())
        workers[framework] = metrics.pop("workers")
        path = stage / model_file
        model = load_checkpoint(path)[0] if framework == "torch" else keras.models.load_model(path)
        trained[framework] = (model, metrics)
    count = workers["torch"]  # as started (the same for both frameworks unless run apart)
    distributed = {"workers": count, "global_batch": args.batch_size * count, "learning_rate": args.lr * count,
                   "workers_by_framework": workers,
                   "engines": {"torch": "DDP (gloo) under torchrun", "tensorflow": "MultiWorkerMirroredStrategy"}}
    return train.finish(args.root, spec, splits, trained, train.config_of(args), distributed=distributed)


def parse_args(argv=None) -> argparse.Namespace:
    from training import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="processes per framework (default: 2)")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS),
                        help="which to train (default: both; with one, its files stay in run/distributed/)")
    parser.add_argument("--port", type=int, help="first port (torch rendezvous; TensorFlow workers take the next "
                        "WORKERS); default: free ports")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds a framework's run may take (default: 1800)")
    parser.add_argument("--grace", type=float, default=10,
                        help="seconds the other workers get to stop after one fails (default: 10)")
    parser.add_argument("--collective-timeout", type=int, default=120,
                        help="seconds a worker waits in a collective for the others (default: 120)")
    parser.add_argument("--collect", action="store_true",
                        help="start nothing: finish the model the workers (e.g. on several machines) left in "
                             "<artifacts>/run/distributed/")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"WORKERS (--workers) must be at least 1, got {args.workers}")
    train.check_arguments(parser, args)
    if args.port is not None and not 1024 <= args.port <= 65535 - args.workers:
        parser.error(f"--port must lie in 1024..{65535 - args.workers}, got {args.port}")
    return args


def main(argv=None) -> dict | None:
    from training import train

    args = parse_args(argv)
    args.root, config, splits, spec = train.prepare(args)
    train.require_network(args.arch)
    if args.collect:
        return collect(args, spec, splits)
    started = time.monotonic()
    try:
        for framework in args.frameworks:
            run_framework(framework, args)
    except LaunchError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"\ndistributed training: {time.monotonic() - started:.0f} s for {', '.join(args.frameworks)} "
          f"on {args.workers} worker(s) each", flush=True)
    if set(args.frameworks) != set(FRAMEWORKS):
        print(f"only {', '.join(args.frameworks)} trained: its files are in {stage_dir(args.root)}; "
              "train both to get a finished model")
        return None
    return collect(args, spec, splits)


if __name__ == "__main__":
    main()
