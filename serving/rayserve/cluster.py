"""A local Ray cluster serving the application (serving/rayserve/app.py), in the foreground: what
`make serve` / `make deploy-all` start for the rayserve target.

    .venv-kserve/bin/python -m serving.rayserve.cluster --artifacts artifacts --host 127.0.0.1 --http-port 8094
    ... --replicas 2 --max-batch-size 1      # a fixed replica count, batching off (make bench TOOL=scale)

This process is the Ray head (`ray.init` starts the GCS, the raylet and their helpers as its
children: the API equivalent of `ray start --head`) and the driver that deploys the application.
It waits until every replica is healthy, writes `<run folder>/ready.json` (replicas, Serve's
address), then stays until SIGTERM: the runner's stop signals the whole cluster, this process group
and Ray's workers by pid (deploy/local/runner.py). A start that fails shuts Serve and the cluster down.

Locked down: every Ray address is 127.0.0.1 (Ray's single-machine mode, LOCKED_DOWN below: without
it Ray 2.60 replaces a node address of 127.0.0.1 by the machine's outward one, and its servers listen
on every interface), the replicas' own gRPC servers too (serving/rayserve/app.py), Serve's proxy
binds `--host`, no dashboard and so no job submission API (it runs code for anyone who reaches it,
CVE-2023-48022), no usage statistics (RAY_USAGE_STATS_ENABLED=0), and the metrics ports Ray would
take at fixed numbers are free ones. Ray's session folder and logs are under the run folder (or, when that
path is too long for Ray's unix sockets, a short folder under /tmp linked from it), rotated at
RAY_ROTATION_MAX_BYTES with RAY_ROTATION_BACKUP_COUNT old files.

Private to its user (serving/rayserve/private.py): token authentication on, with a token of this cluster's
own in `<run>/auth_token` (0600; RAY_AUTH_TOKEN_PATH, not Ray's user-wide ~/.ray/auth_token), and Ray's
folders (0777, Ray's choice) inside a 0700 one of ours. Every process of the cluster inherits the token's path;
a driver that connects (the tests') needs it. Serve's proxy is health-checked every second (PROXY_HEALTH):
a dead one is replaced in seconds, not Serve's half a minute.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from serving.rayserve import private

# Before Ray is imported: what its processes read from the environment (they inherit it).
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is Ray's single-machine mode (its default on macOS and Windows): the
# node's address is the loopback one. Without it Ray 2.60 turns a node address of 127.0.0.1 into the
# machine's outward address (services.resolve_ip_for_localhost), whatever `_node_ip_address` says.
LOCKED_DOWN = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
               "RAY_ROTATION_MAX_BYTES": str(16 * 1024 * 1024),
               "RAY_ROTATION_BACKUP_COUNT": "2", "RAY_DEDUP_LOGS": "0"}
# Serve's controller marks its HTTP proxy unhealthy after 3 failed checks in a row (fixed) and starts another.
# At Serve's 10 s period and 10 s time-out a killed proxy left the port dead for ~29 s; checked every second,
# a dead one (which fails at once) is found in ~3 s. The time-out stays 2 s: a proxy that a burst slows on 2
# cores must miss three 2 s checks in a row before its connections are dropped with it.
PROXY_HEALTH = {"RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "1", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "2"}
# A unix socket path holds at most 107 bytes; Ray's longest under the temp folder is about
# "session_2026-12-05_15-06-24_123456_12345/sockets/plasma_store" (62 bytes).
SOCKET_PATH_ROOM = 107 - 64


def temp_dir(run: Path) -> Path:
    """Ray's temp folder: `<run>/ray` when short enough for its sockets, else /tmp/digits-ray-<hash>/ray
    (linked from `<run>/ray`, so the logs are found in the run folder either way). Either way inside a
    folder only this user enters (the run folder, or /tmp/digits-ray-<hash>, 0700): Ray makes its own 0777.
    Bounded: only the last session before this one is kept, and a /tmp folder whose run folder is gone is
    deleted."""
    inside = run / "ray"
    if len(str(inside)) <= SOCKET_PATH_ROOM:
        inside.mkdir(exist_ok=True)
        return _pruned(inside)
    scratch = Path(tempfile.gettempdir())
    for other in scratch.glob("digits-ray-*"):  # ours (each names its run folder): left by deleted folders
        owner = other / "owner"
        if (other.lstat().st_uid == os.getuid() and owner.is_file()
                and not Path(owner.read_text().strip()).exists()):
            shutil.rmtree(other, ignore_errors=True)
    short = private.folder(scratch / f"digits-ray-{hashlib.sha256(str(run).encode()).hexdigest()[:8]}")
    (short / "owner").write_text(f"{run}\n")
    (short / "ray").mkdir(exist_ok=True)
    if inside.is_symlink() or not inside.exists():
        inside.unlink(missing_ok=True)
        inside.symlink_to(short / "ray")
    return _pruned(short / "ray")


def _pruned(folder: Path) -> Path:
    """`folder` with only the newest of Ray's earlier session folders (the last run's logs) left."""
    sessions = sorted(p for p in folder.glob("session_2*") if p.is_dir() and not p.is_symlink())
    for old in sessions[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def run_folder(argv=None) -> Path | None:
    """The run folder `--artifacts` and `--run` name (None without --artifacts: parse_args says what is
    missing), read before anything imports Ray."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--artifacts", type=Path)
    early.add_argument("--run", type=Path)
    known, _ = early.parse_known_args(argv)
    if known.artifacts is None:
        return None
    return (known.run or known.artifacts.resolve() / "run" / "rayserve").resolve()


