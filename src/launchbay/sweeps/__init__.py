"""Hyperparameter sweeps (Azure ML v1 HyperDrive, simplified): ``sweep(...)`` → SweepHandle.

The sweep is a run record of its own; a detached controller process launches its
children on the chosen target from ONE snapshot, so it goes on after the
notebook or terminal that started it has closed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config import user_name
from ..errors import ConfigError
from ..secrets import redact_arguments

__all__ = [
    "BanditPolicy",
    "BayesianSampling",
    "Expression",
    "GridSampling",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "RandomSampling",
    "SobolSampling",
    "SweepHandle",
    "TruncationSelectionPolicy",
    "choice",
    "get_sweep",
    "load_sweep_yaml",
    "loguniform",
    "loguniform_v1",
    "lognormal",
    "normal",
    "qloguniform",
    "qloguniform_v1",
    "qlognormal",
    "qnormal",
    "quniform",
    "randint",
    "resume_sweep",
    "sweep",
    "uniform",
]

_EXPRESSIONS = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform", "normal", "qnormal")
_LAZY = {
    **{n: "space" for n in (*_EXPRESSIONS, "Expression", "lognormal", "qlognormal", "loguniform_v1")},
    **{n: "space" for n in ("qloguniform_v1",)},
    **{n: "sampling" for n in ("BayesianSampling", "GridSampling", "RandomSampling", "SobolSampling")},
    **{n: "policy" for n in ("BanditPolicy", "MedianStoppingPolicy", "NoTerminationPolicy")},
    "TruncationSelectionPolicy": "policy",
    "SweepHandle": "handle",
    "get_sweep": "handle",
    "resume_sweep": "handle",
    "load_sweep_yaml": "yamlconfig",
}

if TYPE_CHECKING:
    from .handle import SweepHandle, get_sweep, resume_sweep
    from .policy import (
        BanditPolicy,
        MedianStoppingPolicy,
        NoTerminationPolicy,
        Policy,
        TruncationSelectionPolicy,
    )
    from .sampling import BayesianSampling, GridSampling, RandomSampling, Sampling, SobolSampling
    from .space import (
        Expression,
        choice,
        lognormal,
        loguniform,
        loguniform_v1,
        normal,
        qlognormal,
        qloguniform,
        qloguniform_v1,
        qnormal,
        quniform,
        randint,
        uniform,
    )
    from .yamlconfig import load_sweep_yaml


def __getattr__(name: str) -> Any:
    """Load submodules on first use, so the CLI (which registers ``sweep``) stays fast."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'launchbay.sweeps' has no attribute {name!r}")


