"""The run widget's view of images, tables, rows and lists (everything but scalar series).

Images form a gallery, the latest of each name shown, with a step slider to go back
through earlier ones; tables and rows are HTML tables (the last rows of long ones);
lists are line plots. It redraws only when the run logged something new.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import numpy as np

from ..logged import Logged
from .plots import figure_png, series_figure

if TYPE_CHECKING:
    from ..handle import RunHandle
    from ..store import RunRecord

TABLE_ROWS = 50


def table_html(entry: Logged, max_rows: int = TABLE_ROWS) -> str:
    """A logged table or row series as an HTML table with a caption (its last ``max_rows`` rows)."""
    rows = entry.rows()
    skipped = max(0, len(rows) - max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in entry.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in r) + "</tr>" for r in rows[skipped:])
    note = f" &middot; last {max_rows} shown" if skipped else ""
    return (
        f'<div class="lb-widget-table" data-name="{html.escape(entry.name)}" style="margin:4px 12px 4px 0">'
        f"<b>{html.escape(entry.name)}</b> <small>({entry.kind}, {entry.summary()}{note})</small>"
        f'<div style="max-height:240px;overflow:auto"><table class="lb-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></div>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


class _Gallery(w.VBox):
    """One image name: the picture, a caption and (from two images on) a step slider."""

    def __init__(self, name: str, read: Any) -> None:
        self._read, self._shown = read, ""  # read(file) -> bytes | None
        self._images: list[dict[str, Any]] = []
        # hidden until it has a picture (an image file not synced back yet): no broken-image icon
        self._picture = w.Image(format="png", layout=w.Layout(max_width="420px", display="none"))
        self._caption = w.HTML()
        self._slider = w.IntSlider(min=0, max=0, description="step", layout=w.Layout(width="320px", display="none"))
        self._slider.observe(self._show, names="value")
        super().__init__([self._picture, self._caption, self._slider], layout=w.Layout(margin="4px 12px 4px 0"))
        self.add_class("lb-widget-image")
        self.name = name

    def update(self, images: list[dict[str, Any]]) -> None:
        at_latest = self._slider.value == self._slider.max
        self._images = images
        with self.hold_sync():
            self._slider.max = len(images) - 1
            self._slider.layout.display = None if len(images) > 1 else "none"
            if at_latest and self._slider.value != self._slider.max:
                self._slider.value = self._slider.max  # follows the newest while it was shown
            else:
                self._show()

    def retry(self) -> None:
        if self._images and self._shown != self._current()["file"]:
            self._show()

    def _current(self) -> dict[str, Any]:
        return self._images[min(self._slider.value, len(self._images) - 1)]

    def _show(self, _change: Any = None) -> None:
        image = self._current()
        if image["file"] != self._shown:
            data = self._read(image["file"])
            if data is not None:
                self._picture.value, self._shown = data, image["file"]
                self._picture.layout.display = None
        latest = len(self._images) - 1
        self._caption.value = (
            f"<b>{html.escape(self.name)}</b> <small>step {image['step']} of {latest}"
            f"{' (latest)' if image['step'] == latest else ''}</small>"
        )


class LoggedView(w.VBox):
    """Gallery, tables and list plots of one run; ``update`` is called by the run widget's poller."""

    def __init__(self) -> None:
        self._gallery = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._gallery.add_class("lb-widget-gallery")
        self._tables = w.HTML()
        self._lists = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._lists.add_class("lb-widget-lists")
        super().__init__([self._gallery, self._tables, self._lists])
        self.add_class("lb-widget-logged")
        self._version = -1
        self._galleries: dict[str, _Gallery] = {}
        self._list_plots: dict[str, tuple[w.Image, list[Any]]] = {}

    def update(self, handle: RunHandle, record: RunRecord) -> None:
        version = handle.logged_version(record=record)
        if version == self._version:
            for waiting in self._galleries.values():
                waiting.retry()  # an image whose file had not been synced back yet
            return
        self._version = version
        entries = handle.get_logged(record=record)

        def read(file: str) -> bytes | None:
            try:
                return handle.file_path(file, record=record).read_bytes()
            except Exception:  # not synced back yet: shown on a later round
                return None

        for entry in entries:
            if entry.kind == "image":
                gallery = self._galleries.get(entry.name)
                if gallery is None:
                    gallery = self._galleries[entry.name] = _Gallery(entry.name, read)
                    self._gallery.children = (*self._gallery.children, gallery)
                gallery.update(entry.images)
            elif entry.kind == "list":
                self._update_list(entry)
        tables = [table_html(e) for e in entries if e.kind in ("table", "rows")]
        self._tables.value = f'<div style="display:flex;flex-wrap:wrap">{"".join(tables)}</div>' if tables else ""

    def _update_list(self, entry: Logged) -> None:
        image, drawn = self._list_plots.get(entry.name, (None, None))
        if image is None:
            image = w.Image(format="png", layout=w.Layout(width="420px", display="none"))  # until drawn
            image.add_class("lb-widget-list")
            self._lists.children = (*self._lists.children, image)
        elif drawn == entry.values:
            return
        numbers = [float(v) if isinstance(v, (int, float)) else np.nan for v in entry.values]
        values = np.array(numbers, dtype=np.float64)
        image.value = figure_png(series_figure(f"{entry.name} (list)", np.arange(len(values)), values, xlabel="index"))
        image.layout.display = None
        self._list_plots[entry.name] = (image, list(entry.values))
