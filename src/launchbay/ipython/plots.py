"""Pure plotting: metric data in, matplotlib Figure (or PNG bytes) out. No pyplot state."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ..plots_data import downsample_minmax

MAX_BUCKETS = 2000


def series_figure(name: str, steps: Any, values: Any, *, width: float = 4.2, height: float = 2.6) -> Any:
    """One metric's line plot, min/max downsampled so a million points draw fast."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    xs, ys = downsample_minmax(steps, values, MAX_BUCKETS)
    fig = Figure(figsize=(width, height), dpi=90)
    ax = fig.add_subplot()
    lone = len(xs) == 1  # a lone first point has no line to draw: mark it
    ax.plot(xs, ys, linewidth=1.2, color="#1f77b4", marker="o" if lone else None, markersize=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    if lone:
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
    last = f"{ys[-1]:.4g}" if len(ys) else "-"
    points = f"{len(values):,} point" + ("" if len(values) == 1 else "s")
    ax.set_title(f"{name}  (last {last}, {points})", fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def overlay_figure(name: str, series: Sequence[tuple[str, Any, Any]], *, width: float = 6, height: float = 3.2) -> Any:
    """Several runs' values of one metric on one chart, one line per run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    ax = fig.add_subplot()
    for label, steps, values in series:
        xs, ys = downsample_minmax(steps, values, MAX_BUCKETS)
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
