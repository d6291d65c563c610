"""The report's PNG charts (matplotlib, files only). Each takes plain rows and writes one file."""
from __future__ import annotations

from pathlib import Path

from serving.load.plots import pyplot as _pyplot
from serving.load.plots import save as _save

COLOURS = {"torch": "tab:red", "tensorflow": "tab:orange"}


def bars(rows: list[tuple[str, float, str]], out: Path, title: str, xlabel: str, log: bool = False) -> Path:
    """Horizontal bars: rows of (label, value, framework), coloured by framework."""
    plt = _pyplot()
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
    return _save(plt, fig, out)


def lines(series: dict[str, tuple[list, list]], out: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """One line per name: {name: (x values, y values)}, log-log."""
    plt = _pyplot()
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
    return _save(plt, fig, out)


MARKS = {"default": ("s", "black"), "latency": ("^", "tab:blue"), "throughput": ("*", "tab:green")}


def pareto(points: list[tuple[str, float, float]], marks: dict[str, list[str]], out: Path, title: str) -> Path:
    """Every point as (label, capacity req/s, one-client p50 ms); `marks` {label: roles} outlines the default and
    the profiles; the line joins the points no other point beats on both axes (the Pareto front)."""
    plt = _pyplot()
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
    return _save(plt, fig, out)
