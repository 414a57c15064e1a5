"""``azureml.widgets.RunDetails``: launchbay's live run (or sweep) widget, which renders everywhere."""

from __future__ import annotations

from typing import Any


class RunDetails:
    """``RunDetails(run).show()`` displays the run's live widget (text where widgets cannot render)."""

    def __init__(self, run_instance: Any) -> None:
        self.run_instance = run_instance

    def _target(self) -> Any:
        return getattr(self.run_instance, "handle", self.run_instance)

    def show(self) -> Any:
        """Display the run as launchbay's extension shows its handle. Where that is a live widget, the
        run remembers it: the widget streams the log, so ``wait_for_completion(show_output=True)`` under
        the same cell does not print it a second time."""
        from IPython.display import display

        target = self._target()
        show = _registered_display(target) or _launchbay_display(target)
        if show is None:
            display(target)
            return
        view = show(target)  # the live widget, or None where it printed text
        remember = getattr(self.run_instance, "_shown_live", None)
        if view is not None and remember is not None:
            remember(view, cell_number())

    def get_widget_data(self, widget_settings: Any = None) -> dict[str, Any]:
        run = self.run_instance
        return {"run_id": getattr(run, "id", None), "status": run.get_status(), "metrics": run.get_metrics()}


def _registered_display(obj: Any) -> Any:
    """The function IPython calls to display ``obj`` (launchbay's extension registers one for a handle)."""
    try:
        from IPython import get_ipython

        return get_ipython().display_formatter.ipython_display_formatter.lookup(obj)
    except (ImportError, AttributeError, KeyError):  # not in IPython, or nothing registered
        return None


def _launchbay_display(obj: Any) -> Any:
    """How a handle shows where the extension is not registered (plain Python): its text view."""
    from ...handle import RunHandle
    from ...summary_text import run_summary_text
    from ...sweeps.handle import SweepHandle

    if isinstance(obj, SweepHandle):
        return lambda sweep: print(sweep.table())
    if isinstance(obj, RunHandle):
        return lambda run: print(run_summary_text(run, follow="launchbay show"))
    return None


def cell_number() -> int | None:
    """The execution count of the cell running now (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else int(shell.execution_count)


__all__ = ["RunDetails"]
