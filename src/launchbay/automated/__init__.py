"""Automated ML: give a table and a label column, get the best fitted pipeline; every trial is a run.

``automl(task=..., training_data=..., label_column_name=..., primary_metric=..., ...)`` → AutoMLHandle.

How it works, honestly: FLAML (a maintained AutoML library) does the searching and the model families
(its estimators and their search spaces; search.py asks its BlendSearch for one config at a time). launchbay
runs each config as an ordinary child run of a small trial script (trial.py) on the chosen target: it
featurizes the raw rows (featurize.py), fits FLAML's estimator, scores it with the Azure ML v1 metric
(metrics.py), logs the metrics and keeps the fitted pipeline in ``outputs/model.pkl``. A detached
controller (controller.py, a third controller kind beside sweeps and pipelines) feeds the scores back,
honours the timeout, ``iterations`` and ``experiment_exit_score``, and registers the best pipeline as
``automl-<experiment>``. Trials are thus inspectable, comparable and re-runnable like any run, at the
cost of a process start per trial (bench/bench_automl.py measures it against FLAML in one process).
Everything is checked before anything is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .handle import AutoMLHandle

__all__ = ["AutoMLHandle", "automl", "get_automl", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "AutoMLHandle":
        from .handle import AutoMLHandle

        return AutoMLHandle
    if name == "load_model":
        from .featurize import load_model

        return load_model
    raise AttributeError(f"module 'launchbay.automated' has no attribute {name!r}")


def automl(
    task: str = "classification",
    training_data: Any = None,
    label_column_name: str | None = None,
    primary_metric: str | None = None,
    *,
    experiment_timeout_minutes: float = 15,
    max_concurrent_iterations: int = 1,
    iterations: int | None = None,
    n_cross_validations: int | None = None,
    validation_data: Any = None,
    validation_size: float | None = None,
    experiment_exit_score: float | None = None,
    allowed_models: Sequence[str] | None = None,
    blocked_models: Sequence[str] | None = None,
    time_column_name: str | None = None,
    forecast_horizon: int | None = None,
    target: str | None = None,
    environment: str | None = None,
    experiment: str | None = None,
    model_name: str | None = None,
    seed: int = 0,
    source_dir: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    _experiment_timeout_s: float | None = None,
) -> AutoMLHandle:
    """Start an AutoML run; returns at once (``.wait()``, ``.leaderboard()``, ``.get_output()``).

    ``training_data``: a CSV/TSV/Parquet file or ``dataset:NAME[:VERSION]``. Each trial is scored on
    ``validation_data``, else by ``n_cross_validations`` folds, else on a seeded ``validation_size`` holdout;
    with none of them, as in Azure ML v1: 10 folds below 1,000 rows, 3 below 20,000, else a 10 % holdout.
    A forecast (``time_column_name``, ``forecast_horizon``) is validated on the rows that come last in time."""
    from ..errors import ConfigError
    from ..project import locate
    from ..session import open_session
    from . import settings as checks

    if training_data is None or not label_column_name:
        raise ConfigError("automl needs training_data (a CSV or Parquet file, or dataset:NAME) and label_column_name.")
    place = locate(source_dir)
    session = open_session(store, project=place.root)
    session.store.check_writable()
    train = _resolve(session, "train", training_data)
    frame = checks.read_data(train.location, "The training data")
    valid = _resolve(session, "valid", validation_data) if validation_data is not None else None
    valid_frame = checks.read_data(valid.location, "The validation data") if valid is not None else None
    timeout_s = _experiment_timeout_s if _experiment_timeout_s is not None else float(experiment_timeout_minutes) * 60
    checked = checks.check(
        task=task,
        frame=frame,
        label=label_column_name,
        primary_metric=primary_metric,
        timeout_s=float(timeout_s),
        max_concurrent=int(max_concurrent_iterations),
        iterations=iterations,
        allowed_models=allowed_models,
        blocked_models=blocked_models,
        n_cross_validations=n_cross_validations,
        validation_frame=valid_frame,
        validation_size=validation_size,
        exit_score=experiment_exit_score,
        time_column=time_column_name,
        forecast_horizon=forecast_horizon,
        seed=seed,
    )
    experiment = experiment or place.experiment
    from ..registry import check_name

    name = model_name or f"automl-{experiment}"
    check_name(name)
    inputs = {"train": train.source if train.dataset else str(train.location)}
    if valid is not None:
        inputs["valid"] = valid.source if valid.dataset else str(valid.location)
    from .submit import submit_automl

    return submit_automl(session, place.root, checked, experiment, name, inputs, train, target, environment)


def _resolve(session: Any, name: str, data: Any) -> Any:
    """The data as a launchbay input (a path, URL or dataset:NAME[:VERSION]), checked and hashed."""
    from ..data.resolve import resolve
    from ..data.spec import InputSpec

    source = getattr(data, "launchbay_source", data)  # an Azure ML v1 dataset names its source
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        from ..errors import ConfigError

        raise ConfigError(f"{name} data must be a file path or dataset:NAME[:VERSION], not {type(data).__name__}.")
    if not source.startswith(("dataset:", "http://", "https://", "s3://")):
        source = str(Path(source).expanduser().resolve())
    return resolve(session.store, InputSpec(name, source, "download"))


def get_automl(run_id: str, *, store: str | os.PathLike[str] | None = None) -> AutoMLHandle:
    """Re-attach to an AutoML run by id (or a unique prefix of it)."""
    from ..errors import ConfigError
    from ..session import open_session
    from .handle import AutoMLHandle

    session = open_session(store)
    record = session.store.get_run(session.store.resolve_run_id(run_id))
    if record.target_type != "automl":
        raise ConfigError(f"Run {record.run_id} is not an AutoML run; give one's run id (launchbay runs lists them).")
    return AutoMLHandle(record.run_id, session)
