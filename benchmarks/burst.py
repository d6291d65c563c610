"""A crowd at once: N concurrent connections x M requests on every served endpoint, every request accounted for.

    make bench TOOL=burst                                         # = python -m benchmarks burst
    python -m benchmarks burst --connections 64 256 1000 --requests 5 --targets tfserving-rest
    python -m benchmarks burst --running                      # against the servers `make serve` started

Each of N connections (its own keep-alive HTTP connection, or its own gRPC channel with its own
TCP connection) is opened at the same moment and sends M single-image predictions one after the
other, as a load tester's crowd of clients would. Nothing is retried here: the point is what the
server itself answers. Every request ends as exactly one of

    answered    HTTP 200 / gRPC OK with one row of probabilities summing to 1
    refused     an explicit overload refusal a client can act on (serving/retry.py `refusal`):
                HTTP 503/429, gRPC RESOURCE_EXHAUSTED, TorchServe's queue-full INTERNAL
    reset       the connection was refused, reset or closed, or gRPC UNAVAILABLE/CANCELLED:
                a client cannot tell this from a crash
    timed_out   no answer within --timeout seconds
    errors      anything else (a wrong answer, a 500...), by kind: unexplained

The outcomes and their kinds are the load engine's (benchmarks/openloop.py `classify`, `Tally`);
latency (p50/p90/p99/max of answered requests, from send to answer: every connection sends at
once, there is no schedule to measure from) is benchmarks/timing.py `summarize`. The client is
one process on asyncio (aiohttp, grpc.aio), not a thread per connection, so it leaves the cores to
the servers; the soft limit on open files is raised when N connections need more.

Unless --running, both servers are started for the run on free ports (their own run folder under
<artifacts>/load/burst/, like the capacity sweep) and stopped after. Writes <artifacts>/bench/burst.json
(benchmarks/results.py)
(every burst, and per endpoint the largest burst held: nothing reset, timed out or unexplained) and
burst.png (answered share and p50/p99 against connections).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, openloop, results, timing
from benchmarks.openloop import Tally
from benchmarks.report import charts
from core import connections, registry
from core import spec as specs
from serving import endpoints as endpoints_mod
from serving import tls

TARGETS = tuple(registry.served())
OUTCOMES = tuple(o for o in openloop.OUTCOMES if o != "not_sent")  # every request of a burst is sent
# Every gRPC channel gets its own subchannel pool, hence its own TCP connection: grpc would
# otherwise share one connection between channels to the same address.
GRPC_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


def ensure_open_files(needed: int) -> int:
    """Raise this process's soft limit on open files to `needed` when lower (up to the hard limit); the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"error: {needed} open files needed for this burst, but the hard limit is {hard}: "
                         f"raise it (`ulimit -Hn {needed}` as root, or /etc/security/limits.conf) "
                         "or use fewer connections")
    before, now, hard = connections.raise_open_files(needed)
    if now > before:
        print(f"burst: raised the soft limit on open files from {before} to {now} (hard limit {hard})", flush=True)
    return now


# ---- one connection of each kind -------------------------------------------------------------

class Rest:
    """POST one JSON body per request over one keep-alive connection (aiohttp)."""

    classes = 0  # the class count every answer must have: the spec's (set by client_for)

    def __init__(self, url: str, body: bytes, headers: dict, rows_of):
        self.url, self.body, self.headers, self.rows_of = url, body, headers, rows_of

    async def connection(self, requests: int, timeout: float, go: asyncio.Event, tally: Tally) -> None:
        import aiohttp

        from serving.rest import RestError

        connector = aiohttp.TCPConnector(limit=1)  # one connection, reused for every request (keep-alive)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            await go.wait()
            for _ in range(requests):
                began = timing.now()
                try:
                    async with session.post(self.url, data=self.body, headers=self.headers) as response:
                        text = await response.read()
                        if response.status != 200:
                            raise RestError(response.status, text[:200].decode(errors="replace"),
                                            response.headers.get("Retry-After"))
                        openloop.check_answer(self.rows_of(json.loads(text)), 1, self.classes)
                except Exception as error:  # every failure is a result here
                    tally.failed(error)
                    continue
                tally.answered(timing.now() - began)


