"""Notebook cells as pipeline steps: ``%%submit --step NAME --pipeline P`` keeps the cell here (in the kernel),
``pipeline_from_cells(P)`` (or ``%launchbay pipeline submit P``) makes them one pipeline.

Running a step's cell again replaces that step (its place in the pipeline stays); the steps are checked as a
whole only when the pipeline is made, so cells can come in any order. A cell step's parameters
(``--param lr=0.1``) are variables in the cell, as a sweep's are, and on its command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .definition import Param, Step

#: where a cell step's body is written in the pipeline's snapshot (inside the notebook's folder)
CELLS_DIR = ".launchbay/cells"
_REF = re.compile(r"^\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class CellStep:
    step: Step
    root: Path  # the project the cell's notebook is in
    experiment: str | None


_KEPT: dict[str, dict[str, CellStep]] = {}


def cell_script(pipeline: str, step: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", pipeline)
    return f"{CELLS_DIR}/{safe}/{step}.py"


def keep_cell_step(
    pipeline: str,
    name: str,
    code: str,
    *,
    root: Path,
    working_dir: str = ".",
    args: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
    target: str | None = None,
    environment: str | None = None,
    experiment: str | None = None,
    allow_reuse: bool = True,
) -> list[str]:
    """Keep the cell as step ``name`` of ``pipeline`` (replacing a step of that name); the pipeline's steps."""
    if not pipeline.strip():
        raise ConfigError("--pipeline needs a name: %%submit --step prep --pipeline demo.")
    words: list[str | Param] = []
    for word in args or []:
        ref = _REF.match(word)
        words.append(Param(ref.group(1)) if ref else word)
    for key, value in (params or {}).items():
        words += [f"--{key}", Param(key, value)]
    step = Step(
        name,
        cell_script(pipeline, name),
        args=words,
        inputs=dict(inputs or {}),
        outputs=dict(outputs or {}),
        target=target,
        environment=environment,
        allow_reuse=allow_reuse,
        code=code,
        working_dir=working_dir,
    )
    kept = _KEPT.setdefault(pipeline, {})
    kept[name] = CellStep(step, Path(root), experiment)
    return list(kept)


def cell_pipelines() -> dict[str, list[str]]:
    """The pipelines of cells this kernel has kept: name -> its steps, in the order first given."""
    return {name: list(steps) for name, steps in _KEPT.items()}


def forget_cells(pipeline: str) -> None:
    _KEPT.pop(pipeline, None)


def pipeline_from_cells(
    name: str,
    *,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Any:
    """The pipeline of the cells kept under ``name`` (checked now: edges, cycles, parameters); ``.submit()``."""
    from . import pipeline

    kept = _KEPT.get(name)
    if not kept:
        known = ", ".join(_KEPT) or "none yet"
        raise ConfigError(
            f"No cells are kept for pipeline {name!r} (kept: {known}); run cells with"
            f" `%%submit --step STEP --pipeline {name}` first."
        )
    roots = {c.root for c in kept.values()}
    if len(roots) > 1:
        raise ConfigError(f"The cells of pipeline {name!r} come from several projects ({', '.join(map(str, roots))}).")
    values = dict(params or {})
    steps = [_with_values(c.step, values) for c in kept.values()]
    chosen = experiment or next((c.experiment for c in kept.values() if c.experiment), None)
    return pipeline(steps, name=name, experiment=chosen or roots.pop().name, params=values,
                    source_dir=next(iter(kept.values())).root, store=store)  # fmt: skip


def _with_values(step: Step, values: Mapping[str, Any]) -> Step:
    """A parameter the cells name without a default takes the value given now (else it must be given)."""
    args = [Param(a.name, a.default if a.default is not None else values.get(a.name)) if isinstance(a, Param) else a
            for a in step.args]  # fmt: skip
    return replace(step, args=args)
