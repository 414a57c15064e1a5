"""Parts of the run widget for system metrics and TensorBoard, kept apart from its core.

``SystemGroup``: the ``system/`` plots (CPU, memory, I/O, GPUs) in a collapsible
section of their own, closed at first, so the run's own metrics stay on top.
``TensorBoardLink``: once the run has event files under ``./logs``, a button that
starts TensorBoard (in the kernel's process, reused) and shows its link.
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from .. import runfolder as rf
from ..sysmon import PREFIX as SYSTEM_PREFIX
from ..tboard import ensure, has_event_files

CHECK_EVERY_S = 2.0


class SystemGroup(w.Accordion):
    """A closed-by-default section holding the plots of ``system/`` metrics."""

    def __init__(self) -> None:
        self.plots = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.plots.add_class("lb-widget-system-plots")
        super().__init__(children=[self.plots], selected_index=None)
        self.set_title(0, "System metrics (CPU, memory, I/O, GPU)")
        self.add_class("lb-widget-system")
        self.layout.display = "none"  # shown with the first sample

    @property
    def is_open(self) -> bool:
        return self.selected_index is not None

    @staticmethod
    def wants(name: str) -> bool:
        return name.startswith(SYSTEM_PREFIX)

    def add(self, image: w.Image) -> None:
        image.remove_class("lb-widget-plot")  # the run's own plots keep that class
        image.add_class("lb-widget-system-plot")
        image.layout.display = "none"  # until drawn: no empty picture when the group opens
        self.plots.children = (*self.plots.children, image)
        self.layout.display = None


class TensorBoardLink(w.HBox):
    """A TensorBoard button shown once the run's ``files/logs`` holds event files."""

    def __init__(self, run_id: str, files_dir: Path) -> None:
        self.run_id, self.files_dir = run_id, files_dir
        self.button = w.Button(description="TensorBoard", icon="line-chart", layout=w.Layout(width="130px"))
        self.button.on_click(self._open)
        self.link = w.HTML()
        super().__init__([self.button, self.link], layout=w.Layout(display="none"))
        self.add_class("lb-widget-tensorboard")
        self._found = False
        self._checked = 0.0

    def check(self) -> None:
        """Cheap and throttled: called from the widget's poll loop until event files appear."""
        now = time.time()
        if self._found or now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        if has_event_files(self.files_dir):
            self._found = True
            self.layout.display = None

    def _open(self, _button: Any) -> None:
        self.button.disabled = True
        self.link.value = "<i>starting TensorBoard...</i>"
        threading.Thread(target=self._start, daemon=True).start()

    def _start(self) -> None:
        try:
            url = ensure({self.run_id: self.files_dir / rf.LOGS})
            self.link.value = f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(url)}</a>'
        except Exception as exc:
            self.link.value = f"<i>{html.escape(str(exc))}</i>"
        finally:
            self.button.disabled = False
