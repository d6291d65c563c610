"""The report's "Settings search" section: every grid point per server, the profiles, and the goals.

Reads artifacts/bench/search.json (`make bench TOOL=search`, benchmarks/search.py); build() in
benchmarks/report/layout.py calls section_search. The goals, as ratios of figures of the same run:
  - TorchServe's latency profile: one-client p50 <= LATENCY_GOAL x the same model called in-process;
  - each throughput profile: capacity >= the default's on every endpoint, and >= BATCHING_GOAL x
    where the server merges requests into batches (TorchServe; TF Serving only as the real binary).
"""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks import grid
from benchmarks.report import charts
from benchmarks.report.figures import missing, table
from core import servers

LATENCY_GOAL = 15.0
BATCHING_GOAL = 1.5


def _point(entry: dict, name: str) -> dict | None:
    return next((p for p in entry["points"] if p["name"] == name), None)


def _p50(point: dict, target: str):
    return ((point or {}).get("targets", {}).get(target) or {}).get("one_client", {}).get("p50_ms")


def _capacity(point: dict, target: str):
    return ((point or {}).get("targets", {}).get(target) or {}).get("capacity_rps")


def delay_cost(entry: dict) -> str:
    """What TorchServe's batch wait costs a lone client: the checked-in b8 d5 against b8 d1, same run.

    (d1, not d0: TorchServe reads maxBatchDelay 0 as unset and waits 100 ms.)"""
    waited, eager = _point(entry, "default"), _point(entry, "d1")
    if not (waited and eager and grid.score(waited) and grid.score(eager)):
        return "The grid had no pair of points differing only in maxBatchDelay (5 ms vs 1) at batchSize 8.\n"
    rows = [f"{t} {_p50(waited, t):g} ms vs {_p50(eager, t):g} ms" for t in entry["endpoints"]]
    cost = grid.score(waited)[0] - grid.score(eager)[0]
    verdict = (f"the wait costs a lone client {cost:.2f} ms of p50 (slowest endpoint) in this run" if cost > 0 else
               f"maxBatchDelay 1 was NOT faster for a lone client in this run "
               f"({-cost:.2f} ms slower, slowest endpoint)")
    return (f"What the batch delay costs a lone client: at batchSize 8, one-client p50 with maxBatchDelay 5 "
            f"(the checked-in config) against maxBatchDelay 1: {'; '.join(rows)}: {verdict}. (There is no "
            f"maxBatchDelay 0 point: TorchServe reads 0 as unset and waits its default 100 ms.)\n")


def should_be_default(entry: dict) -> str:
    """Whether this run argues for the latency profile as the checked-in default: better on both axes."""
    default = grid.score(_point(entry, "default") or {})
    latency_name = entry.get("profiles", {}).get("latency")
    latency = grid.score(_point(entry, latency_name) or {}) if latency_name else None
    if not (default and latency) or latency_name == "default":
        return ("The checked-in settings stay the default (the latency profile is the default point, "
                "or was not measured).\n")
    (p50, capacity), (base_p50, base_capacity) = latency, default
    verdict = ("answers one client faster AND carries at least the default's load here: a candidate for the "
               "checked-in default once a quiet run confirms it" if capacity >= base_capacity and p50 < base_p50 else
               "trades load for latency here, so the checked-in settings stay the default and the profile is opt-in")
    return (f"Latency profile {latency_name}: one-client p50 {p50:g} ms vs the default's {base_p50:g} ms, capacity "
            f"{capacity:g} vs {base_capacity:g} req/s (weakest endpoint): it {verdict}.\n")