def sweep(
    script: str,
    space: dict[str, Expression] | None = None,
    *,
    primary_metric: str,
    goal: str = "minimize",
    max_total_runs: int = 8,
    max_concurrent_runs: int = 2,
    policy: Policy | None = None,
    sampling: Sampling | str | None = None,
    args: Sequence[str] = (),
    target: str | None = None,
    environment: str | None = None,
    experiment: str | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    max_duration_s: float | None = None,
    store: str | os.PathLike[str] | None = None,
    working_dir: str | None = None,
    code: str | None = None,
    extra_files: dict[str, str | bytes] | None = None,
    env_vars: dict[str, str] | None = None,
) -> SweepHandle:
    """Start a sweep of ``script`` over ``space`` (or ``sampling``); returns at once.

    Each child gets the sampled values as ``--name value`` after ``args``, as its params
    and as JSON in ``LAUNCHBAY_SWEEP_PARAMS`` (a notebook cell, ``code``, gets them as
    variables); ``policy`` may stop poor children early; ``env_vars`` reach every child (no
    secret-looking names: the sweep's configuration is kept in the store). Nothing is recorded
    on a bad input.
    """
    from ..gitinfo import git_properties
    from ..models import RunSpec
    from ..snapshot import take_snapshot
    from ..targets import make_target
    from .controller import start_controller
    from .handle import SweepHandle
    from .names import SWEEP_FILE
    from .policy import NoTerminationPolicy
    from .sampling import RandomSampling

    goal = goal.lower()
    if goal not in ("minimize", "maximize"):
        raise ConfigError(f"goal must be 'minimize' or 'maximize', not {goal!r}.")
    if isinstance(sampling, str):  # sampling="bayesian" with a space
        from .sampling import make_sampling

        if space is None:
            raise ConfigError(f"sampling={sampling!r} needs a space, e.g. {{'lr': loguniform(1e-4, 1e-1)}}.")
        sampling, space = make_sampling(sampling, space), None
    if sampling is not None and space is not None:
        raise ConfigError("Give the sweep either a space or a sampling (which holds its own space), not both.")
    if sampling is None:
        if space is None:
            raise ConfigError("Give the sweep a space, e.g. {'lr': loguniform(1e-4, 1e-1)}, or a sampling.")
        sampling = RandomSampling(space)
    from .. import secrets

    hidden = sorted(k for k in env_vars or {} if secrets.is_secret(k))
    if hidden:
        raise ConfigError(
            f"The sweep's env_vars {', '.join(hidden)} look secret and would be written into the store; "
            "give them to the target's environment instead."
        )
    if max_total_runs < 1 or max_concurrent_runs < 1:
        raise ConfigError("max_total_runs and max_concurrent_runs must be at least 1.")
    policy = policy or NoTerminationPolicy()
    from ..project import locate

    place = locate(source_dir)  # the one project-root rule (launchbay.project)
    source = place.root
    working_dir = place.working_dir if working_dir is None else working_dir
    from ..session import open_session

    session = open_session(store, project=source)
    target = session.default_target(target)
    child_spec = RunSpec(
        script=script,
        arguments=tuple(str(a) for a in args),
        target=target,
        environment=environment,
        working_dir=working_dir,
        code=code,
    )
    make_target(target, session.config, session.store).preflight(child_spec)
    if code is None:
        session._check_script(source, child_spec)
    budget = session.config.snapshot
    from ..config import LAUNCHBAY_SNAPSHOT_MAX_BYTES, LAUNCHBAY_SNAPSHOT_MAX_FILES

    snapshot = take_snapshot(
        session.store,
        source,
        max_bytes=int(budget.get("max_bytes", LAUNCHBAY_SNAPSHOT_MAX_BYTES.get())),
        max_files=int(budget.get("max_files", LAUNCHBAY_SNAPSHOT_MAX_FILES.get())),
        extra_files=extra_files,
    )
    real_arguments = [str(a) for a in args]
    arguments = redact_arguments(real_arguments)  # what the store keeps; the controller gets the real ones
    hidden_args = {str(i): a for i, (a, shown) in enumerate(zip(real_arguments, arguments)) if a != shown}
    config: dict[str, Any] = {
        "primary_metric": primary_metric,
        "goal": goal,
        "max_total_runs": int(max_total_runs),
        "max_concurrent_runs": int(max_concurrent_runs),
        "max_duration_s": max_duration_s,
        "target": target,
        "arguments": arguments,
        "sampling": sampling.to_json(),
        "policy": policy.to_json(),
        "env_vars": {str(k): str(v) for k, v in (env_vars or {}).items()},
    }
    params = {
        "primary_metric": primary_metric,
        "goal": goal,
        "max_total_runs": int(max_total_runs),
        "max_concurrent_runs": int(max_concurrent_runs),
        "sampling": sampling.kind,
        "policy": repr(policy),
        **{f"space.{k}": str(v) for k, v in sampling.space.items()},
    }
    spec = RunSpec(
        script=script,
        arguments=tuple(arguments),
        target="sweep",
        experiment=experiment or place.experiment,
        name=f"sweep {'cell' if code is not None else script}",
        environment=environment,
        working_dir=working_dir,
        code=code,
        tags={"launchbay.type": "sweep"},
        params=params,
    )
    properties: dict[str, Any] = {**git_properties(source), "launchbay.source_dir": str(source)}
    state = {"target_settings": {"type": "sweep"}, "child_target": target}
    record = session.store.create_run(
        spec,
        target_type="sweep",
        snapshot_id=snapshot.id,
        properties=properties,
        target_state=state,
        created_by=user_name(session.config),
    )
    try:
        (record.run_dir / SWEEP_FILE).write_text(json.dumps(config, indent=1))
        start_controller(session.store.uri, record, secret_arguments=hidden_args)
    except BaseException:
        session.store.delete_run(record.run_id)
        raise
    return SweepHandle(record.run_id, session)
