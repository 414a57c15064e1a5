"""v1 ``PythonScriptStep``s as launchbay pipeline steps (``launchbay.Step``): who writes each data, who reads it.

A ``PipelineData`` / ``OutputFileDatasetConfig`` is written by the step that lists it in ``outputs=[...]``
(or, not listed anywhere, passes it itself in its arguments) and read by every step that lists it in
``inputs=[...]`` or passes ``.as_input()``. In the writer's arguments it is ``outputs/NAME`` (a named output);
in a reader's it is the placeholder the runner replaces with the delivered input's path.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .dataset import PLACEHOLDER, DatasetConsumptionConfig, FileDataset
from .pipeline_data import PipelineInput, PipelineParameter, StepData


def step_id(name: str) -> str:
    """A v1 step name as a launchbay step name (``Train model`` -> ``Train_model``)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))[:41]
    return safe if re.match(r"[A-Za-z_]", safe) else f"s_{safe}"[:41]


def _data_of(item: Any) -> tuple[StepData, str | None] | None:
    if isinstance(item, PipelineInput):
        return item.data, item.name
    if isinstance(item, StepData):
        return item, None
    return None


def writers(steps: list[Any]) -> dict[int, str]:
    """id(data) -> the name of the step that writes it; one ``ConfigError`` for two writers or none."""
    listed: dict[int, list[str]] = {}
    passed: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for step in steps:
        for item in step.outputs:
            found = _data_of(item)
            if found is None or found[1] is not None:
                raise ConfigError(
                    f"Step {step.name!r} outputs=[{item!r}]: give PipelineData or OutputFileDatasetConfig."
                )
            listed.setdefault(id(found[0]), []).append(step.name)
            names[id(found[0])] = found[0].name
        for item in step.arguments:
            if isinstance(item, StepData) and item not in step.inputs:
                passed.setdefault(id(item), []).append(step.name)
                names[id(item)] = item.name
        for item in [*step.inputs, *step.arguments]:
            found = _data_of(item)
            if found is not None:
                names[id(found[0])] = found[0].name
    out: dict[int, str] = {}
    for key, name in names.items():
        by = listed.get(key) or passed.get(key) or []
        if len(set(by)) > 1:
            raise ConfigError(
                f"{name!r} is written by two steps ({', '.join(sorted(set(by)))}); put it in outputs=[...] of the"
                " step that writes it and pass .as_input() (or inputs=[...]) to the steps that read it."
            )
        if not by:
            raise ConfigError(f"{name!r} is read by a step but no step writes it: put it in outputs=[...] of one.")
        out[key] = by[0]
    return out


def _wiring(step: Any, written_by: dict[int, str]) -> tuple[list[Any], dict[str, str], dict[str, str]]:
    """The step's arguments (data as paths or placeholders, parameters as ``Param``), inputs and outputs."""
    from ...pipelines import Param

    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {item.name: f"outputs/{item.name}" for item in step.outputs}
    args: list[Any] = []

    def read(data: StepData, name: str | None) -> str:
        input_name = name or data.name
        inputs[input_name] = f"{step_id(written_by[id(data)])}.{data.name}"
        return PLACEHOLDER + input_name

    def dataset(item: Any) -> str:
        consumed = item.as_mount() if isinstance(item, FileDataset) else item
        inputs[consumed.name] = consumed.launchbay_source
        return str(consumed)

    for item in step.inputs:
        found = _data_of(item)
        if found is not None and written_by[id(found[0])] != step.name:
            read(*found)
        elif isinstance(item, (FileDataset, DatasetConsumptionConfig)):
            dataset(item)
    for item in step.arguments:
        found = _data_of(item)
        if isinstance(item, PipelineParameter):
            args.append(Param(item.name, item.default_value))
        elif found is not None and written_by[id(found[0])] == step.name and found[1] is None:
            outputs[found[0].name] = f"outputs/{found[0].name}"
            args.append(f"outputs/{found[0].name}")
        elif found is not None:
            args.append(read(*found))
        elif isinstance(item, (FileDataset, DatasetConsumptionConfig)):
            args.append(dataset(item))
        else:
            args.append(str(item))
    return args, inputs, outputs


def root_of(steps: list[Any], default: str | os.PathLike[str] | None) -> Path:
    """The folder every step's source directory is in: the pipeline's one snapshot."""
    folders = [Path(s.source_directory or default or ".").resolve() for s in steps]
    return Path(os.path.commonpath([str(f) for f in folders]))


def to_launchbay_steps(
    steps: list[Any], session: Any, default_source_directory: str | os.PathLike[str] | None = None
) -> tuple[list[Any], Path]:
    """The launchbay ``Step``s of v1's steps and the folder they run in."""
    from ...pipelines import Step
    from . import ENV_FLAG
    from .runconfig import ScriptRunConfig

    if not steps:
        raise ConfigError("Pipeline(steps=[...]) needs at least one PythonScriptStep.")
    root = root_of(steps, default_source_directory)
    written_by = writers(steps)
    out = []
    for step in steps:
        args, inputs, outputs = _wiring(step, written_by)
        folder = Path(step.source_directory or default_source_directory or ".").resolve()
        config = ScriptRunConfig(
            source_directory=folder,
            script=step.script_name,
            run_config=copy.copy(step.runconfig) if step.runconfig is not None else None,
            compute_target=step.compute_target,
        )
        env = {str(k): str(v) for k, v in config.run_config.environment_variables.items()}
        out.append(
            Step(
                step_id(step.name),
                os.path.relpath(folder / step.script_name, root),
                args=args,
                inputs=inputs,
                outputs=outputs,
                target=config.target_name(session),
                environment=config.environment_ref(),
                allow_reuse=step.allow_reuse,
                env={**env, ENV_FLAG: "1"},
            )
        )
    return out, root
