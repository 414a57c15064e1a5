"""Pure plotting: metric data in, matplotlib Figure (or PNG bytes) out. No pyplot state."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ..plots_data import downsample_minmax

MAX_BUCKETS = 2000
DPI = 90


def pixel_buckets(width_in: float) -> int:
    """Min/max buckets for a chart ``width_in`` inches wide: one per pixel column across the whole
    figure (more than its axes hold), which draws the same picture as every point (a 10M-point
    series as 2,000 buckets spent ~70 ms of each redraw drawing 4,000 points into ~300 pixels)."""
    return min(MAX_BUCKETS, int(width_in * DPI))


def series_figure(
    name: str, steps: Any, values: Any, *, width: float = 4.2, height: float = 2.6, xlabel: str = "step"
) -> Any:
    """One metric's line plot, min/max downsampled so a million points draw fast."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    xs, ys = downsample_minmax(steps, values, pixel_buckets(width))
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_subplot()
    lone = len(xs) == 1  # a lone first point has no line to draw: mark it
    ax.plot(xs, ys, linewidth=1.2, color="#1f77b4", marker="o" if lone else None, markersize=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if lone:
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
    last = f"{ys[-1]:.4g}" if len(ys) else "-"
    points = f"{len(values):,} point" + ("" if len(values) == 1 else "s")
    ax.set_title(f"{name}  (last {last}, {points})", fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def overlay_figure(name: str, series: Sequence[tuple[str, Any, Any]], *, width: float = 6, height: float = 3.2) -> Any:
    """Several runs' values of one metric on one chart, one line per run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_subplot()
    for label, steps, values in series:
        xs, ys = downsample_minmax(steps, values, pixel_buckets(width))
        ax.plot(xs, ys, linewidth=1.2, label=label)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure_png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def best_so_far_figure(
    values: Sequence[float], goal: str, name: str, *, width: float = 4.2, height: float = 2.6
) -> Any:
    """A sweep's progress: each finished run's value (dots) and the best so far (a step line)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_subplot()
    best: list[float] = []
    for value in values:
        if not best:
            best.append(value)
        else:
            best.append(max(best[-1], value) if goal == "maximize" else min(best[-1], value))
    xs = list(range(1, len(values) + 1))
    ax.scatter(xs, values, s=14, color="#adb5bd", label="run")
    ax.step(xs, best, where="post", color="#198754", linewidth=1.6, label="best so far")
    ax.set_title(f"best {name} so far", fontsize=9)
    ax.set_xlabel("finished runs", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def parallel_coordinates_figure(
    rows: Sequence[dict[str, Any]],
    params: Sequence[str],
    metric: str,
    *,
    log_params: Sequence[str] = (),
    width: float = 6.2,
    height: float = 2.6,
) -> Any:
    """One line per run across its (normalised) parameters and the metric, coloured by the metric
    (with a colour bar); ``log_params`` (log-scale expressions) get log axes.

    Each column's scale is worked out once and the runs are drawn as one line collection, so a
    1,000-trial sweep draws in well under a second (a line and a scan of the column per run did not)."""
    import math

    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    axes_names = [*params, metric]
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_subplot()
    columns: dict[str, list[Any]] = {n: [r.get(n) for r in rows] for n in axes_names}
    numbers = {
        n: [v for v in column if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for n, column in columns.items()
    }

    def is_log(name: str) -> bool:
        numeric = numbers[name]
        if name == metric or len(numeric) != len(columns[name]) or not numeric or min(numeric) <= 0:
            return False
        return name in log_params or max(numeric) / min(numeric) > 100  # e.g. learning rates

    def scaler(name: str) -> Any:
        """value -> 0..1 on this column's axis."""
        column, numeric = columns[name], numbers[name]
        if len(numeric) != len(column):  # categorical: evenly spaced by first appearance
            levels = {level: i for i, level in enumerate(dict.fromkeys(str(v) for v in column))}
            return lambda value: levels[str(value)] / max(1, len(levels) - 1)
        lo, hi = min(numeric), max(numeric)
        if is_log(name):
            lo, hi = math.log(lo), math.log(hi)
            return lambda value: 0.5 if hi == lo else (math.log(value) - lo) / (hi - lo)
        return lambda value: 0.5 if hi == lo else (value - lo) / (hi - lo)

    scale = {n: scaler(n) for n in axes_names}
    log_axes = {n for n in axes_names if is_log(n)}
    metric_values = [v for v in columns[metric] if isinstance(v, (int, float))]
    cmap = colormaps["viridis"]
    lo = min(metric_values) if metric_values else 0.0
    hi = max(metric_values) if metric_values else 1.0
    lines, colours = [], []
    for row in rows:
        if row.get(metric) is None:
            continue
        lines.append([(x, scale[n](row.get(n))) for x, n in enumerate(axes_names)])
        colours.append(cmap(0.5 if hi == lo else (row[metric] - lo) / (hi - lo)))
    ax.add_collection(LineCollection(lines, colors=colours, alpha=0.8, linewidths=1.2))
    ax.autoscale_view()  # as one line per run did
    labels = [f"{n}\n(log)" if n in log_axes else n for n in axes_names]
    ax.set_xticks(range(len(axes_names)), labels, fontsize=8)
    ax.set_yticks([])
    if metric_values:
        bar = fig.colorbar(ScalarMappable(norm=Normalize(lo, hi), cmap=cmap), ax=ax, pad=0.02, fraction=0.05)
        bar.set_label(metric, fontsize=8)
        bar.ax.tick_params(labelsize=7)
    for x, name in enumerate(axes_names):
        ax.axvline(x, color="#999", linewidth=0.8)
        numeric = numbers[name]
        if numeric and len(numeric) == len(columns[name]):
            for y, value in ((0.0, min(numeric)), (1.0, max(numeric))):
                ax.annotate(
                    f"{value:.3g}",
                    (x, y),
                    fontsize=7,
                    color="#555",
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                )
    ax.set_title("parameters → " + metric, fontsize=9)
    fig.tight_layout()
    return fig
