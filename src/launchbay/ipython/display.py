"""Choosing between the live widget and plain text, and the text form itself."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..handle import RunHandle


def widget_frontend_likely() -> bool:
    """Widgets render in JupyterLab/Notebook/VS Code kernels; not in terminal IPython or nbconvert/nbclient.

    A kernel started by a Jupyter server carries JPY_SESSION_NAME; nbclient's do not.
    ``LAUNCHBAY_WIDGETS=0/1`` overrides the guess.
    """
    forced = os.environ.get("LAUNCHBAY_WIDGETS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return False
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return bool(os.environ.get("JPY_SESSION_NAME") or os.environ.get("VSCODE_PID"))


def run_summary_text(handle: RunHandle) -> str:
    record = handle.record()
    lines = [f"Run {record.run_id} · {record.experiment} · {record.target} · {record.status.value}"]
    if record.properties.get("launchbay.rerun_of"):
        lines[0] += f" · re-run of {record.properties['launchbay.rerun_of']}"
    store = handle._session.store
    for s in store.metric_summaries(record):
        lines.append(f"  {s['name']}: last {s['last']:.6g} (step {s['last_step']}, {s['count']} points)")
    if record.status.is_terminal():
        lines.append(f"  exit code {record.exit_code}")
        if record.error:
            lines.append(f"  error: {record.error.get('message')}")
    else:
        lines.append(f"  follow it with `%launchbay show {record.run_id}`")
    return "\n".join(lines)


def display_run(handle: RunHandle, pull_into: dict[str, Any] | None = None) -> Any:
    """Show a run: the live widget where one can render, else its text summary."""
    from IPython.display import display

    if getattr(handle, "_suppress_display", False):
        handle._suppress_display = False  # type: ignore[attr-defined]
        return None
    if widget_frontend_likely():
        from .widgets import RunWidget

        widget = RunWidget(handle, pull_into=pull_into)
        display(widget)
        return widget
    print(run_summary_text(handle))
    return None
