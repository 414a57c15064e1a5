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
        from IPython.display import display

        display(self._target())

    def get_widget_data(self, widget_settings: Any = None) -> dict[str, Any]:
        run = self.run_instance
        return {"run_id": getattr(run, "id", None), "status": run.get_status(), "metrics": run.get_metrics()}


__all__ = ["RunDetails"]