def goals(search: dict) -> list[list]:
    rows = []
    ts = search["servers"].get("torchserve")
    if ts and ts.get("profiles"):
        latency = _point(ts, ts["profiles"]["latency"])
        p50, base = grid.score(latency)[0], ts["in_process"]["p50_ms"]
        ratio = p50 / base
        met = ratio <= LATENCY_GOAL
        rows.append([f"TorchServe latency profile one-client p50 <= {LATENCY_GOAL:g}x in-process",
                     f"{latency['name']}: {p50:g} ms vs {ts['in_process']['target']} {base:g} ms = {ratio:.1f}x",
                     "met" if met else f"not met: the served call takes {p50 - base:.2f} ms more than the "
                                       "in-process one"])
    for _server, entry in search["servers"].items():
        if not entry.get("profiles"):
            continue
        default, best = _point(entry, "default"), _point(entry, entry["profiles"]["throughput"])
        goal = BATCHING_GOAL if entry.get("batches_requests") else 1.0
        for target in entry["endpoints"]:
            base, got = _capacity(default, target), _capacity(best, target)
            if base is None or got is None:
                rows.append([f"{target} throughput capacity >= {goal:g}x default", "not measured", "not met"])
                continue
            ratio = got / base if base else (float("inf") if got else 0.0)
            reason = "" if ratio >= goal else (
                ": this server does not merge requests into batches, so its settings change only threads"
                if not entry.get("batches_requests") else
                f": the best grid point carried {ratio:.2f}x the default's load in this run")
            rows.append([f"{target} throughput capacity >= {goal:g}x default",
                         f"{best['name']} {got:g} vs default {base:g} req/s"
                         + (f" = {ratio:.2f}x" if base else " (the default held no rate)"),
                         ("met" if ratio >= goal else "not met") + reason])
    return rows


def steps_of(search: dict) -> float:
    """Seconds per load step (search.json's "search", or "ladder" before the bisecting search)."""
    return (search.get("search") or search.get("ladder") or {})["step_seconds"]


def bracket_of(search: dict) -> str:
    """How the goodput was found: bisected to within a precision, or an older file's ladder."""
    bounds = search.get("search")
    if not bounds:
        return "; a rate ladder"
    return f"; rates doubled until a step failed, then bisected to within {bounds['precision']:.0%}"


def section_search(inputs, out: Path) -> str:
    text = "## Settings search: which settings to run (`make tune`)\n\n"
    search = inputs.get("search")
    if not search:
        return text + missing("search")
    rule = search["rule"]
    text += (f"Every point of a grid of server settings, each measured in the same run (`{search['command']}`, "
             f"{search['seconds']:.0f} s): one client's sequential calls for {search['latency_seconds']:g} s per "
             f"endpoint, then its goodput (open loop, {steps_of(search):g} s steps, p99 <= "
             f"{search['slo_p99_ms']:g} ms, zero errors{bracket_of(search)}). "
             f"Profiles: **throughput** = {rule['throughput']}; "
             f"**latency** = {rule['latency']} ({rule['point']}). `make serve PROFILE=latency|throughput` runs them; "
             "the committed profiles are deploy/local/profiles.json (`make tune` rewrites it). TF Serving: "
             f"{search['tfserving']}.\n\n")
    for server, entry in search["servers"].items():
        name = servers.label(server) if server in servers.SERVERS else server
        roles: dict[str, list[str]] = {"default": ["default"]}
        for role, point_name in entry.get("profiles", {}).items():
            roles.setdefault(point_name, []).append(role)
        scored = [(p["name"], grid.score(p)[1], grid.score(p)[0]) for p in entry["points"] if grid.score(p)]
        text += f"### {name}\n\n"
        if scored:
            charts.pareto(scored, roles, out / f"search-{server}.png",
                          f"{name}: one-client p50 against capacity, every grid point")
            text += f"![{server} settings](report/search-{server}.png)\n\n"
        rows = []
        for point in entry["points"]:
            score = grid.score(point)
            rows.append([point["name"], f"`{json.dumps(point['settings'])}`" if point["settings"] else "checked-in",
                         *[_p50(point, t) for t in entry["endpoints"]],
                         *[_capacity(point, t) for t in entry["endpoints"]],
                         ", ".join(r for r in roles.get(point["name"], [])) if score else
                         f"failed: {(point.get('error') or 'an endpoint failed')[:80]}"])
        text += table(["point", "settings", *[f"{t} p50 ms" for t in entry["endpoints"]],
                       *[f"{t} req/s" for t in entry["endpoints"]], "profile"], rows)
        text += (f"\nIn-process, same run: {entry['in_process']['target']} one-client p50 "
                 f"{entry['in_process']['p50_ms']:g} ms.\n\n")
        if server == "torchserve":
            text += delay_cost(entry) + "\n"
        text += should_be_default(entry) + "\n"
    text += "### Goals\n\n" + table(["goal", "measured (same run)", "verdict"], goals(search))
    return text
