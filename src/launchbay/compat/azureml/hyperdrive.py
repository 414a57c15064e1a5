"""``azureml.train.hyperdrive``: HyperDriveConfig over launchbay's sweeps.

Expressions keep v1's meaning, including ``loguniform(min, max)`` = exp(uniform(min, max))
(launchbay's own ``loguniform`` takes the values, not the exponents). Parameter names may
carry v1's leading dashes (``"--lr"``): the script gets ``--lr VALUE`` either way.
``experiment.submit(HyperDriveConfig(...))`` starts a launchbay sweep (a detached controller
that outlives the notebook) and returns a :class:`HyperDriveRun`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ...errors import ConfigError
from ...sweeps import policy as _policy
from ...sweeps import space as _space
from . import ENV_FLAG
from .run import Run
from .unsupported import module_getattr, not_supported

# -- parameter expressions (v1 signatures) ------------------------------------------------------


def choice(*options: Any) -> Any:
    """``choice(1, 2)``, ``choice([1, 2])`` or ``choice(range(1, 5))``, as in v1."""
    if len(options) == 1 and isinstance(options[0], (list, tuple, range)):
        options = tuple(options[0])
    return _space.choice(*options)


def randint(upper: int) -> Any:
    return _space.randint(upper)


def uniform(min_value: float, max_value: float) -> Any:
    return _space.uniform(min_value, max_value)


def quniform(min_value: float, max_value: float, q: float) -> Any:
    return _space.quniform(min_value, max_value, q)


def loguniform(min_value: float, max_value: float) -> Any:
    """v1's form: exp(uniform(min_value, max_value)) — the bounds are exponents."""
    return _space.loguniform_v1(min_value, max_value)


def qloguniform(min_value: float, max_value: float, q: float) -> Any:
    return _space.qloguniform_v1(min_value, max_value, q)


def normal(mu: float, sigma: float) -> Any:
    return _space.normal(mu, sigma)


def qnormal(mu: float, sigma: float, q: float) -> Any:
    return _space.qnormal(mu, sigma, q)


def lognormal(mu: float, sigma: float) -> Any:
    return _space.lognormal(mu, sigma)


def qlognormal(mu: float, sigma: float, q: float) -> Any:
    return _space.qlognormal(mu, sigma, q)


# -- sampling -------------------------------------------------------------------------------------


class _Sampling:
    kind = "random"

    def __init__(self, parameter_space: dict[str, Any], properties: dict[str, Any] | None = None) -> None:
        if not isinstance(parameter_space, dict) or not parameter_space:
            raise ConfigError(f"{type(self).__name__} needs a parameter space, e.g. {{'--lr': uniform(0.01, 0.1)}}.")
        self.parameter_space = dict(parameter_space)
        self.properties = dict(properties or {})

    def to_launchbay(self) -> Any:
        from ...sweeps.sampling import make_sampling

        space = {str(name).lstrip("-"): expr for name, expr in self.parameter_space.items()}
        seed = self.properties.get("rngSeed", self.properties.get("seed"))
        return make_sampling(self.kind, space, seed=None if seed is None else int(seed))


class RandomParameterSampling(_Sampling):
    kind = "random"


class GridParameterSampling(_Sampling):
    kind = "grid"


class BayesianParameterSampling(_Sampling):
    kind = "bayesian"


class SobolParameterSampling(_Sampling):
    kind = "sobol"


# -- early termination (v1 argument order: evaluation_interval first) ----------------------------


def BanditPolicy(
    evaluation_interval: int = 1,
    slack_factor: float | None = None,
    slack_amount: float | None = None,
    delay_evaluation: int = 0,
) -> Any:
    return _policy.BanditPolicy(
        slack_factor=slack_factor,
        slack_amount=slack_amount,
        evaluation_interval=evaluation_interval,
        delay_evaluation=delay_evaluation,
    )


def MedianStoppingPolicy(evaluation_interval: int = 1, delay_evaluation: int = 5) -> Any:
    return _policy.MedianStoppingPolicy(evaluation_interval=evaluation_interval, delay_evaluation=delay_evaluation)


def TruncationSelectionPolicy(
    truncation_percentage: int,
    evaluation_interval: int = 1,
    delay_evaluation: int = 0,
    exclude_finished_jobs: bool = False,
) -> Any:
    return _policy.TruncationSelectionPolicy(
        truncation_percentage,
        evaluation_interval=evaluation_interval,
        delay_evaluation=delay_evaluation,
        exclude_finished_jobs=exclude_finished_jobs,
    )


def NoTerminationPolicy() -> Any:
    return _policy.NoTerminationPolicy()


class PrimaryMetricGoal:
    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"


# -- the configuration and its run ------------------------------------------------------------------


