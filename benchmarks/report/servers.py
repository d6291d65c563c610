"""REPORT.md's server sections: every server side by side against the model in-process, many requests
in flight by the native generator, where KServe's and TorchServe's latency goes, and which server to pick.

Reads serving.json and concurrent.json (make bench-serving), kserve-breakdown.json (make bench TOOL=kserve-breakdown),
torchserve-breakdown.json (make bench TOOL=torchserve-breakdown) and, where measured, the load sweep's capacity and
memory (make loadtest-sweep). Nothing is measured here.
"""
from __future__ import annotations

import json

from benchmarks.report.figures import missing, server_latency, server_memory, table
from core import registry, servers

GOAL_X = 10  # KServe V2 REST p50 within this many times the model in-process
TORCHSERVE_GOAL_X = 20  # TorchServe's latency profile, REST p50 within this many times the model in-process


def protocol_of(name: str) -> str:
    if name.startswith("kserve"):
        return "V2 " + name.rsplit("-", 1)[1].replace("rest", "REST").replace("grpc", "gRPC")
    return name.rsplit("-", 1)[1].replace("rest", "REST").replace("grpc", "gRPC")


def side_by_side(inputs) -> str:
    text = "## Every server beside the model in-process\n\n"
    latency = server_latency(inputs)
    if not latency:
        return text + missing("serving")
    in_process = {registry.TARGETS[name].framework: latency[name][0]
                  for name in registry.IN_PROCESS.values() if name in latency}
    rows = []
    for name, (p50, p99, framework) in latency.items():
        target = registry.TARGETS.get(name)
        if target is None or target.server is None:
            continue
        base = in_process.get(framework)
        rows.append([target.server, protocol_of(name), framework, p50, p99,
                     f"{p50 / base:.1f}x" if base else "-"])
    rows += [[f"in-process ({name})", "-", registry.TARGETS[name].framework, latency[name][0], latency[name][1], "1.0x"]
             for name in registry.IN_PROCESS.values() if name in latency]
    return (text + f"One client thread, sequential calls, batch 1, every server of `make serve` in one run, with "
            "the settings it starts them with (PROFILE unset: each server's defaults; the settings search below "
            "measures the profiles) "
            f"(`{inputs['serving'].get('command', 'make bench-serving')}`); the ratio is to the same framework's "
            "model called in-process.\n\n"
            + table(["server", "protocol", "framework", "p50 ms", "p99 ms", "x in-process"], rows))


def breakdown(inputs) -> str:
    text = "## Where KServe's V2 REST latency goes\n\n"
    found = inputs.get("kserve_breakdown")
    if not found:
        return text + missing("kserve_breakdown")
    rows = [[r["framework"], r["stage"], r["p50_ms"], r["p99_ms"], f"{r['x_model']:.1f}x"] for r in found["results"]]
    goals = []
    for framework in dict.fromkeys(r["framework"] for r in found["results"]):
        stages = {r["stage"]: r for r in found["results"] if r["framework"] == framework}
        if "kserve" in stages:
            x = stages["kserve"]["x_model"]
            floor = stages.get("floor", {}).get("x_model")
            trip = stages.get("HTTP round trip", {}).get("x_model")
            goals.append(f"{framework}: KServe V2 REST {x:.1f}x the model (goal {GOAL_X}x: "
                         f"{'met' if x <= GOAL_X else 'not met'}); the bare ASGI floor {floor}x, the HTTP round "
                         f"trip alone {trip}x")
    return (text + "The same V2 JSON request (one image), one keep-alive client, each stage on its own server on "
            f"free loopback ports (`{found.get('command', 'make bench TOOL=kserve-breakdown')}`). "
            "\"model + V2 JSON\" is what a server does with the body (decode, the V2 and spec checks, encode) "
            "without HTTP; \"floor\" is that "
            "in a bare ASGI app on the same uvicorn; \"kserve + logging\" turns kserve's default access and "
            "latency lines back on.\n\n" + table(["framework", "stage", "p50 ms", "p99 ms", "x model"], rows)
            + "\n" + "".join(f"- {goal}.\n" for goal in goals))


