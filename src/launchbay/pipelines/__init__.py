"""Pipelines: a DAG of runs on any targets, step outputs feeding step inputs, unchanged steps reused.

``pipeline([Step(...), ...], experiment=...).submit()`` → PipelineHandle. The pipeline is a run record of its
own (target ``pipeline``) with its steps as children; a detached controller (controller.py) starts every step
whose inputs are ready, so it goes on after the notebook closes. Nothing is recorded on a bad input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .definition import Definition, Param, Step, define, load_yaml, with_params

if TYPE_CHECKING:
    from ..session import Session
    from .handle import PipelineHandle

__all__ = ["Param", "Pipeline", "PipelineHandle", "Step", "get_pipeline", "load_yaml", "pipeline", "rerun_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "PipelineHandle":
        from .handle import PipelineHandle

        return PipelineHandle
    raise AttributeError(f"module 'launchbay.pipelines' has no attribute {name!r}")


@dataclass
class Pipeline:
    """A checked definition, ready to submit (as often as wanted: unchanged steps are reused)."""

    definition: Definition
    experiment: str | None = None
    source_dir: str | os.PathLike[str] | None = None
    store: str | os.PathLike[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def submit(self, params: Mapping[str, Any] | None = None, *, no_reuse: Sequence[str] = ()) -> PipelineHandle:
        from ..project import locate
        from ..session import open_session

        place = locate(self.source_dir)
        session = open_session(self.store, project=place.root)
        values = with_params(self.definition, {**self.params, **(params or {})})
        return submit_definition(
            session, self.definition, values, place.root, self.experiment or place.experiment, no_reuse=no_reuse
        )


def pipeline(
    steps: Sequence[Step],
    *,
    name: str | None = None,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Pipeline:
    """A pipeline of ``steps`` (checked now: names, edges, cycles, parameters); ``.submit()`` runs it."""
    definition = define(steps, name or experiment or "pipeline")
    with_params(definition, params or {})
    return Pipeline(definition, experiment, source_dir, store, dict(params or {}))


def submit_definition(
    session: Session,
    definition: Definition,
    values: Mapping[str, Any],
    root: Path,
    experiment: str,
    *,
    no_reuse: Sequence[str] = (),
    previous: str | None = None,
) -> PipelineHandle:
    """Check every step (script, target), take the ONE snapshot they run on, record the pipeline and start its
    controller; one ``LaunchbayError`` line and nothing recorded when a step cannot run."""
    from ..config import user_name
    from ..gitinfo import git_properties
    from ..models import RunSpec
    from ..snapshot import take_snapshot
    from ..snapshot_budget import Budget
    from .controller import PIPELINE_FILE, start_controller
    from .handle import PipelineHandle

    session.store.check_writable()
    definition = check_steps(session, definition, root)
    budget = Budget.from_config(session.config.snapshot)
    cells = {_in(s.get("working_dir"), s["script"]): s["code"] for s in definition.steps if s.get("code") is not None}
    snapshot = take_snapshot(
        session.store, root, max_bytes=budget.max_bytes, max_files=budget.max_files, extra_files=cells or None
    )
    spec = RunSpec(
        script=None,
        target="pipeline",
        experiment=experiment,
        name=f"pipeline {definition.name}",
        code="",
        tags={"launchbay.type": "pipeline", "launchbay.pipeline.name": definition.name},
        params={f"param.{k}": v for k, v in values.items()} | {"steps": len(definition.steps)},
    )
    record = session.store.create_run(
        spec,
        target_type="pipeline",
        snapshot_id=snapshot.id,
        properties={**git_properties(root), "launchbay.source_dir": str(root)},
        target_state={"target_settings": {"type": "pipeline"}},
        created_by=user_name(session.config),
    )
    try:
        config: dict[str, Any] = {
            "definition": definition.to_json(),
            "values": dict(values),
            "no_reuse": list(no_reuse),
            "previous": previous,
        }
        (record.run_dir / PIPELINE_FILE).write_text(json.dumps(config, indent=1))
        start_controller(session.store.uri, record)
    except BaseException:
        session.store.delete_run(record.run_id)
        raise
    return PipelineHandle(record.run_id, session)


def check_steps(session: Session, definition: Definition, root: Path) -> Definition:
    """Every step can run (its target exists, its script is in ``root``): one ``LaunchbayError`` line if not;
    the definition with local input paths made absolute."""
    from ..models import RunSpec

    steps = []
    for step in definition.steps:
        spec = RunSpec(
            script=step["script"],
            target=session.default_target(step.get("target")),
            code=step.get("code"),  # a cell step's file is written into the snapshot, not looked for
            working_dir=step.get("working_dir") or ".",
        )
        session.check(spec, root)  # an unknown target or a missing script: one line, before anything
        inputs = {}
        for input_name, source in step["inputs"].items():
            if definition.upstream(step["name"]).get(input_name) is None and not _is_remote(source):
                source = str((root / source).resolve()) if not source.startswith("dataset:") else source
            inputs[input_name] = source
        steps.append({**step, "inputs": inputs})
    return Definition(definition.name, steps, definition.params)


def _in(working_dir: str | None, path: str) -> str:
    return path if working_dir in (None, "", ".") else f"{working_dir}/{path}"


def _is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "s3://", "dataset:"))


def get_pipeline(run_id: str, *, store: str | os.PathLike[str] | None = None) -> PipelineHandle:
    from ..errors import ConfigError
    from ..session import open_session
    from .handle import PipelineHandle

    session = open_session(store)
    full = session.store.resolve_run_id(run_id)
    if session.store.get_run(full).target_type != "pipeline":
        raise ConfigError(f"Run {full} is not a pipeline; give a pipeline's run id (launchbay runs lists them).")
    return PipelineHandle(full, session)


def rerun_pipeline(
    run_id: str,
    *,
    from_step: str | None = None,
    no_reuse: bool = False,
    params: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> PipelineHandle:
    """Run a pipeline's definition again on its folder as it is now: unchanged steps are reused (a pipeline
    whose controller died resumes this way: its Completed steps are kept, none runs twice); ``from_step``
    runs that step and every step after it again; ``no_reuse`` runs every step."""
    from .controller import PIPELINE_FILE

    handle = get_pipeline(run_id, store=store)
    session = handle.session
    record = session.refresh(handle.run_id)
    data = json.loads((record.run_dir / PIPELINE_FILE).read_text())
    definition = Definition.from_json(data["definition"])
    message = str((record.error or {}).get("message") or "")
    died = any(m in message for m in ("died", "No heartbeat", "The pipeline controller stopped"))
    if died and not (from_step or no_reuse or params):
        return _resume(session, record)
    values = with_params(definition, {**data["values"], **(params or {})})
    fresh: list[str] = []
    if no_reuse:
        fresh = definition.names()
    elif from_step:
        definition.step(from_step)
        fresh = [from_step, *sorted(definition.downstream(from_step))]
    root = Path(record.properties.get("launchbay.source_dir") or ".")
    return submit_definition(
        session, definition, values, root, record.experiment, no_reuse=fresh, previous=record.run_id
    )


def _resume(session: Session, record: Any) -> PipelineHandle:
    """A pipeline whose controller died goes on in the same record: its Completed (and reused) steps are kept,
    the steps it left running are watched, not started again."""
    import time

    from ..errors import LaunchbayError
    from .controller import start_controller
    from .handle import PipelineHandle

    state = {k: v for k, v in record.target_state.items() if k not in ("runner_pid", "runner_pgid")}
    if not session.store.reopen_run(record.pk, heartbeat=time.time(), target_state=state):
        raise LaunchbayError(f"Pipeline {record.run_id} changed meanwhile; nothing to resume.")
    start_controller(session.store.uri, session.store.get_run(record.run_id), resume=True)
    return PipelineHandle(record.run_id, session)
