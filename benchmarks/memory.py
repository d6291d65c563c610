"""Resident memory (RSS) and CPU time of each server's whole process tree.

    with memory.Sampler({"torchserve": pid, "tfserving": pid}) as sampler:
        ...                                   # run the load
    sampler.result()   # {"torchserve": {"idle_mb": ..., "peak_mb": ...}, ...}
    before = memory.trees_cpu_s(pids); ...; after = memory.trees_cpu_s(pids)   # CPU seconds used in between

A TorchServe instance is a Java frontend plus one Python process per worker, so every figure is
the sum over the process and all its descendants. RSS is sampled every `interval` seconds (a short
peak between two samples can be missed); CPU time is each member's user + system time plus that of
its children already reaped, so a worker that exited still counts once.
"""
from __future__ import annotations

import threading

import psutil


def tree(pid: int) -> list:
    """Process `pid` and all its descendants (psutil.Process), [] when it is gone."""
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, reaped children included) of process `pid` and its descendants so far."""
    total = 0.0
    for member in tree(pid):
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def trees_cpu_s(pids: dict) -> dict:
    """{name: tree_cpu_s(pid)} for every named pid."""
    return {name: tree_cpu_s(pid) for name, pid in pids.items()}


def tree_rss_mb(pid: int) -> float:
    """RSS of process `pid` and all its descendants, in MiB (0 when it is gone)."""
    total = 0
    for member in tree(pid):
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


class Sampler:
    def __init__(self, pids: dict, interval: float = 0.25):
        self.pids, self.interval = pids, interval
        self.idle = {name: tree_rss_mb(pid) for name, pid in pids.items()}
        self.peak = dict(self.idle)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], tree_rss_mb(pid))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def result(self) -> dict:
        return {name: {"idle_mb": round(self.idle[name], 1), "peak_mb": round(self.peak[name], 1)}
                for name in self.pids}
