"""How ``sweep(...)`` starts a sweep, in three steps that each do one thing:

* ``parse_settings`` turns what the user gave into a checked ``SweepSettings`` (goal, sampling,
  policy, limits) — a bad value is one ``ConfigError`` before anything else happens;
* ``plan_sweep`` checks the child runs' target and script, takes the ONE snapshot every child runs
  on, and writes down the sweep's record, its configuration for the controller and its params;
* ``launch_sweep`` records the sweep and starts its detached controller (nothing stays recorded when
  that fails).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..models import RunSpec
from ..secrets import is_secret, redact_arguments

if TYPE_CHECKING:
    from ..session import Session
    from ..snapshot import Snapshot
    from .handle import SweepHandle
    from .policy import Policy
    from .sampling import Sampling
    from .space import Expression


@dataclass(frozen=True)
class SweepSettings:
    """What the sweep searches and how: every value checked."""

    primary_metric: str
    goal: str
    sampling: Sampling
    policy: Policy
    max_total_runs: int
    max_concurrent_runs: int
    env_vars: dict[str, str]


@dataclass
class SweepPlan:
    """What ``launch_sweep`` records and hands the controller."""

    spec: RunSpec  # the sweep's own record
    snapshot: Snapshot
    properties: dict[str, Any]
    state: dict[str, Any]
    config: dict[str, Any]  # sweep.json: what the controller reads
    secret_arguments: dict[str, str] = field(default_factory=dict)  # index -> real value, never stored


def parse_settings(
    primary_metric: str,
    goal: str,
    space: Mapping[str, Expression] | None,
    sampling: Sampling | str | None,
    policy: Policy | None,
    max_total_runs: int,
    max_concurrent_runs: int,
    env_vars: Mapping[str, str] | None,
) -> SweepSettings:
    from .policy import NoTerminationPolicy
    from .sampling import RandomSampling, make_sampling

    goal = goal.lower()
    if goal not in ("minimize", "maximize"):
        raise ConfigError(f"goal must be 'minimize' or 'maximize', not {goal!r}.")
    if isinstance(sampling, str):  # sampling="bayesian" with a space
        if space is None:
            raise ConfigError(f"sampling={sampling!r} needs a space, e.g. {{'lr': loguniform(1e-4, 1e-1)}}.")
        sampling, space = make_sampling(sampling, dict(space)), None
    if sampling is not None and space is not None:
        raise ConfigError("Give the sweep either a space or a sampling (which holds its own space), not both.")
    if sampling is None:
        if space is None:
            raise ConfigError("Give the sweep a space, e.g. {'lr': loguniform(1e-4, 1e-1)}, or a sampling.")
        sampling = RandomSampling(dict(space))
    hidden = sorted(k for k in env_vars or {} if is_secret(k))
    if hidden:
        raise ConfigError(
            f"The sweep's env_vars {', '.join(hidden)} look secret and would be written into the store; "
            "give them to the target's environment instead."
        )
    if max_total_runs < 1 or max_concurrent_runs < 1:
        raise ConfigError("max_total_runs and max_concurrent_runs must be at least 1.")
    return SweepSettings(
        primary_metric=primary_metric,
        goal=goal,
        sampling=sampling,
        policy=policy or NoTerminationPolicy(),
        max_total_runs=int(max_total_runs),
        max_concurrent_runs=int(max_concurrent_runs),
        env_vars={str(k): str(v) for k, v in (env_vars or {}).items()},
    )


def plan_sweep(
    session: Session,
    settings: SweepSettings,
    child: RunSpec,
    source: Path,
    *,
    experiment: str,
    max_duration_s: float | None,
    extra_files: dict[str, str | bytes] | None = None,
    warm_start: Sequence[str] = (),
    resume_children: Sequence[str] = (),
) -> SweepPlan:
    """Check the children's target and script, then take their one snapshot; raises before anything is
    recorded."""
    from ..gitinfo import git_properties
    from ..snapshot import take_snapshot
    from ..snapshot_budget import Budget
    from .warmstart import resumed_trials, warm_trials

    session.check(child, source)
    warm = warm_trials(session, warm_start, settings.primary_metric)
    resumed = resumed_trials(session, resume_children, settings.max_total_runs)
    budget = Budget.from_config(session.config.snapshot)
    snapshot = take_snapshot(
        session.store, source, max_bytes=budget.max_bytes, max_files=budget.max_files, extra_files=extra_files
    )
    real_arguments = list(child.arguments)
    arguments = redact_arguments(real_arguments)  # what the store keeps; the controller gets the real ones
    sampling = settings.sampling
    config: dict[str, Any] = {
        "primary_metric": settings.primary_metric,
        "goal": settings.goal,
        "max_total_runs": settings.max_total_runs,
        "max_concurrent_runs": settings.max_concurrent_runs,
        "max_duration_s": max_duration_s,
        "target": child.target,
        "arguments": arguments,
        "sampling": sampling.to_json(),
        "policy": settings.policy.to_json(),
        "env_vars": settings.env_vars,
        "warm_start": warm,
        "resume_children": resumed,
    }
    params = {
        "primary_metric": settings.primary_metric,
        "goal": settings.goal,
        "max_total_runs": settings.max_total_runs,
        "max_concurrent_runs": settings.max_concurrent_runs,
        "sampling": sampling.kind,
        "policy": repr(settings.policy),
        **{f"space.{k}": str(v) for k, v in sampling.space.items()},
    }
    spec = RunSpec(
        script=child.script,
        arguments=tuple(arguments),
        target="sweep",
        experiment=experiment,
        name=f"sweep {'cell' if child.code is not None else child.script}",
        environment=child.environment,
        working_dir=child.working_dir,
        code=child.code,
        tags={"launchbay.type": "sweep"},
        params=params,
    )
    return SweepPlan(
        spec=spec,
        snapshot=snapshot,
        properties={**git_properties(source), "launchbay.source_dir": str(source)},
        state={"target_settings": {"type": "sweep"}, "child_target": child.target},
        config=config,
        secret_arguments=_secret_arguments(real_arguments, arguments),
    )


def launch_sweep(session: Session, plan: SweepPlan) -> SweepHandle:
    """Record the sweep and start its controller, detached: it outlives this process."""
    from ..config import user_name
    from .controller import start_controller
    from .handle import SweepHandle
    from .names import SWEEP_FILE

    record = session.store.create_run(
        plan.spec,
        target_type="sweep",
        snapshot_id=plan.snapshot.id,
        properties=plan.properties,
        target_state=plan.state,
        created_by=user_name(session.config),
    )
    try:
        (record.run_dir / SWEEP_FILE).write_text(json.dumps(plan.config, indent=1))
        start_controller(session.store.uri, record, secret_arguments=plan.secret_arguments)
    except BaseException:
        session.store.delete_run(record.run_id)
        raise
    return SweepHandle(record.run_id, session)


def _secret_arguments(real: Sequence[str], shown: Sequence[str]) -> dict[str, str]:
    return {str(i): a for i, (a, s) in enumerate(zip(real, shown)) if a != s}
