"""REPORT.md's scale-out section: Ray Serve at 1, 2 and 4 replicas, batching on and off, beside KServe and
TorchServe, from bench/scale.json (`make bench TOOL=scale`, benchmarks/scale.py). Nothing is measured here."""
from __future__ import annotations

from benchmarks.report.figures import missing, table


def section_scale(inputs) -> str:
    text = "## Scaling out: Ray Serve replicas and batching\n\n"
    report = inputs.get("scale")
    if not report:
        return text + missing("scale")
    cores = report.get("cores", "?")
    text += (f"Capacity is the highest offered rate (open loop, Poisson arrivals) whose p99 stayed within "
             f"{report.get('slo_p99_ms', 50):g} ms with every request answered; memory is the RSS of the server's "
             f"whole process tree (for Ray Serve: the head's processes and every replica), idle and at its peak "
             f"under load. Every configuration ran alone on this {cores}-core machine, the load generator on the "
             f"same cores, in one run: `{report.get('command', 'make bench TOOL=scale')}` "
             f"({report.get('measured_at', '-')}, {report.get('seconds', '-')} s).\n\n")
    rows = [[line["target"], line["config"], line["capacity_rps"], line["rps_per_core"], line["one_client_p50_ms"],
             line["idle_mb"], line["peak_mb"], line["error"] or ""] for line in report.get("table", [])]
    text += table(["endpoint", "configuration", "capacity req/s", "req/s per core", "one client p50 ms",
                   "idle MB", "peak MB", "error"], rows)
    ray = {(line["replicas"], line["batching"]): line for line in report.get("table", [])
           if line["server"] == "rayserve" and line["capacity_rps"]}
    if ray:
        best = max(ray.values(), key=lambda line: line["capacity_rps"])
        one = ray.get((1, best["batching"]))
        text += (f"\nThe most Ray Serve answered within the objective: {best['capacity_rps']:g} req/s "
                 f"({best['config']}).")
        if one and best is not one:
            text += (f" One replica with the same batching: {one['capacity_rps']:g} req/s, so "
                     f"{best['replicas']} replicas gave {best['capacity_rps'] / one['capacity_rps']:.2f}x.")
        idle = {count: line["idle_mb"] for (count, _), line in ray.items() if line["idle_mb"]}
        if len(idle) > 1:
            low, high = min(idle), max(idle)
            text += (f" Each replica added about {(idle[high] - idle[low]) / (high - low):.0f} MB resident "
                     f"(idle, {low} to {high} replicas).")
        text += ("\n\n" + PAPER)
    return text


# What the table means for a user, on paper: the measured figures above are the only evidence.
PAPER = ("On 2 cores the replica curve flattens early: the model is a fraction of a millisecond, so a request's "
         "cost is the proxy's HTTP parsing, the hop from proxy to replica and the replica's V2 JSON, all Python, "
         "and the load generator and the single proxy share the same two cores with the replicas. Past as many busy "
         "replicas as there are cores, another replica only adds a process to schedule and its memory. "
         "Batching merges the model calls, not the per-request JSON and hops, so it helps only where the forward "
         "pass is a real share of the work (a wider network, larger requests). On a cluster each node runs its own "
         "proxy (`proxy_location: EveryNode`, deploy/kuberay/): capacity should grow with nodes roughly by the "
         "per-core figure above times the cores given to replicas, as long as the load balancer spreads "
         "connections over the nodes' proxies; that is extrapolated, not measured here.\n")