def in_flight(inputs) -> str:
    text = "## Many requests in flight: default settings against the measured profiles\n\n"
    found = inputs.get("concurrent")
    if not found:
        return text + missing("concurrent")
    ratios = {(r["target"], r["concurrency"], r["setting"]): r["ratio"] for r in found["ratios"]}
    rows = []
    for r in found["rows"]:
        if "error" in r:
            rows.append([r["target"], r["concurrency"], r["setting"], "failed", "-", "-", "-", r["error"][:80]])
            continue
        ratio = ratios.get((r["target"], r["concurrency"], r["setting"]))
        rows.append([r["target"], r["concurrency"], r["setting"], f"{r['infer_per_s']:,.0f}", r["p50_ms"], r["p99_ms"],
                     f"{r['generator_cpu']['cpu_cores']:.2f}" + (" (limited)" if r["generator_limited"] else ""),
                     f"{ratio:.2f}x" if ratio is not None else "-"])
    return (text + f"NVIDIA's perf_analyzer ({found['generator']}), a C++ client that costs the shared cores "
            "little, keeps N requests in flight (one test image each) until its measurement windows of "
            f"{found['window_seconds']:g} s agree; every setting on its own servers on free ports, in one run "
            f"(`{found['command']}`). TF Serving: {found['tfserving']}. The generator's CPU is its process's "
            "over the run; *limited* when it used >= 90% of its cores.\n\n"
            + table(["target", "in flight", "settings", "infer/s", "p50 ms", "p99 ms", "generator cores",
                     "x default"], rows) + in_flight_goals(found["rows"]))


# The throughput profile's goals at 64 requests in flight: target -> (times the default's infer/s, infer/s at least).
IN_FLIGHT_GOALS = {"tfserving-grpc": (2.0, 2000), "torchserve-rest": (1.5, 0)}


def in_flight_goals(rows: list[dict]) -> str:
    """One line per goal of IN_FLIGHT_GOALS, met or not, from the rows of one run."""
    rate = {(r["target"], r["setting"]): r.get("infer_per_s") for r in rows if r.get("concurrency") == 64}
    lines = []
    for target, (times, least) in IN_FLIGHT_GOALS.items():
        default, throughput = rate.get((target, "default")), rate.get((target, "throughput"))
        if not (default and throughput):
            continue
        ratio = throughput / default
        met = ratio >= times and throughput >= least
        wanted = f">= {times:g}x the default" + (f" and >= {least:,} infer/s" if least else "")
        line = (f"- {target}, 64 in flight: the throughput profile {throughput:,.0f} infer/s, {ratio:.2f}x the "
                f"default's {default:,.0f} (goal {wanted}): {'met' if met else 'not met'}")
        latency = rate.get((target, "latency"))
        if latency:
            line += f"; {throughput / latency:.2f}x the latency profile's {latency:,.0f}"
        lines.append(line + ".\n")
    return "\n" + "".join(lines) if lines else ""


