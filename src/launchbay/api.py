"""The Python API: ``submit``, ``get_run``, ``runs``, ``get_model``, ``models``, ``schedule``, ``schedules``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .distributed import DistributedLike, parse
from .handle import Model, RunHandle
from .models import RunSpec
from .session import open_session
from .store import RunRecord


def submit(
    script: str | None = None,
    args: Sequence[str] = (),
    *,
    target: str | None = None,
    experiment: str | None = None,
    name: str | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    environment: str | None = None,
    max_duration_s: float | None = None,
    system_metrics_interval_s: float | None = None,
    tags: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    env_vars: dict[str, str] | None = None,
    store: str | os.PathLike[str] | None = None,
    distributed: DistributedLike = None,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, str] | None = None,
    on_progress: Callable[[str], None] | None = None,
    command: str | Sequence[str] | None = None,
    priority: int = 0,
) -> RunHandle:
    """Run ``script`` (relative to the current folder) on ``target`` (default: launchbay.toml's
    ``[defaults] target``, else local); see ``launchbay.project`` for the root.

    Returns at once with a handle; ``handle.wait(show_output=True)`` streams the log.
    ``on_progress(line)`` hears what the submit is doing meanwhile (an environment build, the snapshot),
    the lines ``launchbay submit`` prints. ``inputs={"train": "./data/train", "ref": "https://...:download"}``
    gives the run data (a path, URL or ``dataset:NAME[:VERSION]``), in ``$LAUNCHBAY_INPUT_<NAME>``;
    ``outputs={"features": "outputs/features"}`` makes what it writes there a dataset version once it completes.

    ``command=["bash", "run.sh", "x"]`` (or a string, run by ``/bin/sh -c``) runs a command instead of a
    script, with the same snapshot, environment, logs, metrics, cancel and distributed settings; in it,
    ``python`` is the run's interpreter and ``from launchbay import Run`` works in Python children.
    On a target with ``max_concurrent_runs`` and no free slot the run is Queued (``priority``: higher first).
    """
    from .errors import ConfigError
    from .models import as_command
    from .project import locate

    if (script is None) == (command is None):
        raise ConfigError("Pass a script (launchbay.submit('train.py')) or a command (command=['bash', 'run.sh']).")
    words = as_command(command) if command is not None else (script or "", *(str(a) for a in args))

    place = locate(source_dir)
    session = open_session(store, project=place.root)
    spec = RunSpec(
        script=words[0],
        arguments=tuple(words[1:]) + (tuple(str(a) for a in args) if command is not None else ()),
        target=session.default_target(target),
        experiment=experiment or place.experiment,
        name=name,
        working_dir=place.working_dir,
        environment=environment,
        max_duration_s=max_duration_s,
        system_metrics_interval_s=system_metrics_interval_s,
        tags=dict(tags or {}),
        params=dict(params or {}),
        env_vars=dict(env_vars or {}),
        distributed=_distributed_dict(distributed),
        inputs=_inputs_dict(inputs),
        outputs=_outputs_dict(outputs),
        command=command is not None,
    )
    return session.submit(spec, place.root, on_progress=on_progress, priority=priority)


def schedule(
    name: str,
    command: str | Sequence[str],
    *,
    every: str | None = None,
    cron: str | None = None,
    on_change: str | None = None,
    catch_up: bool = True,
    store: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the launchbay command line ``command`` (``"submit -t gpu-box train.py"``) by rule from the
    current folder: ``every="15m"``, ``cron="0 3 * * *"`` (UTC) or ``on_change="dataset:raw"`` (each new
    version of that dataset); what ``launchbay schedule add`` does.
    A fire missed while nothing ran runs once late, or with ``catch_up=False`` is skipped. Returns the
    schedule as ``launchbay schedule show --json`` does; the store's supervisor fires it."""
    import shlex

    from . import scheduling as _schedules

    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words and words[0] == "launchbay":
        words = words[1:]
    with open_session(store) as session:
        made = _schedules.add_schedule(
            session.store, name, words, every=every, cron=cron, on_change=on_change, catch_up=catch_up
        )
        return _schedules.schedule_json(session.store, made)


def schedules(*, store: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every schedule as ``launchbay schedule list --json`` prints it."""
    from . import scheduling as _schedules

    with open_session(store) as session:
        return [_schedules.schedule_json(session.store, s) for s in session.store.schedules()]


def _inputs_dict(inputs: dict[str, Any] | None) -> dict[str, str]:
    """``{"train": "./data/train"}`` (a value may be an Azure ML layer Dataset) as the spec's mapping."""
    from .data.spec import from_mapping

    return {s.name: s.source + ("" if s.mode == "mount" else f":{s.mode}") for s in from_mapping(inputs or {})}


def _outputs_dict(outputs: dict[str, str] | None) -> dict[str, str]:
    from .data.outputs import outputs_argument

    return outputs_argument([f"{name}={path}" for name, path in (outputs or {}).items()])


def _distributed_dict(value: DistributedLike) -> dict[str, Any] | None:
    """``PyTorch(...)``, ``"pytorch:2"`` or a dict, as the plain dict a RunSpec carries."""
    parsed = parse(value)
    return parsed.to_dict() if parsed else None


def get_run(run_id: str, *, store: str | os.PathLike[str] | None = None) -> RunHandle:
    """Re-attach to a run by id (or a unique prefix of it)."""
    session = open_session(store)
    return RunHandle(session.store.resolve_run_id(run_id), session)


def runs(
    experiment: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 100,
    store: str | os.PathLike[str] | None = None,
) -> list[RunRecord]:
    """Run records, newest first (non-terminal ones caught up with their journals)."""
    return open_session(store).runs(experiment=experiment, status=status, limit=limit)


def get_model(name: str, version: int | None = None, *, store: str | os.PathLike[str] | None = None) -> Model:
    """The latest version of model ``name`` (or ``version``); ``name`` may also be ``NAME:VERSION``."""
    from .config import ProjectConfig
    from .registry import ModelRegistry, parse_ref
    from .session import Session
    from .store import open_store

    parsed, ref_version = parse_ref(name)
    session = Session(open_store(store), ProjectConfig())  # a model needs no launchbay.toml (runs load theirs)
    return Model(ModelRegistry(session.store).get(parsed, version or ref_version), session)


def models(*, store: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Every registered model: its latest version's details and how many versions it has."""
    from .registry import ModelRegistry
    from .store import open_store

    with open_store(store) as opened:
        return ModelRegistry(opened).models()
