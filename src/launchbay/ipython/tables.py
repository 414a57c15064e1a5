"""What ``%launchbay runs|metrics|compare`` display: HTML tables and plots, with text fallbacks."""

from __future__ import annotations

import argparse
import html
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LaunchbayError
from .widgets import status_badge

if TYPE_CHECKING:
    from ..logged import Logged


class Table:
    """Rows shown as an HTML table in notebooks and aligned text elsewhere."""

    def __init__(
        self,
        header: list[str],
        rows: list[list[Any]],
        html_cells: list[list[str]] | None = None,
        highlight: set[int] | None = None,
    ) -> None:
        self.header, self.rows, self.html_cells, self.highlight = header, rows, html_cells, highlight or set()

    def __repr__(self) -> str:
        rows = [self.header, *[[str(c) for c in r] for r in self.rows]]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = []
        cells = self.html_cells or [[html.escape(str(c)) for c in r] for r in self.rows]
        for i, row in enumerate(cells):
            style = ' style="background:#fff3cd"' if i in self.highlight else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
        return f'<table class="lb-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:,.1f} s"


def display_runs(argv: list[str]) -> Table:
    from ..api import runs

    parser = argparse.ArgumentParser(prog="%launchbay runs", add_help=False)
    parser.add_argument("--experiment")
    parser.add_argument("--status")
    parser.add_argument("--limit", type=int, default=50)
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        raise LaunchbayError("Usage: %launchbay runs [--experiment E] [--status S] [--limit N]") from None
    records = runs(args.experiment, status=args.status, limit=args.limit)
    header = ["run", "name", "experiment", "status", "target", "started", "duration", "metrics"]
    rows, cells = [], []
    for r in records:
        metric = f"{r.primary_metric['name']}={r.primary_metric['value']:.4g}" if r.primary_metric else ""
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started or r.created))
        row = [r.run_id, r.name or "", r.experiment, r.status.value, r.target, started, _duration(r.duration_s), metric]
        rows.append(row)
        cells.append(
            [
                f"<code>{html.escape(r.run_id)}</code>",
                html.escape(r.name or ""),
                html.escape(r.experiment),
                status_badge(r.status.value),
                html.escape(r.target),
                started,
                _duration(r.duration_s),
                html.escape(metric),
            ]
        )
    return Table(header, rows, cells)


class Shown:
    """A chart, picture or table where the front end shows one, and ``text`` where only text shows
    (terminal IPython: a sparkline or the values, not ``<IPython.core.display.Image object>``).
    ``rich`` (mime type -> data) is called only for a front end that takes more than text."""

    def __init__(self, text: str, rich: Callable[[], dict[str, Any]]) -> None:
        self.text, self.rich = text, rich

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from IPython import get_ipython

        shell = get_ipython()
        data: dict[str, Any] = {"text/plain": self.text}
        if shell is not None and set(shell.display_formatter.active_types) - {"text/plain"}:
            data.update(self.rich())
        return data


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Any, width: int = 40) -> str:
    """``values`` as at most ``width`` bars, each the mean of its share of the points; a share with
    no finite value is a space."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return ""
    edges = np.linspace(0, len(v), min(width, len(v)) + 1).astype(np.int64)
    means = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = v[lo:hi]
        part = part[np.isfinite(part)]
        means.append(part.mean() if len(part) else np.nan)
    m = np.array(means)
    finite = np.isfinite(m)
    if not finite.any():
        return " " * len(m)
    low, high = m[finite].min(), m[finite].max()
    span = (high - low) or 1.0
    levels = np.round((np.where(finite, m, low) - low) / span * (len(SPARK) - 1)).astype(np.int64)
    return "".join(SPARK[i] if ok else " " for i, ok in zip(levels, finite))


def _spark_text(values: Any) -> str:
    line = sparkline(values)
    return f"  {line}" if line.strip() else "  (no finite value to draw)"


def display_metrics(ref: str, names: list[str]) -> None:
    """Each series' summary line and chart, each logged entry's summary and picture or table; a
    terminal gets a sparkline, the values or the table as text in place of the picture."""
    from IPython.display import Image, display

    from ..api import get_run
    from ..cli.metrics import available, describe, scalar_text
    from .logged_view import table_html
    from .plots import figure_png, series_figure

    handle = get_run(ref)
    record = handle.record()
    summaries = [s for s in handle.metric_summaries(record=record) if not names or s["name"] in names]
    logged = handle.get_logged(names or None, record=record)
    if not summaries and not logged:
        print(
            f"Run {record.run_id} has logged nothing{' named ' + ', '.join(names) if names else ''}; it has: "
            f"{available(handle.session.store, record)}."
        )

    def chart(name: str, steps: Any, values: Any, xlabel: str = "step") -> dict[str, Any]:
        return {"image/png": figure_png(series_figure(name, steps, values, xlabel=xlabel))}

    def picture(path: Path) -> dict[str, Any]:
        data, _metadata = Image(data=path.read_bytes())._repr_mimebundle_()
        return dict(data)

    def table(entry: Logged) -> dict[str, Any]:
        return {"text/html": table_html(entry)}

    for s in summaries:
        series = handle.series_since(s["name"], record=record)
        print(scalar_text(s))
        display(Shown(_spark_text(series.values), partial(chart, s["name"], series.steps, series.values)))
    for entry in logged:
        head, _, text = describe(entry, record.run_id).partition("\n")
        print(head)
        if entry.kind == "image":
            path = handle.file_path(entry.images[-1]["file"], record=record)
            display(Shown(text, partial(picture, path)))
        elif entry.kind == "list":
            values = [float(v) if isinstance(v, (int, float)) else float("nan") for v in entry.values]
            plot = partial(chart, f"{entry.name} (list)", list(range(len(values))), values, "index")
            display(Shown(f"{text}\n{_spark_text(values)}", plot))
        else:
            display(Shown(text, partial(table, entry)))


def display_compare(refs: list[str]) -> Table:
    """Parameters side by side (differences highlighted) and each shared metric overlaid."""
    from IPython.display import Image, display

    from ..api import get_run
    from .plots import figure_png, overlay_figure

    if len(refs) < 2:
        raise LaunchbayError("Usage: %launchbay compare RUN_A RUN_B [RUN_C ...]")
    handles = [get_run(r) for r in refs]
    records = [h.record() for h in handles]
    names: list[str] = []
    for handle, record in zip(handles, records):
        for s in handle.metric_summaries(record=record):
            if s["name"] not in names:
                names.append(s["name"])
    for name in names:
        lines = [(r.run_id, *_arrays(h.series_since(name, record=r))) for h, r in zip(handles, records)]
        display(Image(data=figure_png(overlay_figure(name, lines))))
    keys: list[str] = ["target", "script", "arguments"]
    for record in records:
        keys += [f"param:{k}" for k in record.params if f"param:{k}" not in keys]
        keys += [f"tag:{k}" for k in record.tags if f"tag:{k}" not in keys]
    rows, highlight = [], set()
    for i, key in enumerate(keys):
        values = [_value(r, key) for r in records]
        rows.append([key, *values])
        if len(set(values)) > 1:
            highlight.add(i)
    return Table(["", *[r.run_id for r in records]], rows, highlight=highlight)


def _arrays(series: Any) -> tuple[Any, Any]:
    return series.steps, series.values


def _value(record: Any, key: str) -> str:
    if key.startswith("param:"):
        return str(record.params.get(key[6:], ""))
    if key.startswith("tag:"):
        return str(record.tags.get(key[4:], ""))
    value = getattr(record, key)
    return " ".join(value) if isinstance(value, list) else str(value)
