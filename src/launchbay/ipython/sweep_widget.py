"""The live sweep widget: a table of its runs, the best-so-far curve, parallel coordinates."""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..models import shown_status
from ..sweeps.names import RETRY_TAG
from .plots import best_so_far_figure, figure_png, parallel_coordinates_figure
from .widgets import status_badge

if TYPE_CHECKING:
    from ..sweeps.handle import SweepHandle

POLL_S = 1.0
PLOTS_EVERY_S = 5.0  # at least this long between plot redraws (the table and header update every poll)


class RowCache:
    """The rows a widget has shown, by run id, and when the store was last read: a poll reads only
    the trials that changed since (a 1,000-trial sweep's finished rows are not read again)."""

    OVERLAP_S = 5.0  # re-read what changed shortly before the last read (a write committing late)

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.order: dict[str, tuple[float, int]] = {}  # run id -> (created, pk): oldest first
        self.unfinished: set[str] = set()  # caught up with their journals at every poll, changed or not
        self.read_at: float | None = None


def sweep_rows(sweep: SweepHandle, cache: RowCache | None = None) -> tuple[list[dict[str, Any]], list[str], str, str]:
    """(rows oldest first, parameter names, metric name, goal) for tables and plots."""
    config = sweep.config()
    metric, goal = config["primary_metric"], config.get("goal", "minimize")
    cache = cache or RowCache()
    since = None if cache.read_at is None else cache.read_at - RowCache.OVERLAP_S
    cache.read_at = time.time()
    children = sweep.children(updated_since=since)
    seen = {r.run_id for r in children}
    children += [sweep.session.refresh(run_id) for run_id in cache.unfinished - seen]
    last = sweep.last_values(children, metric)
    for record in children:
        if RETRY_TAG in record.tags:  # a trial run again replaces the cut-off child
            cache.rows.pop(record.tags[RETRY_TAG], None)
            cache.order.pop(record.tags[RETRY_TAG], None)
            cache.unfinished.discard(record.tags[RETRY_TAG])
        cache.order[record.run_id] = (record.created, record.pk)
        if record.status.is_terminal():
            cache.unfinished.discard(record.run_id)
        else:
            cache.unfinished.add(record.run_id)
        cache.rows[record.run_id] = {
            "run_id": record.run_id,
            "status": shown_status(record.status.value, record.tags),
            "ended": record.ended,
            "early_termination": record.tags.get("launchbay.early_termination"),
            metric: last.get(record.pk),
            **dict(record.spec.get("params") or record.params),
        }
    rows = [cache.rows[run_id] for run_id in sorted(cache.rows, key=cache.order.__getitem__)]
    params: list[str] = []
    for row in rows:
        params += [k for k in row if k not in _ROW_KEYS and k != metric and k not in params]
    return rows, params, metric, goal


_ROW_KEYS = ("run_id", "status", "ended", "early_termination")


def log_params(sweep: SweepHandle) -> list[str]:
    """The parameters whose expressions are log-scaled (their plot axes are too)."""
    from ..sweeps.space import LOG_KINDS

    space = sweep.config()["sampling"]["space"]
    return [name for name, expr in space.items() if expr.get("kind") in LOG_KINDS]


def rows_html(rows: list[dict[str, Any]], params: list[str], metric: str) -> str:
    from ..sweeps.handle import readable

    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["run", "status", *params, metric, "why stopped"])
    body = []
    for r in rows:
        value = r.get(metric)
        cells = [
            f"<code>{html.escape(r['run_id'])}</code>",
            status_badge(r["status"]),
            *[html.escape(readable(r.get(p))) for p in params],
            "-" if value is None else f"{value:.5g}",
            html.escape(r.get("early_termination") or ""),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="lb-table lb-sweep-table"><tr>{head}</tr>{"".join(body)}</table>'


class SweepWidget(w.VBox):
    """Polls the sweep once a second until it ends or the widget is closed."""

    def __init__(self, sweep: SweepHandle, **kwargs: Any) -> None:
        self.sweep = sweep
        self._header = w.HTML()
        self._cancel = w.Button(description="Cancel sweep", button_style="danger", icon="stop")
        self._cancel.on_click(lambda _b: threading.Thread(target=sweep.cancel, daemon=True).start())
        self._table = w.HTML()
        # hidden until the first result: an Image with no data shows as a broken image
        self._best = w.Image(format="png", layout=w.Layout(width="420px", display="none"))
        self._parallel = w.Image(format="png", layout=w.Layout(width="620px", display="none"))
        self._total = sweep.total_runs()
        self._log_params = log_params(sweep)
        super().__init__(
            [w.HBox([self._header, self._cancel]), self._table, w.HBox([self._best, self._parallel])], **kwargs
        )
        self.add_class("lb-sweep-widget")
        self._drawn = -1
        self._plots_due = 0.0  # monotonic time before which the plots are not redrawn
        self._rows = RowCache()
        self._stop = threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        super().close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                record = self.sweep.record()
                rows, params, metric, goal = sweep_rows(self.sweep, self._rows)
                finished = [r for r in rows if r.get(metric) is not None and r["ended"]]
                best = (max if goal == "maximize" else min)((r[metric] for r in finished), default=None)
                # plots, then table, then header: the header saying "N of N, Completed" comes last.
                # Plots of a big sweep take a while (matplotlib): they are redrawn at most every
                # PLOTS_EVERY_S (or ten times their drawing time) and once more when the sweep ends.
                due = record.status.is_terminal() or time.monotonic() >= self._plots_due
                if finished and len(finished) != self._drawn and due:
                    drawing = time.monotonic()
                    finished.sort(key=lambda r: r["ended"])
                    self._best.value = figure_png(best_so_far_figure([r[metric] for r in finished], goal, metric))
                    self._parallel.value = figure_png(
                        parallel_coordinates_figure(finished, params, metric, log_params=self._log_params)
                    )
                    self._best.layout.display = self._parallel.layout.display = None
                    self._drawn = len(finished)
                    took = time.monotonic() - drawing
                    self._plots_due = time.monotonic() + max(PLOTS_EVERY_S, 10 * took)
                self._table.value = rows_html(rows, params, metric)
                self._cancel.layout.display = "none" if record.status.is_terminal() else None
                badge = status_badge(record.status.value)
                self._header.value = (
                    f"<b>Sweep</b> <code>{html.escape(record.run_id)}</code> &middot; {badge}"
                    f" &middot; {len(rows)} of {self._total} runs"
                    f" &middot; best {metric}: {'-' if best is None else f'{best:.5g}'}"
                )
                if record.status.is_terminal():
                    break
            except Exception as exc:  # keep the notebook usable; say what went wrong
                self._header.value = f"<i>sweep widget stopped updating: {html.escape(str(exc))}</i>"
                break
            self._stop.wait(POLL_S)