def parse_args(argv=None) -> argparse.Namespace:
    from serving.rayserve.app import Options

    default = Options()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=Path, required=True, help="the trained artifacts folder")
    parser.add_argument("--run", type=Path, help="the run folder (default: <artifacts>/run/rayserve)")
    parser.add_argument("--host", default="127.0.0.1", help="address Serve's HTTP proxy binds (default: 127.0.0.1)")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--framework", default=default.framework, choices=("torch", "tensorflow"))
    parser.add_argument("--replicas", type=int, help="a fixed replica count (default: autoscaling)")
    parser.add_argument("--min-replicas", type=int, default=default.min_replicas)
    parser.add_argument("--max-replicas", type=int, default=default.max_replicas)
    parser.add_argument("--target-ongoing-requests", type=float, default=default.target_ongoing_requests)
    parser.add_argument("--replica-cpus", type=float, default=default.replica_cpus,
                        help="logical CPUs each replica asks Ray for (default: %(default)s)")
    parser.add_argument("--max-batch-size", type=int, default=default.max_batch_size,
                        help="requests per forward pass, @serve.batch (1: no batching; default: %(default)s)")
    parser.add_argument("--batch-wait-ms", type=float, default=default.batch_wait_s * 1000,
                        help="how long a request waits for others to batch with (default: %(default)s)")
    # Serve's time-out counts the time a request waits in the proxy, not only its replica's work: at
    # 10 s, 27 of 1,280 requests of a 256-connection burst on 2 cores were answered 408 while queued.
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds before Serve's proxy answers a request it could not finish (queued or "
                             "on a stuck replica) with an error, instead of holding it (default: %(default)s)")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="the node's logical CPUs")
    parser.add_argument("--object-store-mb", type=int, default=128,
                        help="Ray's shared-memory object store; requests pass through it only past 100 KB, "
                             "and none exceeds 4 MiB (default: %(default)s; Ray's own is 30%% of the memory)")
    parser.add_argument("--start-timeout", type=float, default=240.0)
    return parser.parse_args(argv)


def options_of(args: argparse.Namespace):
    from serving.rayserve.app import Options

    return Options(framework=args.framework, replicas=args.replicas, min_replicas=args.min_replicas,
                   max_replicas=args.max_replicas, target_ongoing_requests=args.target_ongoing_requests,
                   replica_cpus=args.replica_cpus, max_batch_size=args.max_batch_size,
                   batch_wait_s=args.batch_wait_ms / 1000)


