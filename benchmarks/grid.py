"""The settings search's grids, and the rule that picks the two profiles from the measured points.

    from benchmarks import grid
    points = grid.points("torchserve", "small")           # [{"name": "default", "knobs": {}, "settings": {}}, ...]
    chosen = grid.pick(measured_points)                    # {"latency": "b1", "throughput": "w2-b16-d2-omp1"}

A grid point names only the knobs it changes from the checked-in configs (the point "default",
with no knobs, is always in the grid: every profile is measured beside it). Knobs are short names
for fields of deploy/local/settings.py ServerSettings (a Grid's `knobs`); each server's row in
core/servers.py names its Grid here (`grid=`), which is all the search needs to measure it. Pure functions: the search
(benchmarks/search.py) measures, this module decides; tests/unit/test_search_grid.py checks it
on made-up points.

The rule (a point's one-client p50 is its slowest endpoint's, its capacity its weakest endpoint's,
since one setting serves both protocols; a point with an error is never chosen):
  throughput: the highest capacity; points within THROUGHPUT_TIE of it count as tied, and of
              those the lowest one-client p50 wins (then the higher capacity).
  latency:    the lowest one-client p50 among points whose capacity is at least
              LATENCY_CAPACITY_SHARE of the best (a setting that answers one client fast but falls
              over under modest load is no profile to recommend); ties: the higher capacity.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from core import servers
from core.registry import named

LATENCY_CAPACITY_SHARE = 0.5
THROUGHPUT_TIE = 0.05


@dataclass(frozen=True)
class Grid:
    """One server's grid: its row in core/servers.py names it (`grid`), so the search measures that server."""
    # knob -> (ServerSettings field, key in it or None for the field itself); the field must be the row's own
    knobs: dict
    small: list  # the knob sets of the small grid (about eight points, ~8-10 minutes on 2 cores)
    full: list  # the knob sets of the full grid (about 20 points, 20-25 minutes)


def _torchserve_full() -> list[dict]:
    """Every combination of a few values per knob."""
    batching = [{"b": 1}, {"d": 1}, {"d": 2}, {}, {"b": 32, "d": 2}]
    netty = [{}, {"netty": 1, "client": 1}]
    combos = [{**n, **omp, **b} for n, omp, b in itertools.product(netty, [{}, {"omp": 2}], batching)]
    return combos + [{"netty": 2, "client": 1, "b": 1}, {"netty": 8, "b": 1}]


def _tfserving_full() -> list[dict]:
    """Every combination of a few values per knob."""
    batching = [{"batching": False}, {}, {"timeout": 1000}, {"grpc": 64}, {"grpc": 64, "timeout": 1000},
                {"grpc": 64, "bthreads": 1}]
    return [{**b, **t, **r} for b, t, r in itertools.product(batching, [{}, {"intra": 1, "inter": 1}],
                                                             [{}, {"rest": 8}])]


# The small grids: TorchServe: what batching and its wait cost one client (b1: no batching, no wait; d1: the
# shortest wait TorchServe honours, against the checked-in b8 d5), one Netty thread each for the frontend's
# I/O and its link to the workers (the overhead breakdown's largest cut, benchmarks/torchserve_breakdown.py),
# two PyTorch threads per worker (the handler's default is one), bigger batches. There is no d0: TorchServe
# reads maxBatchDelay 0 as unset and waits 100 ms (deploy/local/settings.py).
TORCHSERVE = Grid(
    knobs={
        "w": ("torchserve", ("minWorkers", "maxWorkers")),  # Python workers
        "b": ("torchserve", "batchSize"),
        "d": ("torchserve", "maxBatchDelay"),  # ms a batch waits to fill
        "omp": ("torchserve_env", "OMP_NUM_THREADS"),  # intra-op threads of each worker
        "netty": ("torchserve_config", "number_of_netty_threads"),  # frontend I/O threads
        "client": ("torchserve_config", "netty_client_threads"),  # frontend <-> worker threads
    },
    small=[{}, {"b": 1}, {"d": 1}, {"netty": 1, "client": 1, "b": 1}, {"netty": 1, "client": 1, "d": 1},
           {"omp": 2, "b": 1}, {"b": 16, "d": 2}, {"netty": 1, "client": 1, "b": 32, "d": 2}],
    full=_torchserve_full())
