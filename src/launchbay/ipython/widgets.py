"""The live run widget: header, Cancel, log tail, one plot per metric (``system/`` ones in a
collapsible group of their own), a TensorBoard link once event files exist, the outcome.

A daemon thread polls the store incrementally (log by byte offset, metrics by
step) and updates stock ipywidgets from there (trait assignment and
``Output.append_stdout``, which are safe from a thread). It stops when the run
ends or the widget is closed.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np

from ..journal_problems import status_detail
from ..models import STATUS_COLOURS as RUN_STATUS_COLOURS
from ..models import RunStatus
from ..snapshot_budget import human_bytes
from .logged_view import LoggedView
from .plots import figure_png, series_figure
from .run_extras import SystemGroup, TensorBoardLink
from .textwatch import Elapsed, elapsed_text

if TYPE_CHECKING:
    from ..handle import RunHandle
    from ..store import RunRecord

STATUS_COLOURS = {
    **RUN_STATUS_COLOURS,
    "stopped early": "#8a6d3b",  # a sweep's policy stopped it (status Canceled)
}
POLL_S = 0.4
REDRAW_S = 1.0


def status_badge(status: str, text: str | None = None) -> str:
    colour = STATUS_COLOURS.get(status, "#6c757d")
    status = text or status
    return (
        f'<span class="lb-widget-status" style="background:{colour};color:white;padding:1px 8px;'
        f'border-radius:8px;font-weight:600">{html.escape(status)}</span>'
    )


#: seconds without an update after which a live widget says the kernel may be gone
STALE_S = 10


def stale_notice(run_id: str) -> str:
    """Shown by the browser alone when the kernel no longer updates a live widget (restarted, died, stuck).

    Two signals, no front-end code of our own: ipywidgets marks a view whose kernel connection is gone
    with ``jupyter-widgets-disconnected`` (kernel restart or shutdown: the dead Cancel button is hidden
    then too); and each update replaces the
    header's HTML, restarting a CSS animation that reveals the notice after ``STALE_S`` quiet seconds
    (a kernel that died without a word, or a saved notebook reopened later).
    """
    rid = html.escape(run_id)
    return (
        "<style>@keyframes lb-stale{to{max-height:12em;opacity:1}}"
        ".jupyter-widgets-disconnected .lb-widget-stale{animation:none!important;max-height:12em!important;"
        "opacity:1!important}.lb-widget-cancel.jupyter-widgets-disconnected{display:none!important}</style>"
        f'<div class="lb-widget-stale" style="max-height:0;opacity:0;overflow:hidden;'
        f'animation:lb-stale 0s linear {STALE_S}s forwards;color:#b35c00">'
        "This view no longer hears from its kernel (restarted, stopped, or quiet for "
        f"{STALE_S} s): it is frozen and can no longer cancel the run. The run goes on: re-attach with "
        f"<code>%launchbay show {rid}</code> (<code>%launchbay cancel {rid}</code> stops it).</div>"
    )


def _detail(record: RunRecord) -> str:
    """What the status line says after the badge: what a full disk kept out of the run."""
    detail = status_detail(record.properties)
    if not detail:
        return ""
    style = "color:#b35900;font-weight:600"
    return f' <span class="lb-widget-status-detail" style="{style}">— {html.escape(detail)}</span>'


def data_html(inputs: list[Any]) -> str:
    """The run's data inputs (and outputs) with their versions, one short line; nothing without any."""
    if not inputs:
        return ""
    parts = []
    for i in inputs:
        named = f" ({html.escape(str(i.dataset))}:{i.dataset_version})" if i.dataset else ""
        arrow = "&rarr; " if i.direction == "output" else ""
        parts.append(
            f"{arrow}<b>{html.escape(i.name)}</b>{named} <code>{html.escape(i.hash[:12])}</code> "
            f"{i.files:,} files, {human_bytes(i.bytes)}"
        )
    return f'<div class="lb-widget-data" style="font-size:85%;color:#666">data: {" &middot; ".join(parts)}</div>'


def header_html(
    record: RunRecord,
    elapsed: float | None,
    tick: int = 0,
    inputs: list[Any] | None = None,
    queued: str | None = None,
) -> str:
    """Id, name, experiment, target, status, elapsed; the project root and the data below; the stale notice
    while live. ``queued``: what a run waiting for a slot shows in its badge ("Queued, 2nd for gpu-box")."""
    name = f" <b>{html.escape(record.name)}</b>" if record.name else ""
    root = record.properties.get("launchbay.source_dir") or ""
    where = record.spec.get("working_dir") or "."
    project = f"project <code>{html.escape(root)}</code>" if root else ""
    if project and where != ".":
        project += f", runs in <code>{html.escape(where)}</code>"
    text = (
        f"<b>Run</b> <code>{html.escape(record.run_id)}</code>{name} &middot; {html.escape(record.experiment)} "
        f"&middot; {html.escape(record.target)} &middot; {status_badge(record.status.value, queued)}{_detail(record)} "
        f"&middot; {elapsed_text(elapsed)}"
    )
    rerun_of = record.properties.get("launchbay.rerun_of")
    if rerun_of:
        text += f" &middot; re-run of <code>{html.escape(str(rerun_of))}</code>"
    if project:
        text += f'<div class="lb-widget-project" style="font-size:85%;color:#666">{project}</div>'
    text += data_html(inputs or [])
    if not record.status.is_terminal():
        text += f'<span data-tick="{tick}"></span>' + stale_notice(record.run_id)
    return text


