"""What ``%launchbay models`` and ``%launchbay diff A B`` display in a notebook."""

from __future__ import annotations

import html
from typing import Any

from ..errors import LaunchbayError
from .tables import Table


def display_models() -> Table:
    """Every registered model as a table: latest version, how many versions, producing run."""
    from ..api import models
    from ..snapshot import human_bytes

    rows, cells = [], []
    for m in models():
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(m["metrics"].items())[:3])
        row = [
            m["name"],
            m["latest_version"],
            m["versions"],
            m["run_id"] or "-",
            m["path"],
            human_bytes(m["bytes"]),
            metrics,
        ]
        rows.append(row)
        cells.append(
            [html.escape(str(c)) for c in row[:3]]
            + [f"<code>{html.escape(str(row[3]))}</code>"]
            + [html.escape(str(c)) for c in row[4:]]
        )
    if not rows:
        print("No models yet: register one with run.register_model(NAME, path=...).")
    return Table(["model", "latest", "versions", "run", "path", "size", "metrics"], rows, cells)


def display_diff(refs: list[str]) -> Table:
    """Metrics overlaid (matplotlib), then the code diff as text; returns the settings table."""
    from IPython.display import Image, display

    from ..api import get_run
    from ..diffing import diff_runs, environment_rows, render_text
    from .plots import figure_png, overlay_figure

    if len(refs) != 2:
        raise LaunchbayError("Usage: %launchbay diff RUN_A RUN_B")
    handles = [get_run(r) for r in refs]
    records = [h.record() for h in handles]
    diff = diff_runs(handles[0].session.store, records[0], records[1])
    for metric in diff["metrics"]:
        lines = [(r.run_id, *_arrays(h.series_since(metric["name"], record=r))) for h, r in zip(handles, records)]
        display(Image(data=figure_png(overlay_figure(metric["name"], lines))))
    text = render_text(diff)
    print(text[text.index("Metrics (final / best):") :])
    rows, highlight = [], set()
    for i, row in enumerate([*diff["settings"], *environment_rows(records[0], records[1])]):
        rows.append([("* " if row["differs"] else "") + row["key"], _show(row["a"]), _show(row["b"])])
        if row["differs"]:
            highlight.add(i)
    return Table(["", records[0].run_id, records[1].run_id], rows, highlight=highlight)


def _arrays(series: Any) -> tuple[Any, Any]:
    return series.steps, series.values


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