# TF Serving: batching off (no thread hop for one client), one TensorFlow thread per op, and its batching
# dimensions: more gRPC calls at once (a batch can only merge the calls in progress), a wait for company
# (batch_timeout_micros), one batch thread (two batches at once share 2 cores), smaller batches.
TFSERVING = Grid(
    knobs={
        "batching": ("tfserving_batching", None),  # --enable_batching on/off
        "maxb": ("tfserving", "max_batch_size"),
        "timeout": ("tfserving", "batch_timeout_micros"),
        "bthreads": ("tfserving", "num_batch_threads"),
        "intra": ("tfserving_flags", "tensorflow_intra_op_parallelism"),
        "inter": ("tfserving_flags", "tensorflow_inter_op_parallelism"),
        "rest": ("tfserving_flags", "rest_api_num_threads"),
        "grpc": ("tfserving_flags", "grpc_max_threads"),  # gRPC calls at once: each waits for its batch
    },
    small=[{}, {"batching": False}, {"batching": False, "intra": 1, "inter": 1}, {"intra": 1, "inter": 1},
           {"grpc": 64}, {"grpc": 64, "intra": 1, "inter": 1}, {"grpc": 64, "timeout": 1000, "intra": 1, "inter": 1},
           {"grpc": 64, "bthreads": 1, "intra": 1, "inter": 1}, {"grpc": 64, "maxb": 64, "intra": 1, "inter": 1}],
    full=_tfserving_full())


def grids() -> dict[str, Grid]:
    """Server -> its grid: every row of core/servers.py that names one, in start order."""
    return {name: named(servers.SERVERS[name].grid) for name in servers.searched()}


def point_name(knobs: dict) -> str:
    """"default" for no knobs, else e.g. "w2-b1-omp1" (knobs in grid order; booleans as on/off)."""
    if not knobs:
        return "default"
    order = [k for grid in grids().values() for k in grid.knobs]
    parts = []
    for knob in sorted(knobs, key=order.index):
        value = knobs[knob]
        parts.append(f"{knob}-{'on' if value else 'off'}" if isinstance(value, bool) else f"{knob}{value}")
    return "-".join(parts)


def settings_of(server: str, knobs: dict) -> dict:
    """The ServerSettings fields of `server` a point sets: {"torchserve": {...}, "torchserve_env": {...}, ...}."""
    fields: dict = {}
    table = grids()[server].knobs
    for knob, value in knobs.items():
        if knob not in table:
            raise ValueError(f"{server}: unknown knob {knob!r}; known: {', '.join(table)}")
        field, keys = table[knob]
        if keys is None:
            fields[field] = value
            continue
        target = fields.setdefault(field, {})
        for key in (keys if isinstance(keys, tuple) else (keys,)):
            target[key] = str(value) if field == "torchserve_env" else value
    return fields


def points(server: str, grid: str = "small", names: list[str] | None = None) -> list[dict]:
    """The grid's points, "default" first; `names` keeps only those (each must be in the grid)."""
    found = grids()
    if server not in found:
        raise ValueError(f"unknown server {server!r}; known: {', '.join(found)}")
    if grid not in ("small", "full"):
        raise ValueError(f"unknown grid {grid!r}; known: small, full")
    knob_sets = found[server].small if grid == "small" else found[server].full
    out, seen = [], set()
    for knobs in [{}, *knob_sets]:
        name = point_name(knobs)
        if name not in seen:
            seen.add(name)
            out.append({"name": name, "knobs": knobs, "settings": settings_of(server, knobs)})
    if names:
        missing = [name for name in names if name not in seen]
        if missing:
            raise ValueError(f"{server}: {', '.join(missing)} not in the {grid} grid; it has {', '.join(sorted(seen))}")
        out = [point for point in out if point["name"] in names]
    return out


def score(point: dict) -> tuple[float, float] | None:
    """(one-client p50 ms of the slowest endpoint, capacity req/s of the weakest), None for a failed point."""
    targets = point.get("targets") or {}
    if point.get("error") or not targets or any(t.get("error") for t in targets.values()):
        return None
    return (max(t["one_client"]["p50_ms"] for t in targets.values()),
            min(t["capacity_rps"] for t in targets.values()))


def pick(measured: list[dict]) -> dict:
    """{"latency": point name, "throughput": point name} by the rule in the module docstring."""
    scored = [(point["name"], *score(point)) for point in measured if score(point) is not None]
    if not scored:
        raise ValueError("no grid point was measured without errors: nothing to choose from")
    best = max(capacity for _, _, capacity in scored)
    tied = [row for row in scored if row[2] >= (1 - THROUGHPUT_TIE) * best]
    throughput = min(tied, key=lambda row: (row[1], -row[2]))[0]
    fast_enough = [row for row in scored if row[2] >= LATENCY_CAPACITY_SHARE * best]
    latency = min(fast_enough, key=lambda row: (row[1], -row[2]))[0]
    return {"latency": latency, "throughput": throughput}


def rule() -> dict:
    """The rule, as recorded in search.json and profiles.json."""
    return {"point": "p50 = the slowest endpoint's one-client p50, capacity = the weakest endpoint's",
            "throughput": f"highest capacity; within {THROUGHPUT_TIE:.0%} of it counts as tied, then lowest p50",
            "latency": f"lowest p50 among points with capacity >= {LATENCY_CAPACITY_SHARE:.0%} of the best"}
