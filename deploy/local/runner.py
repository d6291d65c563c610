"""Start the model servers and the demo in the background, wait until they answer, stop them again.

    python -m deploy.local.runner start     # make serve: TorchServe + TF Serving (+ the demo page), idempotent
    python -m deploy.local.runner status    # which servers run, and where
    python -m deploy.local.runner stop      # make stop / make down: only the processes recorded at start
    python -m deploy.local.runner start --settings latency   # a measured profile (deploy/local/settings.py)
    python -m deploy.local.runner start --cpus 1,2           # servers only on those cores (taskset -c)

The demo page's server ("web", python -m web.tfjs.serve) starts only when the page was built whole
(`make export-web`; one that failed midway does not count); without it the runner says so and
starts the two model servers. A page that fails to come up never takes the model servers down:
they keep running and `start` exits non-zero naming the page.

Each server gets a folder `artifacts/run/<server>/` holding its pid file, its log, its rendered
config and (TorchServe) its token key file. `start` verifies the artifacts against the manifest,
launches what is not already running in its own process group (and restarts a running server whose
spec or model changed since it started, as `serves.json` there records: `make deploy-all DATA=...`
beside `make serve`), waits until each answers a
readiness check, and prints the endpoints; when a server does not come up it prints the tail of
its log, stops what it started and exits non-zero. `stop` signals only process groups whose pid
it recorded (and whose command line still matches), and their descendants that left the group (Ray
starts its workers in sessions of their own) by pid and start time, so nothing else on the machine is
touched.
Addresses come from serving/endpoints.py (DIGITS_*_PORT, DIGITS_SERVING_HOST).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core import manifest, paths, selection
from core import servers as table
from core import spec as specs
from deploy.local import servers
from deploy.local import settings as settings_mod
from serving import endpoints as endpoints_mod

# Seconds a restarted server's ports may take to be let go by the processes of the one stopped before it.
RESTART_GRACE = 15.0


class StartError(RuntimeError):
    """A server did not come up; the message holds the tail of its log."""


class PageError(StartError):
    """The demo page's server did not come up; the model servers were left running."""


@dataclass
class Recorded:
    pid: int
    marker: str  # a string the process's command line contains (for reading; identity is the start time)
    started: str = ""  # the kernel's start time of that process (/proc/<pid>/stat): pid + start time is unique


def run_dir(name: str, root: Path) -> Path:
    return root / "run" / name


def read_pid(folder: Path) -> Recorded | None:
    """The recorded process if it still runs (and is still ours), else None (stale files removed).

    A process is ours when the pid has the start time recorded at launch: a pid reused by another
    program has another one, and a process still inside exec (empty command line) already has it.
    """
    pid_file = folder / "server.pid"
    try:
        pid_text, marker, started = (pid_file.read_text().split("\n") + ["", ""])[:3]
        recorded = Recorded(int(pid_text), marker.strip(), started.strip())
    except FileNotFoundError:
        return None
    except ValueError:  # not a pid file the runner wrote (it writes them whole, by rename)
        pid_file.unlink(missing_ok=True)
        return None
    now_started, state = _stat(recorded.pid)
    if recorded.started and now_started == recorded.started and state not in ("Z", "X"):
        return recorded
    pid_file.unlink(missing_ok=True)
    return None


def web_running(root: Path) -> bool:
    """Whether the demo page's server (`make serve`, `make deploy-all`) runs over `root`."""
    return read_pid(run_dir("web", root)) is not None