class _SeriesBuffer:
    """The points of one metric seen so far, grown by step.

    Kept in arrays that double when full, so a poll appends only what is new (copying a
    10M-point buffer on every poll took 50-190 ms). The values keep the series' type: int64 for
    an integer series (exact), float64 once any value is a float; ``rounded`` as the store says."""

    def __init__(self, name: str, image: w.Image) -> None:
        self.name, self.image = name, image
        self._steps = np.zeros(0, dtype=np.int64)
        self._values = np.zeros(0, dtype=np.float64)
        self.count = 0
        self.rounded = False
        self.drawn_count = -1
        self.last_draw = 0.0

    @property
    def steps(self) -> Any:
        return self._steps[: self.count]

    @property
    def values(self) -> Any:
        return self._values[: self.count]

    def append(self, steps: Any, values: Any) -> None:
        end = self.count + len(steps)
        values = np.asarray(values)
        dtype = values.dtype if not self.count else np.result_type(self._values.dtype, values.dtype)
        if end > len(self._steps) or dtype != self._values.dtype:
            size = max(end, 2 * len(self._steps), 1024) if end > len(self._steps) else len(self._steps)
            self._steps = np.concatenate([self.steps, np.zeros(size - self.count, dtype=np.int64)])
            self._values = np.concatenate([self.values.astype(dtype), np.zeros(size - self.count, dtype=dtype)])
        self._steps[self.count : end] = steps
        self._values[self.count : end] = values
        self.count = end


