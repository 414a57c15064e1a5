"""``azureml.pipeline.steps``: ``PythonScriptStep``, one step of a v1 pipeline (a script on a compute target)."""

from __future__ import annotations

import os
from typing import Any

from .unsupported import module_getattr, not_supported


class PythonScriptStep:
    """A script with its arguments, data in and out, target and run configuration; ``allow_reuse`` as in v1
    (on by default: the step is reused when its code, environment, command, parameters and inputs are the
    same as a Completed earlier run's, and ``launchbay pipeline show`` says why it ran when it did)."""

    def __init__(
        self,
        script_name: str,
        name: str | None = None,
        arguments: list[Any] | None = None,
        compute_target: Any = None,
        runconfig: Any = None,
        runconfig_pipeline_params: Any = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        allow_reuse: bool = True,
        version: str | None = None,
        hash_paths: Any = None,
    ) -> None:
        from .runconfig import argument_list

        if runconfig_pipeline_params:
            not_supported(
                "PythonScriptStep(runconfig_pipeline_params=...)",
                "Pass a PipelineParameter in arguments=[...] instead; the script reads it from its command line.",
            )
        if params:
            not_supported(
                "PythonScriptStep(params=...)",
                "Pass the values in arguments=[...] (a PipelineParameter there is a pipeline parameter).",
            )
        self.script_name = str(script_name)
        self.name = str(name or script_name)
        self.arguments = argument_list("PythonScriptStep", arguments) if arguments is not None else []
        self.compute_target = compute_target
        self.runconfig = runconfig
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.source_directory = source_directory
        self.allow_reuse = bool(allow_reuse)

    def __repr__(self) -> str:
        return f"PythonScriptStep(name={self.name!r}, script_name={self.script_name!r})"


def __getattr__(name: str) -> Any:
    module_getattr("azureml.pipeline.steps", name)


__all__ = ["PythonScriptStep"]
