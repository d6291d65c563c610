"""Every PNG chart of the measurements (matplotlib, files only): the report's, and the load tools' own.

    charts.bars(rows, out, title, xlabel)                 # the report's: plain rows in, one file out
    charts.latency_vs_load(json.loads(Path("artifacts/bench/load-torchserve-grpc.json").read_text()), "out.png")
    charts.burst(json.loads(Path("artifacts/bench/burst.json").read_text()), "burst.png")
"""
from __future__ import annotations

from pathlib import Path

COLOURS = {"torch": "tab:red", "tensorflow": "tab:orange"}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def latency_vs_load(result: dict, out: Path) -> Path:
    """p50 and p99 against offered rate, one colour per server setting (squares: generator and servers
    pinned to separate cores), with the objective as a line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    by_mode = result.get("by_mode") or {result.get("pinning", "unpinned"): result["settings"]}
    for mode, settings in by_mode.items():
        marker, suffix = ("s", " pinned") if mode == "pinned" else ("o", "")
        for (name, setting), colour in zip(settings.items(), ("tab:blue", "tab:orange", "tab:green"), strict=False):
            # In rate order: the search bisects, so its steps ran out of order.
            steps = sorted((s for s in setting["steps"] if s["p99_ms"] is not None), key=lambda s: s["offered_rps"])
            offered = [s["offered_rps"] for s in steps]
            ax.plot(offered, [s["p50_ms"] for s in steps], marker + "--", color=colour, label=f"{name}{suffix} p50",
                    alpha=0.6 if suffix else 1.0)
            ax.plot(offered, [s["p99_ms"] for s in steps], marker + "-", color=colour, label=f"{name}{suffix} p99",
                    alpha=0.6 if suffix else 1.0)
    ax.axhline(result["slo_p99_ms"], color="grey", linestyle=":", label=f"objective p99 {result['slo_p99_ms']:g} ms")
    ax.set(xscale="log", yscale="log", xlabel="offered load (requests/s, Poisson arrivals)",
           ylabel="latency from scheduled send (ms)", title=f"{result['target']}: latency against offered load")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):  # plain numbers on log axes
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(plt, fig, out)


def burst(result: dict, out: Path) -> Path:
    """Against concurrent connections, per endpoint: the share of requests answered (left), p50 and p99 (right)."""
    plt = pyplot()
    fig, (share, latency) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    palette = plt.get_cmap("tab10").colors
    targets = list(dict.fromkeys(run["target"] for run in result["runs"]))
    for colour, target in zip(palette, targets, strict=False):
        runs = sorted((r for r in result["runs"] if r["target"] == target), key=lambda r: r["connections"])
        xs = [r["connections"] for r in runs]
        share.plot(xs, [100.0 * r["answered"] / r["sent"] for r in runs], "o-", color=colour, label=target)
        dropped = [(r["connections"], 100.0 * r["answered"] / r["sent"]) for r in runs if not r["held"]]
        if dropped:  # a burst with resets, time-outs or unexplained errors
            share.plot(*zip(*dropped, strict=False), "x", color=colour, markersize=12, markeredgewidth=2)
        timed = [r for r in runs if r["p99_ms"] is not None]
        latency.plot([r["connections"] for r in timed], [r["p50_ms"] for r in timed], "o--", color=colour,
                     label=f"{target} p50")
        latency.plot([r["connections"] for r in timed], [r["p99_ms"] for r in timed], "o-", color=colour,
                     label=f"{target} p99")
    share.set(xscale="log", ylim=(-5, 105), xlabel="concurrent connections",
              ylabel="requests answered (%)", title="answered (x: some dropped)")
    latency.set(xscale="log", yscale="log", xlabel="concurrent connections", ylabel="latency of answered (ms)",
                title=f"p50 / p99, {result['requests_per_connection']} requests per connection")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for ax in (share, latency):
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(sorted({r["connections"] for r in result["runs"]}))
        ax.grid(True, which="both", alpha=0.3)
    share.legend(fontsize=8)
    latency.legend(fontsize=7, ncol=2)
    return save(plt, fig, out)


def save(plt, fig, out: Path) -> Path:
    """Write the figure as a PNG (creating its folder) and free it."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def bars(rows: list[tuple[str, float, str]], out: Path, title: str, xlabel: str, log: bool = False) -> Path:
    """Horizontal bars: rows of (label, value, framework), coloured by framework."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 0.35 * len(rows) + 1.4))
    labels = [label for label, _, _ in rows]
    ax.barh(labels, [value for _, value, _ in rows], color=[COLOURS.get(fw, "tab:grey") for _, _, fw in rows])
    ax.invert_yaxis()
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colour, label=fw) for fw, colour in COLOURS.items()], fontsize=8)
    if log:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return save(plt, fig, out)


def lines(series: dict[str, tuple[list, list]], out: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """One line per name: {name: (x values, y values)}, log-log."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    palette = plt.get_cmap("tab20").colors  # 20 distinct colours: every target gets its own
    for number, (name, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, "o-", label=name, color=palette[number % len(palette)])
    ax.set(xscale="log", yscale="log", title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_xticks(sorted({x for xs, _ in series.values() for x in xs}))
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save(plt, fig, out)


MARKS = {"default": ("s", "black"), "latency": ("^", "tab:blue"), "throughput": ("*", "tab:green")}


def pareto(points: list[tuple[str, float, float]], marks: dict[str, list[str]], out: Path, title: str) -> Path:
    """Every point as (label, capacity req/s, one-client p50 ms); `marks` {label: roles} outlines the default and
    the profiles; the line joins the points no other point beats on both axes (the Pareto front)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    ax.scatter([c for _, c, _ in points], [p for _, _, p in points], color="tab:grey", zorder=2, label="grid point")
    for label, capacity, p50 in points:
        ax.annotate(label, (capacity, p50), fontsize=7, xytext=(4, 3), textcoords="offset points")
        for role in marks.get(label, []):
            marker, colour = MARKS[role]
            ax.scatter([capacity], [p50], marker=marker, s=160, facecolors="none", edgecolors=colour, linewidths=1.8,
                       zorder=3, label=role)
    front = [(c, p) for _, c, p in points
             if not any(c2 >= c and p2 <= p and (c2, p2) != (c, p) for _, c2, p2 in points)]
    if len(front) > 1:
        ax.plot(*zip(*sorted(front), strict=False), "-", color="tab:grey", alpha=0.5, zorder=1, label="Pareto front")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.set(yscale="log", title=title, xlabel="capacity (req/s at p99 <= 50 ms, weakest endpoint)",
           ylabel="one-client p50 (ms, slowest endpoint)")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())  # plain numbers on the log axis
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    return save(plt, fig, out)
