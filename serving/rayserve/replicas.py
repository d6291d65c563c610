"""The processes of a running Ray Serve cluster (serving/rayserve/cluster.py), found from the pid the runner
recorded: its replicas, and every process of the cluster. psutil only, no Ray: the tests, the runner's
callers and the benchmarks read them from the main environment.

    from serving.rayserve import replicas
    replicas.running(pid)       # [psutil.Process] of each live replica (not stopped), oldest first
    replicas.cluster(pid)       # the cluster process and all its descendants
    replicas.titled(pid, replicas.PROXY_TITLE)  # Serve's HTTP proxy (or the GCS, the controller, ...)
"""
from __future__ import annotations

import psutil

APP_NAME = "digits"  # the Serve application's name (one per cluster here)
DEPLOYMENT = "V2Model"  # the deployment; Ray names each replica's process "ray::ServeReplica:<app>:<deployment>"
REPLICA_TITLE = f"ServeReplica:{APP_NAME}:{DEPLOYMENT}"
PROXY_TITLE = "ray::ProxyActor"  # Serve's HTTP proxy, one per node
CONTROLLER_TITLE = "ray::ServeController"
GCS_TITLE = "gcs_server"


def cluster(pid: int) -> list:
    """Process `pid` and all its descendants (psutil.Process); [] when it is gone."""
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _title(process) -> str:
    try:
        return " ".join(process.cmdline()) or process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def titled(pid: int, title: str) -> list:
    """The processes of the cluster under `pid` whose command line holds `title`, oldest first."""
    found = [process for process in cluster(pid) if title in _title(process)]
    return sorted(found, key=lambda process: process.create_time())


def all_replicas(pid: int) -> list:
    """Every replica process of the cluster under `pid`, stopped ones included, oldest first."""
    return titled(pid, REPLICA_TITLE)


def running(pid: int) -> list:
    """The replica processes that run (not stopped by SIGSTOP, not exited), oldest first."""
    live = []
    for process in all_replicas(pid):
        try:
            if process.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                live.append(process)
        except psutil.NoSuchProcess:
            continue
    return live