class Grpc:
    """One unary method over one channel of its own; the request serialized once, the answer parsed each time."""

    classes = 0  # the class count every answer must have: the spec's (set by client_for)

    def __init__(self, target: str, method: str, request: bytes, metadata: tuple, rows_of):
        self.target, self.method, self.request, self.metadata, self.rows_of = target, method, request, metadata, rows_of

    async def connection(self, requests: int, timeout: float, go: asyncio.Event, tally: Tally) -> None:
        channel = tls.channel(self.target, GRPC_OPTIONS, aio=True)
        try:
            call = channel.unary_unary(self.method)  # bytes in, bytes out
            await go.wait()
            for _ in range(requests):
                began = timing.now()
                try:
                    reply = await call(self.request, metadata=self.metadata, timeout=timeout)
                    openloop.check_answer(self.rows_of(reply), 1, self.classes)
                except Exception as error:  # every failure is a result here
                    tally.failed(error)
                    continue
                tally.answered(timing.now() - began)
        finally:
            await channel.close()


def client_for(target: str, endpoints, root: Path, image: np.ndarray):
    """The connection factory of served target `target`, sending `image` (one image of the spec) each time,
    as the target's own client writes the request (its `wire()`); every answer is checked to carry the
    spec's classes."""
    predictor = registry.load(target, root=root, endpoints=endpoints)
    try:
        wire = predictor.wire(image[None])
    finally:
        if hasattr(predictor, "close"):
            predictor.close()
    if wire.kind == "rest":
        client = Rest(wire.address, wire.body, dict(wire.extra), wire.rows_of)
    else:
        client = Grpc(wire.address, wire.method, wire.body, tuple(wire.extra), wire.rows_of)
    client.classes = specs.load(root).num_classes
    return client


# ---- a burst ---------------------------------------------------------------------------------