def replica_states(serve) -> dict:
    """{state: count} of the application's replicas (RUNNING, STARTING, ...)."""
    from serving.rayserve.replicas import APP_NAME, DEPLOYMENT

    application = serve.status().applications.get(APP_NAME)
    if application is None or DEPLOYMENT not in application.deployments:
        return {}
    return {str(getattr(state, "value", state)): count
            for state, count in application.deployments[DEPLOYMENT].replica_states.items()}


def main(argv=None) -> None:
    from core.ports import free_ports

    # Before anything imports Ray (the app's options do): it reads these at import. The autoscaler's and
    # the dashboard's metrics ports are fixed numbers unless set: free ones, so two clusters can run.
    autoscaler_port, dashboard_port = free_ports(2)
    os.environ.update(LOCKED_DOWN, **PROXY_HEALTH, AUTOSCALER_METRIC_PORT=str(autoscaler_port),
                      DASHBOARD_METRIC_PORT=str(dashboard_port))
    run = run_folder(argv)
    if run is None:
        parse_args(argv)  # says what is missing (or prints the help), and exits
    # The token too, before Ray is imported: it reads the mode when it loads its configuration.
    private.folder(run)
    token = private.new_token(run)
    os.environ.pop("RAY_AUTH_TOKEN", None)  # Ray would take it before the file
    os.environ.update(private.token_environment(token))
    args = parse_args(argv)
    root = args.artifacts.resolve()
    (run / "ready.json").unlink(missing_ok=True)
    options = options_of(args)

    import ray
    from ray import serve

    from serving.rayserve import app, replicas

    started = time.monotonic()
    temp = temp_dir(run)
    try:
        ray.init(num_cpus=args.num_cpus, object_store_memory=args.object_store_mb * 2**20, include_dashboard=False,
                 _node_ip_address="127.0.0.1",
                 _temp_dir=str(temp), namespace="digits", log_to_driver=False,
                 configure_logging=True, logging_level="WARNING")
    except BaseException:
        token.unlink(missing_ok=True)  # good for this cluster only: none left behind
        raise
    # SIGTERM is the runner's stop, which signals this process group (the GCS, the raylet, Ray's agents) at
    # once and Ray's workers by pid: nothing is left for this process to shut down (asked now, Serve would
    # wait for a GCS that is gone). Set after ray.init, whose own handler aborts the process.
    def stopped(*_) -> None:
        (run / "ready.json").unlink(missing_ok=True)
        token.unlink(missing_ok=True)  # good for this cluster only: none left behind
        os._exit(0)

    signal.signal(signal.SIGTERM, stopped)
    try:
        serve.start(http_options={"host": args.host, "port": args.http_port,
                                  "request_timeout_s": args.request_timeout})
        serve.run(app.application(root, options), name=replicas.APP_NAME, route_prefix="/", blocking=False)
        while (states := replica_states(serve)) != {"RUNNING": states.get("RUNNING", 0)} or not states:
            if time.monotonic() - started > args.start_timeout:
                raise SystemExit(f"rayserve: replicas not running after {args.start_timeout:.0f} s: {states}")
            time.sleep(0.5)
        ready = {"replicas": states["RUNNING"], "url": f"http://{args.host}:{args.http_port}",
                 "options": options.to_dict(), "pid": os.getpid(), "seconds": round(time.monotonic() - started, 1),
                 "gcs": ray.get_runtime_context().gcs_address, "auth_token": str(token)}
        (run / "ready.json").write_text(json.dumps(ready, indent=2) + "\n")
        print(f"rayserve: {states['RUNNING']} replicas running on {ready['url']} after {ready['seconds']} s",
              flush=True)
        while True:
            time.sleep(3600)
    finally:  # a start that failed (or Ctrl-C): Serve, then the cluster, shut down
        (run / "ready.json").unlink(missing_ok=True)
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            token.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
