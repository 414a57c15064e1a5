"""launchbay: run notebook cells and scripts on any compute target, keep every run.

Imports are lazy so that ``import launchbay`` (and ``%load_ext launchbay``) stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "LaunchbayError",
    "Model",
    "Mpi",
    "Param",
    "PyTorch",
    "Run",
    "RunHandle",
    "RunSpec",
    "RunStatus",
    "Step",
    "TensorFlow",
    "automl",
    "get_automl",
    "get_model",
    "get_pipeline",
    "get_run",
    "get_sweep",
    "load_ipython_extension",
    "models",
    "pipeline",
    "pipeline_from_cells",
    "runs",
    "schedule",
    "schedules",
    "submit",
    "sweep",
    "unload_ipython_extension",
]

_LAZY = {
    "Run": ("launchbay.tracking.inrun", "Run"),
    "submit": ("launchbay.api", "submit"),
    "get_run": ("launchbay.api", "get_run"),
    "runs": ("launchbay.api", "runs"),
    "schedule": ("launchbay.api", "schedule"),
    "schedules": ("launchbay.api", "schedules"),
    "get_model": ("launchbay.api", "get_model"),
    "models": ("launchbay.api", "models"),
    "Model": ("launchbay.handle", "Model"),
    "sweep": ("launchbay.sweeps", "sweep"),
    "get_sweep": ("launchbay.sweeps", "get_sweep"),
    "pipeline": ("launchbay.pipelines", "pipeline"),
    "get_pipeline": ("launchbay.pipelines", "get_pipeline"),
    "pipeline_from_cells": ("launchbay.pipelines.cells", "pipeline_from_cells"),
    "automl": ("launchbay.automated", "automl"),
    "get_automl": ("launchbay.automated", "get_automl"),
    "Step": ("launchbay.pipelines", "Step"),
    "Param": ("launchbay.pipelines", "Param"),
    "RunHandle": ("launchbay.handle", "RunHandle"),
    "RunSpec": ("launchbay.models", "RunSpec"),
    "RunStatus": ("launchbay.models", "RunStatus"),
    "LaunchbayError": ("launchbay.errors", "LaunchbayError"),
    "PyTorch": ("launchbay.distributed", "PyTorch"),
    "Mpi": ("launchbay.distributed", "Mpi"),
    "TensorFlow": ("launchbay.distributed", "TensorFlow"),
}

if TYPE_CHECKING:
    from .api import get_model, get_run, models, runs, submit
    from .automated import automl, get_automl
    from .distributed import Mpi, PyTorch, TensorFlow
    from .errors import LaunchbayError
    from .handle import Model, RunHandle
    from .models import RunSpec, RunStatus
    from .pipelines import Param, Step, get_pipeline, pipeline
    from .pipelines.cells import pipeline_from_cells
    from .sweeps import get_sweep, sweep
    from .tracking.inrun import Run


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'launchbay' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext launchbay``: registers %%submit, %submit and %launchbay; handles show as live widgets."""
    from .ipython.magics import register

    register(ipython)


def _show_handles_in_a_running_kernel() -> None:
    """Imported into a running IPython without ``%load_ext``: handles still show as live widgets."""
    import sys

    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is not None and hasattr(shell, "display_formatter"):
        from .ipython.display import register_displays

        register_displays(shell)


def unload_ipython_extension(ipython: Any) -> None:
    pass


_show_handles_in_a_running_kernel()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "launchbay.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "launchbay-labextension"}]
