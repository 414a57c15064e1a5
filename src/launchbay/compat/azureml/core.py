"""``azureml.core``: Workspace, Experiment, Environment, ScriptRunConfig, Run, Model, ...

``Run`` here is both v1 faces of a run: ``Run.get_context()`` inside the code (launchbay's
in-run API with v1's extra methods) and the object ``experiment.submit`` returns, which
reads the launchbay store through a :class:`launchbay.RunHandle`.
"""

from __future__ import annotations

from typing import Any

from .compute import ComputeTarget
from .dataset import Dataset
from .environment import Environment
from .model import Model
from .run import Run, ScriptRun
from .runconfig import RunConfiguration, ScriptRunConfig
from .unsupported import module_getattr
from .workspace import Experiment, Workspace


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core", name)


__all__ = [
    "ComputeTarget",
    "Dataset",
    "Environment",
    "Experiment",
    "Model",
    "Run",
    "RunConfiguration",
    "ScriptRun",
    "ScriptRunConfig",
    "Workspace",
]
