"""What ``%launchbay runs|metrics|compare`` display: HTML tables and plots, with text fallbacks."""

from __future__ import annotations

import argparse
import html
import time
from typing import Any

from ..errors import LaunchbayError
from .widgets import status_badge


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


def display_metrics(ref: str, names: list[str]) -> None:
    from IPython.display import HTML, Image, display

    from ..api import get_run
    from ..cli.metrics import available, describe
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
    for s in summaries:
        series = handle.series_since(s["name"], record=record)
        display(Image(data=figure_png(series_figure(s["name"], series.steps, series.values))))
        print(f"{s['name']}: {s['count']:,} points, last at step {s['last_step']}")
    for entry in logged:
        if entry.kind == "image":
            display(Image(data=handle.file_path(entry.images[-1]["file"], record=record).read_bytes()))
        elif entry.kind == "list":
            values = [float(v) if isinstance(v, (int, float)) else float("nan") for v in entry.values]
            display(
                Image(
                    data=figure_png(
                        series_figure(f"{entry.name} (list)", list(range(len(values))), values, xlabel="index")
                    )
                )
            )
        else:
            display(HTML(table_html(entry)))
        print(describe(entry, record.run_id).split("\n")[0])


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
