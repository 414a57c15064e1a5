"""The live pipeline widget: the DAG (steps as boxes coloured by status, edges by data), redrawn as steps
change; clicking a step (or picking it below) opens that step's run view under the DAG."""

from __future__ import annotations

import html
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..pipelines.dag import dag_svg
from .widgets import status_badge

if TYPE_CHECKING:
    from ..pipelines.handle import PipelineHandle

POLL_S = 0.5

# A click on a box writes the step's name into the widget's (hidden) pick field, as typing would: no custom
# front-end code, so it works wherever ipywidgets render; the picker below does the same where a front end
# strips inline handlers.
_CLICK = (
    "var g=event.target.closest('[data-step]');if(!g)return;"
    "var i=document.querySelector('.{pick} input');if(!i)return;"
    "i.value=g.getAttribute('data-step');i.dispatchEvent(new Event('input',{{bubbles:true}}));"
    "i.dispatchEvent(new Event('change',{{bubbles:true}}));"
)


def header_html(record: Any, steps: list[dict[str, Any]]) -> str:
    done = sum(1 for s in steps if s["status"] in ("Completed", "Failed", "Canceled", "NotStarted"))
    reused = sum(1 for s in steps if s.get("reused_from"))
    running = sum(1 for s in steps if s["status"] == "Running")
    error = (record.error or {}).get("message") if record.status.is_terminal() else None
    return (
        f"<b>Pipeline</b> <code>{html.escape(record.run_id)}</code> &middot; {status_badge(record.status.value)}"
        f" &middot; {done} of {len(steps)} steps done &middot; {running} running &middot; {reused} reused"
        + (f"<br><i>{html.escape(str(error))}</i>" if error else "")
    )


class PipelineWidget(w.VBox):
    """Polls the pipeline until it ends or the widget is closed; redraws only when a step changed."""

    def __init__(self, pipeline: PipelineHandle, **kwargs: Any) -> None:
        self.pipeline = pipeline
        self.definition = pipeline.definition()
        pick = f"lb-dag-pick-{uuid.uuid4().hex[:10]}"
        self._header = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0"))
        self._cancel = w.Button(description="Cancel pipeline", button_style="danger", icon="stop",
                                layout=w.Layout(width="auto", flex="0 0 auto"))  # fmt: skip
        self._cancel.on_click(lambda _b: threading.Thread(target=pipeline.cancel, daemon=True).start())
        self._dag = w.HTML(layout=w.Layout(overflow="auto", max_height="520px"))
        self._dag.add_class("lb-pipeline-dag")
        self._onclick = _CLICK.format(pick=pick)
        self._pick = w.Text(layout=w.Layout(display="none"))
        self._pick.add_class(pick)
        self._picker = w.Dropdown(options=[("(pick a step)", "")] + [(n, n) for n in self.definition.names()],
                                  description="step run:", layout=w.Layout(width="320px"))  # fmt: skip
        self._run_view = w.VBox()
        self._pick.observe(lambda change: self._open(change["new"]), names="value")
        self._picker.observe(lambda change: self._open(change["new"]), names="value")
        super().__init__([w.HBox([self._header, self._cancel]), self._dag, w.HBox([self._picker, self._pick]),
                          self._run_view], **kwargs)  # fmt: skip
        self.add_class("lb-pipeline-widget")
        self._steps: list[dict[str, Any]] = []
        self._drawn: str | None = None
        self.selected: str | None = None
        self._stop = threading.Event()
        self.refresh()
        threading.Thread(target=self._poll, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        super().close()

    def redraw(self, steps: list[dict[str, Any]]) -> bool:
        """Draw the DAG for ``steps`` (nothing when nothing changed); whether it drew."""
        key = json.dumps([steps, self.selected], sort_keys=True, default=str)
        if key == self._drawn:
            return False
        svg = dag_svg(self.definition, steps, self.selected)
        self._dag.value = f'<div onclick="{html.escape(self._onclick)}">{svg}</div>'
        self._drawn = key
        return True

    def refresh(self) -> bool:
        """Read the pipeline once and update the header and DAG; whether it has ended."""
        record = self.pipeline.record()
        self._steps = self.pipeline.steps
        self.redraw(self._steps)
        self._header.value = header_html(record, self._steps)
        self._cancel.layout.display = "none" if record.status.is_terminal() else None
        return record.status.is_terminal()

    def _open(self, name: str) -> None:
        """Show step ``name``'s run below the DAG (its live run widget), or say why it has none yet."""
        if not name or name == self.selected:
            return
        self.selected = name
        self._picker.value = name
        from .widgets import RunWidget

        state = next((s for s in self._steps if s["name"] == name), None) or {}
        for child in self._run_view.children:
            child.close()  # the run widget of the step shown before stops polling
        if state.get("reused_from") or state.get("run_id"):
            self._run_view.children = (RunWidget(self.pipeline.get_step(name)),)
        else:
            reason = state.get("reason") or "waiting for the steps before it"
            self._run_view.children = (
                w.HTML(f"<i>Step {html.escape(name)} has no run yet: {html.escape(reason)}</i>"),
            )
        self.redraw(self._steps)

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                if self.refresh():
                    break
            except Exception as exc:  # keep the notebook usable; say what went wrong
                self._header.value = f"<i>pipeline widget stopped updating: {html.escape(str(exc))}</i>"
                break