def _stat(pid: int) -> tuple[str, str]:
    """(start time in clock ticks since boot, state letter) of a process; ("", "") when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "", ""
    return fields[19], fields[0]  # fields 22 and 3 of proc(5), counted after the command name


def log_tail(folder: Path, lines: int = 40) -> str:
    log = folder / "server.log"
    if not log.exists():
        return "(no log written)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def check_ports_free(server: servers.Server, host: str, grace: float = 0.0) -> None:
    """StartError naming the port when another program already listens on one of the server's ports.

    Checked before launching: otherwise a readiness check could be answered by that other program. `grace`
    (seconds): how long a port may take to be let go (the server itself was just stopped: a process of its
    tree may still be closing).
    """
    deadline = time.monotonic() + grace
    while True:
        try:
            return _ports_free(server, host)
        except StartError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _ports_free(server: servers.Server, host: str) -> None:
    for name, port in server.ports.items():
        with socket.socket() as probe:
            # As the servers bind: a port left in TIME_WAIT by a stopped server is free, a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                raise StartError(f"{server.name}: port {port} on {host} ({name}) is already in use by another "
                                 f"program: stop it, or move the port with {endpoints_mod.port_variable(name)}="
                                 "<free port>") from None


def pinned(command: list, cpus=None) -> list:
    """`command` under `taskset -c <cpus>` (it and every process it starts stay on those cores), or as is."""
    if not cpus:
        return list(command)
    return ["taskset", "-c", ",".join(str(cpu) for cpu in sorted(cpus)), *command]


def launch(server: servers.Server, folder: Path, cpus=None) -> Recorded:
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **server.env}
    command = pinned(server.command, cpus)
    with open(folder / "server.log", "ab") as log:
        log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(command)}\n".encode())
        log.flush()
        # A session of its own: `stop` signals the whole group (TorchServe's Java and its workers).
        # taskset execs the server in the same process, so the pid and its start time are the server's.
        process = subprocess.Popen(command, cwd=server.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    started, _ = _stat(process.pid)  # Popen returns once exec succeeded: the pid is the server's own
    recorded = Recorded(process.pid, server.marker, started)
    paths.write_atomic(folder / "server.pid", f"{recorded.pid}\n{recorded.marker}\n{recorded.started}\n")
    return recorded


def wait_ready(server: servers.Server, folder: Path, recorded: Recorded, timeout: float) -> float:
    """Seconds until the readiness check passed; StartError when the process dies or time runs out."""
    outcome = wait_all([(server, folder, recorded, timeout)])[server.name]
    if isinstance(outcome, StartError):
        raise outcome
    return outcome


def wait_all(waiting: list) -> dict:
    """Wait for every (server, folder, recorded, timeout) at once; {name: seconds until it answered, or the
    StartError that says why it never did (its process died, or its time ran out: with its log's tail)}."""
    start, outcomes = time.monotonic(), {}
    pending = list(waiting)
    while pending:
        for item in list(pending):
            server, folder, recorded, timeout = item
            elapsed = time.monotonic() - start
            if read_pid(folder) is None:
                outcomes[server.name] = StartError(f"{server.name} exited during start-up; last lines of "
                                                   f"{folder / 'server.log'}:\n{log_tail(folder)}")
            elif server.ready():
                outcomes[server.name] = time.monotonic() - start
            elif elapsed >= timeout:
                outcomes[server.name] = StartError(f"{server.name} not ready after {timeout:.0f} s; last lines of "
                                                   f"{folder / 'server.log'}:\n{log_tail(folder)}")
            else:
                continue
            pending.remove(item)
        if pending:
            time.sleep(0.5)
    return outcomes


def start(root: Path, endpoints=None, timeout: float | None = None,
          settings: settings_mod.ServerSettings | None = None, only: tuple | None = None, cpus=None,
          keep_going: bool = False, without: tuple = ()) -> dict:
    """Bring the servers up (skipping running ones); returns {server: seconds to ready}.

    The servers are the rows of core/servers.py, in their order. `settings` (default: the checked-in
    configs) changes server knobs for this run only; a variant with other settings needs its own root (run
    folder) and endpoints. `only` (server names) starts just those (the page's server only when named: the
    settings search measures one server at a time). `cpus` (core numbers) pins the servers it starts to
    those cores (a server already running keeps its own). `without` (server names) leaves those out and
    starts the rest, the page included. `timeout` (seconds) replaces each row's own readiness time-out.
    `keep_going` (make deploy-all): a model server whose artifacts are not built is not served, with the
    reason printed, and the others still start.
    """
    endpoints = (endpoints or endpoints_mod.resolve(root=root)).for_root(root)  # the model name is the spec's
    settings = settings or settings_mod.preset("default")
    names = [name for name in table.SERVERS if name not in without and (only is None or name in only)]
    pages = [name for name in names if table.SERVERS[name].optional]
    if pages and only is None and not servers.web_built(root):  # the page is served once built whole
        print(f"{', '.join(pages)}: the demo page is not built under {root} (make export-web): not served")
        names = [name for name in names if name not in pages]
    plan = [servers.build(name, root, endpoints, settings) for name in names]
    if not plan:
        print("serve: no server among the picked targets")
    started, times, failures, waiting = [], {}, {}, []
    try:
        # Every server is launched first, then all are waited for together: they come up side by side.
        for server in plan:
            try:
                recorded = _launch(server, root, endpoints, settings, started, cpus)
            except (StartError, servers.PrepareError, OSError) as error:
                optional = table.SERVERS[server.name].optional
                if not optional and keep_going and isinstance(error, servers.PrepareError):
                    print(f"{server.name}: not served: {str(error).splitlines()[0]}")  # its artifacts are not built
                    continue
                if not optional:
                    raise
                failures[server.name] = error
                continue
            waiting.append((server, run_dir(server.name, root), recorded,
                            timeout or table.SERVERS[server.name].start_timeout))
        for name, outcome in wait_all(waiting).items():
            if isinstance(outcome, StartError):
                failures[name] = outcome
            else:
                times[name] = outcome
                if any(server.name == name for server in started):
                    print(f"{name}: ready after {outcome:.1f} s")
        fatal = [name for name in failures if name not in servers.OPTIONAL]
        if fatal:
            raise failures[fatal[0]]
    except Exception:
        for server in started:
            stop_one(server.name, root)
        raise
    page_error = None
    for name, error in failures.items():  # the page is optional: its failure never takes the model servers down
        if any(server.name == name for server in started):
            stop_one(name, root)
        page_error = error
        print(f"{name}: not served: {str(error).splitlines()[0]}")
    for server in plan:
        if server.name in times:
            print(f"\n{server.name} ({server.describe}):")
            for line in server.endpoint_lines:
                print(f"  {line}")
    if page_error is not None:
        raise PageError(f"the demo page could not be served, the model servers keep running: {page_error}")
    return times


def served_model(server: servers.Server, root: Path) -> dict:
    """What `server` serves from `root` now: the sha256 of spec.json and of each file it loads at start."""
    entries = manifest.load(root)
    spec = paths.spec_path(root)
    return {"spec.json": manifest.sha256_of(spec) if spec.exists() else "missing",
            **{artifact_id: entries.get(artifact_id, {}).get("sha256", "missing") for artifact_id in server.serves}}


def model_changed(server: servers.Server, root: Path) -> str | None:
    """Why the running `server` serves another model than `root` holds now (None: the same one)."""
    try:
        then = json.loads((run_dir(server.name, root) / "serves.json").read_text())
    except (OSError, ValueError):
        return "it was started without a record of what it serves"
    changed = [name for name, sha256 in served_model(server, root).items() if then.get(name) != sha256]
    return f"{', '.join(changed)} changed since it started" if changed else None


def _launch(server: servers.Server, root: Path, endpoints, settings, started: list, cpus=None) -> Recorded:
    """Start `server` unless it runs with the model in `root` (added to `started` when launched); its process.

    A server running another model (`make deploy-all DATA=...` beside `make serve`: a new spec, a new
    archive) is stopped and started again over the new one, never waited on for a model it cannot load."""
    folder = run_dir(server.name, root)
    recorded = read_pid(folder)
    changed = model_changed(server, root) if recorded is not None else None
    if changed:
        # Stopped first: it serves a model the folder no longer describes (and preparing rewrites its config).
        print(f"{server.name}: running (pid {recorded.pid}) but {changed}: restarting it over the new model")
        stop_one(server.name, root)
        recorded = None
    if recorded is not None:
        print(f"{server.name}: already running (pid {recorded.pid})")
        return recorded
    server.prepare()  # verify artifacts, render configs
    check_ports_free(server, endpoints.host, grace=RESTART_GRACE if changed else 0.0)
    recorded = launch(server, folder, cpus)
    (folder / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2) + "\n")
    paths.write_atomic(folder / "serves.json", json.dumps(served_model(server, root), indent=2) + "\n")
    started.append(server)
    print(f"{server.name}: started pid {recorded.pid} ({server.describe})"
          + (f" on cores {','.join(map(str, sorted(cpus)))}" if cpus else "") + f"; log {folder / 'server.log'}")
    return recorded


def stop_one(name: str, root: Path, grace: float = 15.0) -> bool:
    folder = run_dir(name, root)
    recorded = read_pid(folder)
    if recorded is None:
        return False
    # Descendants that left the group (a Ray worker may start a session of its own) are stopped by pid.
    strays = _strays(recorded.pid)
    try:
        os.killpg(recorded.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(recorded.pid):
            time.sleep(0.2)
        if _group_alive(recorded.pid):
            os.killpg(recorded.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _kill_strays(strays)
    (folder / "server.pid").unlink(missing_ok=True)
    # The instance's scratch folder (TorchServe's unpacked models and worker sockets) goes too.
    shutil.rmtree(folder / "tmp", ignore_errors=True)
    print(f"{name}: stopped (pid {recorded.pid})")
    return True


def _strays(pgid: int) -> list:
    """The descendants of process `pgid` outside its process group, as (pid, start time) pairs."""
    import psutil

    try:
        children = psutil.Process(pgid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if os.getpgid(child.pid) != pgid:
                found.append((child.pid, _stat(child.pid)[0]))
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def _kill_strays(strays: list, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace`, each (pid, start time) still running as that same process."""
    def alive() -> list:
        return [(pid, started) for pid, started in strays
                if started and _stat(pid)[0] == started and _stat(pid)[1] not in ("Z", "X")]

    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in alive():
            try:
                os.kill(pid, signal_number)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # The leader may be a zombie that only its parent (this process, in tests) can reap.
    try:
        os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True


def stop(root: Path) -> None:
    stopped = [name for name in table.SERVERS if stop_one(name, root)]
    if not stopped:
        print("nothing to stop: no server recorded under " + str(root / "run"))


def status(root: Path) -> None:
    for name in table.SERVERS:
        recorded = read_pid(run_dir(name, root))
        print(f"{name}: " + (f"running, pid {recorded.pid}" if recorded else "not running"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--timeout", type=float, help="seconds to wait for each server (default: its row's, "
                        "core/servers.py)")
    parser.add_argument("--targets", default=None,
                        help="start only the servers of these targets or groups (default: $DIGITS_TARGETS, or all)")
    parser.add_argument("--servers", nargs="+", choices=list(table.SERVERS),
                        help="start only these servers (of core/servers.py), whatever the targets")
    parser.add_argument("--settings", default="default", choices=settings_mod.PRESET_NAMES,
                        help="named server settings from deploy/local/settings.py (default: default)")
    parser.add_argument("--keep-going", action="store_true",
                        help="start: serve what is built, saying which server is not and why (make deploy-all)")
    parser.add_argument("--cpus", help="start the servers on these cores only, e.g. 1,2 (taskset -c); default: any")
    args = parser.parse_args(argv)
    root = (args.artifacts or paths.artifacts_dir()).resolve()
    if args.action == "start":
        try:
            cpus = [int(cpu) for cpu in args.cpus.split(",")] if args.cpus else None
            names = selection.pick(args.targets)
            only = None if selection.picked_all(names) else tuple(selection.servers_of(names))
            if args.servers:
                only = tuple(args.servers)
            start(root, timeout=args.timeout, settings=settings_mod.preset(args.settings), cpus=cpus, only=only,
                  keep_going=args.keep_going)
        except (StartError, servers.PrepareError, specs.SpecError, selection.SelectionError) as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
    elif args.action == "stop":
        stop(root)
    else:
        status(root)


if __name__ == "__main__":
    main()