def burst(target: str, endpoints, root: Path, connections: int, requests: int = 5, timeout: float = 30.0,
          image: np.ndarray | None = None) -> dict:
    """`connections` connections at once on `target`, `requests` each; the counts and latencies."""
    ensure_open_files(2 * connections + 256)
    image = openloop.test_images(root, 1)[0] if image is None else image
    client = client_for(target, endpoints, root, image)
    tally = Tally()

    async def crowd() -> float:
        go = asyncio.Event()
        tasks = [asyncio.create_task(client.connection(requests, timeout, go, tally)) for _ in range(connections)]
        await asyncio.sleep(0)  # every connection is waiting at the line before any starts
        began = timing.now()
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=requests * timeout + 30)
        return timing.now() - began

    elapsed = asyncio.run(crowd())
    sent = connections * requests
    counted = tally.snapshot()
    counts = {outcome: counted[outcome] for outcome in OUTCOMES}
    if sum(counts.values()) != sent or counted["not_sent"]:  # every request must end as exactly one outcome
        raise AssertionError(f"{target}: {sent} requests sent, {sum(counts.values())} accounted for: {counts}")
    latency = timing.summarize(tally.latencies_s, "ms")
    return {"target": target, "connections": connections, "requests_per_connection": requests, "sent": sent,
            **counts, "held": held(counts), "seconds": round(elapsed, 2),
            "answered_per_s": round(counts["answered"] / elapsed, 2) if elapsed > 0 else 0.0,
            **{key: latency[key] for key in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")},
            "kinds": counted["kinds"], "examples": counted["examples"]}


def held(counts: dict) -> bool:
    """Nothing dropped: every request answered or explicitly refused (no reset, time-out or unexplained error)."""
    return counts["reset"] == counts["timed_out"] == counts["errors"] == 0


def line(run: dict) -> str:
    return (f"  {run['target']:<16} {run['connections']:>5} x {run['requests_per_connection']}: "
            f"answered {run['answered']:>5}, refused {run['refused']:>4}, reset {run['reset']:>4}, "
            f"timed out {run['timed_out']:>4}, errors {run['errors']:>3}; "
            f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
            f"{run['seconds']:.1f} s" + ("" if run["held"] else f"  <- dropped: {run['kinds']}"))


def summary(runs: list[dict]) -> dict:
    """Per endpoint: the largest burst held (and its p99), and the largest answered in full (no refusal either)."""
    out = {}
    for target in dict.fromkeys(run["target"] for run in runs):
        mine = sorted((run for run in runs if run["target"] == target), key=lambda run: run["connections"])
        kept = [run for run in mine if run["held"]]
        full = [run for run in kept if run["refused"] == 0]
        out[target] = {"largest_held": kept[-1]["connections"] if kept else 0,
                       "p99_ms_at_largest_held": kept[-1]["p99_ms"] if kept else None,
                       "largest_answered_in_full": full[-1]["connections"] if full else 0,
                       "largest_tried": mine[-1]["connections"]}
    return out


def run_all(targets, connections, requests: int, timeout: float, endpoints, root: Path, progress=print) -> list[dict]:
    image = openloop.test_images(root, 1)[0]
    runs = []
    for target in targets:
        for count in sorted(connections):
            runs.append(burst(target, endpoints, root, count, requests, timeout, image))
            progress(line(runs[-1]))
            time.sleep(1.0)  # let the closed connections drain before the next crowd
    return runs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64, 256, 1000],
                        help="concurrent connections per burst, one burst each (default: 16 64 256 1000)")
    parser.add_argument("--requests", type=int, default=5, help="requests on each connection (default: 5)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take (default: 30)")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS,
                        help="served endpoints (default: every one)")
    parser.add_argument("--running", action="store_true",
                        help="use the servers already running (make serve; DIGITS_*_PORT) instead of starting them")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: $DIGITS_ARTIFACTS or ./artifacts)")
    parser.add_argument("--out", type=Path,
                        help="JSON result (default: <artifacts>/bench/burst.json; the PNG beside it)")
    args = parser.parse_args(argv)
    from core import paths

    root = (args.artifacts or paths.artifacts_dir()).resolve()
    command = results.command(__name__, argv)
    print(f"burst: {', '.join(args.targets)}; {' / '.join(map(str, sorted(args.connections)))} connections at once "
          f"x {args.requests} requests each, no retries", flush=True)
    from deploy.local import runner, servers

    if args.running:
        endpoints, served = endpoints_mod.resolve(), root
        runs = run_all(args.targets, args.connections, args.requests, args.timeout, endpoints, served)
    else:
        from benchmarks import variants

        served, endpoints = variants.prepare(root, "burst"), endpoints_mod.free_endpoints()
        runner.stop(served)  # left over from an interrupted run
        runner.start(served, endpoints, timeout=300)
        try:
            runs = run_all(args.targets, args.connections, args.requests, args.timeout, endpoints, served)
        finally:
            runner.stop(served)
    result = {"command": command, "requests_per_connection": args.requests, "timeout_s": args.timeout,
              "machine": machine.describe(),
              "tfserving": servers.tfserving(root, endpoints).describe, "runs": runs, "endpoints": summary(runs)}
    out = results.save(result, args.out) if args.out else results.write(result, root, "burst")
    chart = charts.burst(result, out.with_suffix(".png"))
    print(f"\n{'endpoint':<18}{'largest held':>14}{'p99 ms there':>14}{'answered in full':>18}")
    for target, entry in result["endpoints"].items():
        print(f"{target:<18}{entry['largest_held']:>14}{str(entry['p99_ms_at_largest_held']):>14}"
              f"{entry['largest_answered_in_full']:>18}")
    print(f"wrote {out} and {chart}")
    return result
