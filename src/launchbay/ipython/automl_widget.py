"""The live AutoML widget, in the sweep widget's style: the leaderboard and the best score over time."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .plots import best_so_far_figure, figure_png
from .widgets import status_badge

if TYPE_CHECKING:
    from ..automated.handle import AutoMLHandle

POLL_S = 1.0


def leaderboard_html(trials: list[dict[str, Any]], metric: str) -> str:
    """Best first: run, algorithm, status, score, seconds, hyperparameters."""
    from ..sweeps.handle import readable

    heads = ["run", "algorithm", "status", metric, "seconds", "hyperparameters"]
    body = []
    for t in trials:
        params = ", ".join(f"{k}={readable(v)}" for k, v in (t.get("params") or {}).items())
        cells = [
            f"<code>{html.escape(str(t.get('run_id') or '-'))}</code>",
            html.escape(str(t["algorithm"])),
            status_badge(str(t["status"])),
            "-" if t.get("score") is None else f"{t['score']:.5g}",
            "-" if t.get("seconds") is None else f"{t['seconds']:.1f}",
            html.escape(params),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f'<table class="lb-table lb-sweep-table lb-automl-table"><tr>{head}</tr>{"".join(body)}</table>'


def score_over_time(trials: list[dict[str, Any]], goal: str, metric: str) -> bytes | None:
    """The best score so far, trial by trial in the order they ended (None before the first score)."""
    ended = sorted((t for t in trials if t.get("score") is not None and t.get("ended")), key=lambda t: t["ended"])
    if not ended:
        return None
    return figure_png(best_so_far_figure([t["score"] for t in ended], goal, metric))


class AutoMLWidget(w.VBox):
    """Polls the AutoML run once a second until it ends or the widget is closed."""

    def __init__(self, handle: AutoMLHandle, **kwargs: Any) -> None:
        self.handle = handle
        settings = handle.config()["settings"]
        self._metric, self._goal = settings["primary_metric"], settings["goal"]
        self._header = w.HTML()
        self._cancel = w.Button(description="Cancel AutoML", button_style="danger", icon="stop")
        self._cancel.on_click(lambda _b: threading.Thread(target=handle.cancel, daemon=True).start())
        self._table = w.HTML()
        self._plot = w.Image(format="png", layout=w.Layout(width="420px", display="none"))
        super().__init__([w.HBox([self._header, self._cancel]), self._table, self._plot], **kwargs)
        self.add_class("lb-sweep-widget")
        self._drawn = -1
        self._stop = threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        super().close()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                if self.handle.record().status.is_terminal():
                    break
            except Exception as exc:  # keep the notebook usable; say what went wrong
                self._header.value = f"<i>AutoML widget stopped updating: {html.escape(str(exc))}</i>"
                break
            self._stop.wait(POLL_S)

    def refresh(self) -> None:
        """One look at the run: plot, table, then header (the header saying Completed comes last)."""
        record = self.handle.session.refresh(self.handle.run_id)
        trials = self.handle.trials()
        scored = sum(1 for t in trials if t.get("score") is not None)
        if scored != self._drawn:
            png = score_over_time(trials, self._goal, self._metric)
            if png is not None:
                self._plot.value, self._plot.layout.display = png, None
            self._drawn = scored
        self._table.value = leaderboard_html(trials, self._metric)
        self._cancel.layout.display = "none" if record.status.is_terminal() else None
        best = next((t for t in trials if t.get("score") is not None), None)
        note = record.tags.get("launchbay.automl.imbalance")
        self._header.value = (
            f"<b>AutoML</b> <code>{html.escape(record.run_id)}</code> &middot; {status_badge(record.status.value)}"
            f" &middot; {len(trials)} trials &middot; best {html.escape(self._metric)}: "
            + ("-" if best is None else f"{best['score']:.5g} ({html.escape(best['algorithm'])})")
            + (f"<br><i>{html.escape(note)}</i>" if note else "")
        )
