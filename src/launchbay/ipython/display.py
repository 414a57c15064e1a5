"""How handles show in a notebook: the live widget where one can render, else plain text.

The core never imports this package: ``register_displays`` (run by ``%load_ext launchbay``, or when
launchbay is imported into a running kernel) tells IPython how to show a ``RunHandle`` and a
``SweepHandle`` and an ``AutoMLHandle``, by name, so registering imports neither.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from ..summary_text import run_summary_text

if TYPE_CHECKING:
    from ..automated.handle import AutoMLHandle
    from ..handle import RunHandle
    from ..pipelines.handle import PipelineHandle
    from ..sweeps.handle import SweepHandle

#: handles a magic has shown already: the same handle as the cell's value shows nothing more
_SHOWN: weakref.WeakSet[Any] = weakref.WeakSet()


def register_displays(shell: Any) -> None:
    """Show handles as live widgets in ``shell`` (idempotent)."""
    formatter = shell.display_formatter.ipython_display_formatter
    formatter.for_type_by_name("launchbay.handle", "RunHandle", display_run)
    formatter.for_type_by_name("launchbay.sweeps.handle", "SweepHandle", display_sweep)
    formatter.for_type_by_name("launchbay.pipelines.handle", "PipelineHandle", display_pipeline)
    formatter.for_type_by_name("launchbay.automated.handle", "AutoMLHandle", display_automl)


def mark_shown(handle: Any) -> None:
    """A magic displayed ``handle`` itself; returned as the cell's value, it shows nothing more."""
    _SHOWN.add(handle)


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


def display_run(handle: RunHandle, pull_into: dict[str, Any] | None = None) -> Any:
    """Show a run: the live widget where one can render, else its text summary."""
    from IPython.display import display

    if handle in _SHOWN:
        _SHOWN.discard(handle)
        return None
    if widget_frontend_likely():
        from .widgets import RunWidget

        widget = RunWidget(handle, pull_into=pull_into)
        display(widget)
        return widget
    print(run_summary_text(handle))
    return None


def display_sweep(sweep: SweepHandle) -> None:
    """Show a sweep: the live sweep widget (runs table, best so far, parallel coordinates), else its table."""
    from IPython.display import display

    if widget_frontend_likely():
        from .sweep_widget import SweepWidget

        display(SweepWidget(sweep))
        return
    print(sweep.table())


def display_pipeline(pipeline: PipelineHandle | str, follow: bool = False) -> Any:
    """Show a pipeline: the live DAG widget, else its steps as text (with ``follow``: one line per step change
    until it ends; Ctrl-C stops the watching, not the pipeline)."""
    from IPython.display import display

    if isinstance(pipeline, str):
        from ..pipelines import get_pipeline

        pipeline = get_pipeline(pipeline)
    if pipeline in _SHOWN:
        _SHOWN.discard(pipeline)
        return None
    if widget_frontend_likely():
        from .pipeline_widget import PipelineWidget

        widget = PipelineWidget(pipeline)
        display(widget)
        return widget
    from ..pipelines.watch import follow_pipeline, step_line

    print(f"launchbay: pipeline {pipeline.run_id} ({pipeline.record().name})", flush=True)
    if not follow:
        for step in pipeline.steps:
            print("  " + step_line(step))
        print(f"launchbay: pipeline {pipeline.run_id} {pipeline.status}")
        return None
    try:
        status = follow_pipeline(pipeline)
    except KeyboardInterrupt:
        print(f"\nlaunchbay: stopped watching; pipeline {pipeline.run_id} goes on (`%launchbay pipeline show` it).")
        return None
    error = (pipeline.record().error or {}).get("message")
    print(f"launchbay: pipeline {pipeline.run_id} {status}{f' ({error})' if error else ''}")
    return None


def display_automl(handle: AutoMLHandle) -> None:
    """Show an AutoML run: the live widget (leaderboard, best score over time), else its leaderboard."""
    from IPython.display import display

    if widget_frontend_likely():
        from .automl_widget import AutoMLWidget

        display(AutoMLWidget(handle))
        return
    print(handle.leaderboard().to_string(index=False))