class RunWidget(w.VBox):
    """A live view of one run; ``RunWidget(handle)`` works for any run, old or running."""

    def __init__(self, handle: RunHandle, pull_into: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.handle = handle
        self._pull_into = pull_into
        self._data: list[Any] | None = None  # the run's data inputs and outputs (store.run_inputs)
        # The header takes the room left and wraps; Cancel keeps its natural width (it was squeezed to "C…").
        self._header = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0"))
        self._header.add_class("lb-widget-header")
        self._cancel = w.Button(
            description="Cancel", button_style="danger", icon="stop", layout=w.Layout(width="auto", flex="0 0 auto")
        )
        self._cancel.add_class("lb-widget-cancel")
        self._cancel.on_click(self._on_cancel)
        # The log scrolls in a box laid out column-reverse, which anchors the scroll position at the
        # bottom: the newest line stays in view as the log grows; a reader who scrolls up stays put.
        self._log = w.Output()
        log_box = w.Box(
            [self._log],
            layout=w.Layout(max_height="260px", overflow="auto", border="1px solid #ddd", flex_flow="column-reverse"),
        )
        log_box.add_class("lb-widget-log")
        self._plots = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._plots.add_class("lb-widget-plots")
        self._footer = w.HTML()
        self._footer.add_class("lb-widget-footer")
        self._logged = LoggedView()  # images, tables, rows, lists
        self._system = SystemGroup()
        self._system.observe(self._on_system_toggle, names="selected_index")
        self._tensorboard = TensorBoardLink(handle.run_id, handle.files_dir())
        self._rank = 0  # a distributed run: the rank whose log is shown (0: the run's main log)
        self._log_lock = threading.Lock()  # the picker and the poll thread both touch the log view
        self._ranks = w.Dropdown(description="Log of", layout=w.Layout(width="180px", display="none"))
        self._ranks.add_class("lb-widget-rank")
        self._ranks.observe(self._on_rank, names="value")
        header = w.HBox([self._header, self._ranks, self._cancel])
        parts = [header, log_box, self._plots, self._logged, self._system]
        super().__init__([*parts, self._tensorboard, self._footer], **kwargs)
        self.add_class("lb-run-widget")
        self._series: dict[str, _SeriesBuffer] = {}
        self._offset = 0
        self._tick = 0
        self._elapsed = Elapsed()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name=f"launchbay-widget-{handle.run_id}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        """The output's text/plain: what shows where the widget can't (a viewer, a notebook without state)."""
        return f"launchbay run {self.handle.run_id}: %launchbay show {self.handle.run_id} re-attaches"

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        super().close()

    def wait_until_done(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _on_system_toggle(self, _change: Any) -> None:
        """Opened: draw the system plots now (the poll loop may have ended with the run)."""
        if self._system.is_open:
            threading.Thread(target=self._draw_system, daemon=True).start()

    def _draw_system(self) -> None:
        for buf in list(self._series.values()):
            if SystemGroup.wants(buf.name) and len(buf.values) != buf.drawn_count:
                self._draw(buf)

    def _on_cancel(self, _button: Any) -> None:
        self._cancel.disabled = True
        self._cancel.description = "Canceling"
        threading.Thread(target=self.handle.cancel, daemon=True).start()

    def _on_rank(self, change: dict[str, Any]) -> None:
        """Show another rank's log from its start (the poll thread reads from the new offset)."""
        with self._log_lock:
            self._rank, self._offset = int(change["new"] or 0), 0
            self._log.outputs = ()

    def _read_log(self, record: RunRecord) -> tuple[bytes, int]:
        from ..distributed import read_rank_chunk, world_size

        world = world_size(record)
        if world > 1 and not self._ranks.options:
            self._ranks.options = [(f"rank {r}", r) for r in range(world)]
            self._ranks.layout.display = None
        if self._rank == 0:
            return self.handle.read_log(self._offset, max_bytes=256 * 1024, record=record)
        return read_rank_chunk(record, self._rank, self._offset, 256 * 1024)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                record = self.handle.record()
                self._update(record)
                if record.status.is_terminal():
                    self._finish(record)
                    break
            except Exception as exc:  # keep the notebook usable; say what went wrong
                self._footer.value = f"<i>launchbay widget stopped updating: {html.escape(str(exc))}</i>"
                break
            self._stop.wait(POLL_S)
        self._done.set()

    # -- updates -------------------------------------------------------------------------
    def _update(self, record: RunRecord, final: bool = False) -> None:
        self._tick += 1
        if self._data is None or final:
            try:  # a run's inputs never change; its outputs come at its end
                self._data = self.handle.session.store.run_inputs(record.run_id, None)
            except Exception:  # noqa: BLE001 - the header goes on without them
                self._data = []
        queued = None
        if record.status is RunStatus.QUEUED:
            from ..queueing import queued_text

            entry = self.handle.session.store.queue_positions([record.run_id]).get(record.run_id)
            queued = queued_text(entry) if entry is not None else None
        self._header.value = header_html(record, self._elapsed(record), self._tick, self._data, queued)
        self._cancel.layout.display = "none" if record.status.is_terminal() else None
        while True:
            with self._log_lock:
                data, self._offset = self._read_log(record)
                if data:
                    self._log.append_stdout(data.decode("utf-8", "replace"))
            if not data:
                break
        for summary in self.handle.metric_summaries(record=record):
            self._update_series(record, summary, final)
        self._logged.update(self.handle, record)
        self._tensorboard.check()

    def _update_series(self, record: RunRecord, summary: dict[str, Any], final: bool) -> None:
        name = summary["name"]
        buf = self._series.get(name)
        if buf is None:
            # hidden until its first picture: an empty image shows as a broken-image icon
            image = w.Image(format="png", layout=w.Layout(width="420px", display="none"))
            image.add_class("lb-widget-plot")
            buf = self._series[name] = _SeriesBuffer(name, image)
            if SystemGroup.wants(name):
                self._system.add(image)
            else:
                self._plots.children = (*self._plots.children, image)
        if summary["count"] > len(buf.values):
            after = int(buf.steps[-1]) if len(buf.steps) else None
            new = self.handle.series_since(name, after, record=record)
            buf.append(new.steps, new.values)
            buf.rounded = new.rounded
        now = time.time()
        hidden = SystemGroup.wants(name) and not self._system.is_open  # drawn when the group is opened
        if len(buf.values) != buf.drawn_count and not hidden and (final or now - buf.last_draw >= REDRAW_S):
            self._draw(buf)

    @staticmethod
    def _draw(buf: _SeriesBuffer) -> None:
        title = f"{buf.name} (rounded)" if buf.rounded else buf.name  # some values are the nearest float64
        buf.image.value = figure_png(series_figure(title, buf.steps, buf.values))
        buf.image.layout.display = None  # every plot stays hidden until it has a picture
        buf.drawn_count, buf.last_draw = len(buf.values), time.time()

    def _finish(self, record: RunRecord) -> None:
        self._update(record, final=True)
        parts = [f"{status_badge(record.status.value)} exit code <code>{record.exit_code}</code>"]
        if record.error:
            message = html.escape(record.error.get("message") or "")
            colour = STATUS_COLOURS.get(record.status.value, "#dc3545")
            parts.append(f'<span class="lb-widget-error" style="color:{colour};font-weight:600">{message}</span>')
            # the traceback, if any, is in the log above: shown once
        files = [f for f in self.handle.get_file_names(record=record) if not f.startswith(".launchbay/")]
        if files:
            parts.append("Files: " + ", ".join(f"<code>{html.escape(f)}</code>" for f in files))
        if self._pull_into is not None and record.status is RunStatus.COMPLETED and record.spec.get("pull"):
            try:
                pulled = self.handle.pull(self._pull_into)
                parts.append("Pulled into the notebook: " + ", ".join(f"<code>{n}</code>" for n in pulled))
            except Exception as exc:
                parts.append(f"Could not pull variables: {html.escape(str(exc))}")
        self._footer.value = "".join(f'<div style="margin-top:4px">{part}</div>' for part in parts)