def torchserve_breakdown(inputs) -> str:
    text = "## Where TorchServe's REST latency goes, and what can be cut\n\n"
    found = inputs.get("torchserve_breakdown")
    if not found:
        return text + missing("torchserve_breakdown")
    model = found["in_process"]
    rows = [[f"in-process ({model['target']})", "-", model["p50_ms"], model["p99_ms"], "1.0x", "-", "-"]]
    for r in found["stages"]:
        server = r.get("server") or {}
        rows.append([r["stage"], f"`{json.dumps(r['changes'])}`" if r["changes"] else r["client"], r["p50_ms"],
                     r["p99_ms"], f"{r['x_in_process']:.1f}x", server.get("frontend_us", "-"),
                     server.get("queue_us", "-")])
    text += ("One client, one test image per call, sequential; each stage a TorchServe of its own on free ports, "
             "the latency profile plus the stage's changes, every stage run "
             f"{found.get('rounds', 1)} time(s) in turn and pooled (`{found['command']}`). TorchServe's own "
             "figures are means per request from its Prometheus counters over the timed calls "
             "(ts_inference_latency_microseconds: the frontend taking the request to its answer; "
             "ts_queue_latency_microseconds: waiting for the worker); a stage with the metrics in the log has "
             "none.\n\n" + table(["stage", "changes / client", "p50 ms", "p99 ms", "x in-process",
                                     "frontend us", "queue us"], rows))
    timed = next((r for r in found["stages"] if r.get("pieces")), None)
    if timed:
        text += (f"\nOne request piece by piece (stage \"{timed['stage']}\": means, the client's round trip "
                 f"{timed['mean_us']:,.0f} us): TorchServe's counters and the handler's own timers "
                 "(serving/torchserve/handler.py).\n\n"
                 + table(["piece", "us", "share"], [[p["piece"], p["mean_us"], f"{p['share']:.0%}"]
                                                   for p in timed["pieces"]]))
    stages = {r["stage"]: r for r in found["stages"]}
    if "latency profile" in stages:
        x, goal = stages["latency profile"]["x_in_process"], found.get("goal_x", TORCHSERVE_GOAL_X)
        best = min(found["stages"], key=lambda r: r["p50_ms"])
        text += (f"\n- The latency profile's REST p50 is {x:.1f}x the model in-process (goal "
                 f"{goal}x: {'met' if x <= goal else 'not met'}); "
                 f"the fastest stage, \"{best['stage']}\", {best['x_in_process']:.1f}x.\n")
    return text


def which_server(inputs) -> str:
    text = "## Which server to pick\n\n"
    latency, memory = server_latency(inputs), server_memory(inputs)
    capacity = (inputs["load"] or {}).get("endpoints", {})
    rows = []
    # What no benchmark measures (what each server is, speaks, needs, how it is kept up): each row's `about`.
    for server, row in servers.SERVERS.items():
        if row.about is None:
            continue
        what, protocol, maintenance, needs = row.about.what, row.about.protocol, row.about.maintenance, row.about.needs
        names = [name for name, target in registry.TARGETS.items() if target.server == server]
        p50 = " / ".join(f"{latency[n][0]:.2f} ({protocol_of(n)})" for n in names if n in latency) or "-"
        rps = " / ".join(f"{capacity[n]['capacity_rps']:g}" for n in names if n in capacity) or "-"
        rss = (memory.get(server) or {}).get("peak_mb", "-")
        rows.append([server, what, protocol, p50, rps, rss, maintenance, needs])
    notes = [] if latency else [missing("serving")]
    notes += [] if inputs["load"] else [missing("load")]
    sweep = f" (`{inputs['load']['command']}`, default settings)" if inputs["load"] else ""
    return (text + "Latency from the side-by-side run above; capacity (req/s at p99 <= 50 ms, all answered) and "
            f"peak RSS per replica (the server's process tree) from the load sweep{sweep}.\n\n" + "".join(notes)
            + table(["server", "what", "protocol", "p50 ms", "capacity req/s", "peak RSS MiB", "maintenance",
                     "needs to run"], rows)
            + "\n" + "".join(f"- {line}\n" for line in verdicts(latency)))


def verdicts(latency: dict) -> list[str]:
    """One measured sentence per framework: KServe's V2 REST against the framework's other server's REST."""
    lines = []
    for framework, kserve, other in (("PyTorch", "kserve-torch-v2-rest", "torchserve-rest"),
                                     ("TensorFlow", "kserve-tf-v2-rest", "tfserving-rest")):
        if kserve in latency and other in latency:
            a, b = latency[kserve][0], latency[other][0]
            lines.append(f"{framework}: KServe V2 REST p50 {a:.2f} ms against {other} {b:.2f} ms "
                         f"({max(a, b) / min(a, b):.1f}x {'faster' if a < b else 'slower'}), "
                         "with one protocol and one client for both frameworks.")
    return lines


def section_servers(inputs) -> str:
    return (side_by_side(inputs) + "\n" + in_flight(inputs) + "\n" + breakdown(inputs) + "\n"
            + torchserve_breakdown(inputs) + "\n" + which_server(inputs))
