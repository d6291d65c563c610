"""REPORT.md's load sections: the capacity of every endpoint (the sweep) and the burst of connections."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks.report.figures import missing, table


def capacity_cell(run: dict | None):
    """A goodput figure, marked when the load generator (not the server) was the limit."""
    if run is None:
        return None
    return f"{run['capacity_rps']:g} (generator-limited)" if run.get("generator_limited") else run["capacity_rps"]


def how_found(load: dict) -> str:
    """How the sweep found each figure: bracket then bisect (its `search` bounds), or an older file's ladder."""
    bounds, slo = load.get("search"), f"p99 > {load['slo_p99_ms']:g} ms or a request not answered"
    if not bounds:
        return f"rate raised until {slo}"
    return (f"the rate doubled until a step failed ({slo}), then bisected until the first failing rate was within "
            f"{bounds['precision']:.0%} of the goodput, the highest rate that held")


def section_capacity(inputs, out: Path, root: Path) -> str:
    text = "## Capacity of each endpoint (open loop, p99 <= 50 ms, every request answered)\n\n"
    load = inputs["load"]
    if not load:
        return text + missing("load")
    settings = list(load["server_settings"])
    pinning = load.get("pinning") or {"modes": ["unpinned"], "headline": "unpinned"}
    main = pinning["headline"]
    others = [mode for mode in pinning["modes"] if mode != main]
    rows = []
    for target, e in load["endpoints"].items():
        by_mode = e.get("by_mode", {})
        cells = [capacity_cell(by_mode.get(main, {}).get(s)) if by_mode else e["by_setting"].get(s) for s in settings]
        cells += [capacity_cell(by_mode.get(mode, {}).get(s)) for mode in others for s in settings]
        rows.append([target, e["framework"], *cells, e["setting"]])
    header = [*[f"{s} req/s" + (" (pinned)" if main == "pinned" else "") for s in settings],
              *[f"{s} req/s ({mode})" for mode in others for s in settings]]
    if "generator_cpus" in pinning:
        where = (f"Pinned: the load generator on core(s) {pinning['generator_cpus']}, the servers on "
                 f"{pinning['server_cpus']} (`taskset -c`); unpinned: all share the machine's "
                 f"{load['machine']['cpus']} cores.")
    else:
        where = f"Load generator and servers share the machine's {load['machine']['cpus']} cores."
    limits = load.get("generator_limits")
    text += (f"Poisson arrivals at a fixed offered rate, latency from each request's scheduled send time, "
             f"{load['step_seconds']:g} s per step, {how_found(load)} (`{load['command']}`). {where}"
             + (f" A figure marked *generator-limited* stopped at a step where the generator itself used >= "
                f"{limits['cpu_share']:.0%} of its cores or its send lag p99 exceeded "
                f"{limits['send_lag_p99_ms']:g} ms: "
                "it measures the client as much as the server." if limits else "") + "\n\n"
             + table(["endpoint", "framework", *header, "better"], rows))
    cpu_rows = [[target, mode, name, run.get("stopped_at_rps"), run.get("generator_cpu_cores"),
                 run.get("generator_cpu_share"), run.get("send_lag_p99_ms"),
                 ", ".join(f"{server} {cores:g}" for server, cores in (run.get("servers_cpu_cores") or {}).items())]
                for target, e in load["endpoints"].items() for mode, runs in e.get("by_mode", {}).items()
                for name, run in runs.items()]
    if cpu_rows:
        text += ("\nCPU at the step that bounded each search (its lowest failing rate): the generator's process CPU "
                 "over the step (cores, and "
                 "share of the cores it may use), its send lag, and the servers' process trees (cores):\n\n"
                 + table(["endpoint", "pinning", "settings", "stopped at req/s", "generator cores", "generator share",
                          "send lag p99 ms", "servers cores"], cpu_rows))
    for target, e in load["endpoints"].items():
        values = [e["by_setting"][s] for s in settings if s in e["by_setting"]]
        if len(values) == 2 and max(values) > 1.5 * max(min(values), 1e-9):
            text += (f"\n- {target}: {settings[1]} {values[1]:g} req/s against {settings[0]} {values[0]:g} req/s "
                     f"({values[1] / values[0]:.1f}x)" if values[0] else
                     f"\n- {target}: {settings[1]} {values[1]:g} req/s against {settings[0]} {values[0]:g} req/s")
    text += "\n\nServer settings compared in the same run:\n\n" + "".join(
        f"- **{name}**: `{json.dumps({k: v for k, v in s.items() if k != 'name'})}`\n"
        for name, s in load["server_settings"].items())
    text += "\nIn-process rate of each framework in the same run (one thread, batch 1, no server):\n\n" + table(
        ["framework", "calls/s", "p50 ms"],
        [[fw, e["calls_per_s"], e["p50_ms"]] for fw, e in load["in_process"].items()])
    for target in load["endpoints"]:
        png = root / "bench" / f"load-{target}.png"
        if png.exists():
            shutil.copyfile(png, out / png.name)
            text += f"\n![{target}](report/{png.name})\n"
    return text


def section_burst(inputs, out: Path, root: Path) -> str:
    text = "## A crowd at once: concurrent connections each endpoint holds\n\n"
    burst = inputs["burst"]
    if not burst:
        return text + missing("burst")
    requests = burst["requests_per_connection"]
    rows = [[target, e["largest_held"], e["p99_ms_at_largest_held"], e["largest_answered_in_full"], e["largest_tried"]]
            for target, e in burst["endpoints"].items()]
    text += (f"N clients connect at the same moment (each its own keep-alive connection or gRPC channel) and send "
             f"{requests} single-image requests each, without retries (`{burst['command']}`). A burst is *held* when "
             "every request is answered or explicitly refused (HTTP 503/429, gRPC RESOURCE_EXHAUSTED): no connection "
             "reset, no time-out, no unexplained error. Latency is send to answer of the answered requests; the "
             "client shares the cores with the servers.\n\n"
             + table(["endpoint", "largest burst held (connections)", "p99 ms there", "answered in full up to",
                      "largest tried"], rows) + "\n")
    cells = {(r["target"], r["connections"]): r for r in burst["runs"]}
    counts = sorted({r["connections"] for r in burst["runs"]})
    detail = []
    for target in burst["endpoints"]:
        row = [target]
        for count in counts:
            r = cells.get((target, count))
            dropped = r and r["reset"] + r["timed_out"] + r["errors"]
            row.append(None if r is None else f"{r['answered']:,}/{r['sent']:,}" + (f", {r['refused']:,} refused"
                       if r["refused"] else "") + (f", **{dropped:,} dropped**" if dropped else ""))
        detail.append(row)
    text += "Answered of sent per burst (dropped = reset, timed out or unexplained):\n\n" + table(
        ["endpoint", *[f"{count:,} x {requests}" for count in counts]], detail)
    png = root / "bench" / "burst.png"
    if png.exists():
        shutil.copyfile(png, out / png.name)
        text += f"\n![burst](report/{png.name})\n"
    return text