class HyperDriveConfig:
    """A sweep of ``run_config`` (a ScriptRunConfig) over a parameter sampling."""

    def __init__(
        self,
        hyperparameter_sampling: _Sampling,
        primary_metric_name: str,
        primary_metric_goal: str,
        max_total_runs: int,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: int = 10080,
        policy: Any = None,
        estimator: Any = None,
        run_config: Any = None,
        resume_from: Any = None,
        resume_child_runs: Any = None,
        pipeline: Any = None,
        debug_flag: Any = None,
    ) -> None:
        if pipeline is not None:
            not_supported("HyperDriveConfig(pipeline=)", "Give run_config=ScriptRunConfig(...) instead.")
        if estimator is not None and run_config is None:  # v1's older form: the estimator's ScriptRunConfig
            run_config = estimator.script_run_config
        if run_config is None:
            raise ConfigError("HyperDriveConfig needs run_config=ScriptRunConfig(...): the script each trial runs.")
        self.resume_from = _run_ids(resume_from)  # warm start: a bayesian sampler learns from their trials
        self.resume_child_runs = _run_ids(resume_child_runs)  # go on from their checkpoints, same params
        self.run_config = run_config
        self.hyperparameter_sampling = hyperparameter_sampling
        self.primary_metric_name = primary_metric_name
        self.primary_metric_goal = str(primary_metric_goal).lower()
        self.max_total_runs = int(max_total_runs)
        self.max_concurrent_runs = int(max_concurrent_runs or min(self.max_total_runs, 4))
        self.max_duration_minutes = max_duration_minutes
        self.policy = policy

    def _submit_to(self, experiment: Any, tags: dict[str, str]) -> HyperDriveRun:
        from ...sweeps import sweep

        child = self.run_config.launchbay_arguments(experiment, tags)
        if "command" in child:
            not_supported("A command in a HyperDrive sweep", "Sweep a script: ScriptRunConfig(script='train.py').")
        if child.pop("distributed", None) is not None:
            not_supported("A distributed configuration in a HyperDrive sweep", "Sweep single-process trials.")
        handle = sweep(
            child["script"],
            sampling=self.hyperparameter_sampling.to_launchbay(),
            primary_metric=self.primary_metric_name,
            goal=self.primary_metric_goal,
            max_total_runs=self.max_total_runs,
            max_concurrent_runs=self.max_concurrent_runs,
            policy=self.policy,
            args=child["args"],
            target=child["target"],
            environment=child["environment"],
            experiment=child["experiment"],
            source_dir=child["source_dir"],
            max_duration_s=float(self.max_duration_minutes) * 60 if self.max_duration_minutes else None,
            store=child["store"],
            env_vars={ENV_FLAG: "1"},
            warm_start=self.resume_from,
            resume_children=self.resume_child_runs,
            resume_argument="--resume-from",  # v1 gave a resumed child its checkpoint folder there
        )
        return HyperDriveRun(experiment, handle.run_id)


def _run_ids(runs: Any) -> list[str]:
    """v1 takes one run or a list: HyperDriveRun, Run or run id."""
    if runs is None:
        return []
    items = runs if isinstance(runs, (list, tuple)) else [runs]
    return [str(getattr(r, "id", r)) for r in items]


class HyperDriveRun(Run):
    """The sweep's parent run: its children, best first."""

    @property
    def handle(self) -> Any:
        from ...sweeps import get_sweep

        return get_sweep(self.id, store=self.experiment.workspace._store)

    def wait_for_completion(
        self, show_output: bool = False, wait_post_processing: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        """Block until the sweep ends; with ``show_output`` print each trial's start and end and the best
        so far as they happen (the lines ``launchbay sweep`` prints). Ctrl-C stops the printing, not the sweep."""
        if show_output:
            from ...sweeps.watch import watch

            watch(self.handle, out=sys.stdout)  # where v1 printed, and the notebook shows as output
        return super().wait_for_completion(raise_on_error=raise_on_error)

    def get_best_run_by_primary_metric(
        self, include_failed: bool = True, include_canceled: bool = True, include_resume_from_runs: bool = True
    ) -> Run | None:
        """The best completed child; with ``include_resume_from_runs`` also the trials of the sweeps this
        one was warm-started from (``resume_from``), as v1 compared them."""
        handle = self.handle
        best = handle.best_run()
        candidates: list[tuple[float, str]] = []
        if best is not None:
            [value] = handle.last_values([best.record()], handle.config()["primary_metric"]).values()
            if value is not None:
                candidates.append((value, best.run_id))
        if include_resume_from_runs:
            candidates += [
                (w["value"], w["run_id"])
                for w in handle.config().get("warm_start") or []
                if w["value"] is not None and w["state"] == "completed"
            ]
        if not candidates:
            return Run(self.experiment, best.run_id) if best is not None else None
        pick = max if handle.config()["goal"] == "maximize" else min
        return Run(self.experiment, pick(candidates)[1])

    def get_children_sorted_by_primary_metric(
        self, top: int = 0, reverse: bool = False, discard_no_metric: bool = False
    ) -> list[dict[str, Any]]:
        """v1's rows: run_id, hyperparameters (JSON text), best_primary_metric, status."""
        rows = []
        for row in self.handle.table():
            value = row.get("metric")
            if discard_no_metric and value is None:
                continue
            rows.append(
                {
                    "run_id": row["run_id"],
                    "hyperparameters": json.dumps(row.get("params", {})),
                    "best_primary_metric": value,
                    "status": row.get("run_status") or row.get("status"),
                }
            )
        if reverse:
            rows.reverse()
        return rows[:top] if top else rows

    def get_hyperparameters(self) -> dict[str, str]:
        return {row["run_id"]: json.dumps(row.get("params", {})) for row in self.handle.table()}

    def get_children(self, *args: Any, **kwargs: Any) -> list[Run]:
        return [Run(self.experiment, r.run_id) for r in self.handle.children()]

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, run_type: Any = None, populate: bool = False
    ) -> dict[str, Any]:
        """v1's sweep metrics: per child run id."""
        return {child.id: child.get_metrics(name) for child in self.get_children()}

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.handle)


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.hyperdrive", name)


__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "GridParameterSampling",
    "HyperDriveConfig",
    "HyperDriveRun",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "SobolParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]
