"""Hyperparameter sweeps (Azure ML v1 HyperDrive, simplified): ``sweep(...)`` → SweepHandle.

The sweep is a run record of its own; a detached controller process launches its
children on the chosen target from ONE snapshot, so it goes on after the
notebook or terminal that started it has closed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    warm_start: Sequence[str] = (),
    resume_children: Sequence[str] = (),
    resume_argument: str | None = None,
) -> SweepHandle:
    """Start a sweep of ``script`` over ``space`` (or ``sampling``); returns at once.

    Each child gets the sampled values as ``--name value`` after ``args``, as its params
    and as JSON in ``LAUNCHBAY_SWEEP_PARAMS`` (a notebook cell, ``code``, gets them as
    variables); ``policy`` may stop poor children early; ``env_vars`` reach every child (no
    secret-looking names: the sweep's configuration is kept in the store). ``warm_start``: earlier
    sweeps whose trials a Bayesian sampler learns from; ``resume_children``: earlier trials stopped
    part way that run first, with their params, from their checkpoints (sweeps/warmstart.py), whose
    folder they also get after ``resume_argument`` when one is named (v1's ``--resume-from``).
    Nothing is recorded on a bad input.
    """
    from ..models import RunSpec
    from ..project import locate
    from ..session import open_session
    from .starting import launch_sweep, parse_settings, plan_sweep

    settings = parse_settings(
        primary_metric, goal, space, sampling, policy, max_total_runs, max_concurrent_runs, env_vars
    )
    place = locate(source_dir)  # the one project-root rule (launchbay.project)
    session = open_session(store, project=place.root)
    child = RunSpec(
        script=script,
        arguments=tuple(str(a) for a in args),
        target=session.default_target(target),
        environment=environment,
        working_dir=place.working_dir if working_dir is None else working_dir,
        code=code,
    )
    plan = plan_sweep(
        session,
        settings,
        child,
        place.root,
        experiment=experiment or place.experiment,
        max_duration_s=max_duration_s,
        extra_files=extra_files,
        warm_start=warm_start,
        resume_children=resume_children,
    )
    plan.config["resume_argument"] = resume_argument
    return launch_sweep(session, plan)
