"""Check what ``automl(...)`` was given before anything is recorded: one clear line for each bad input.

The training data is read here once (a CSV, TSV or Parquet file, or a ``dataset:NAME[:VERSION]``): a
missing label column names the columns there are, a label with one class, a metric that does not fit the
task, an empty or unreadable file, a forecast without a time column each stop here, before any trial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import metrics

TASKS = ("classification", "regression", "forecasting")
_COMMON = ["lgbm", "rf", "xgboost", "extra_tree", "xgb_limitdepth", "sgd", "histgb"]
#: FLAML's estimator names each task may use; DEFAULT_MODELS is FLAML's own default list
SUPPORTED = {
    "classification": [*_COMMON, "lrl1", "lrl2"],
    "regression": [*_COMMON, "enet", "lassolars"],
    "forecasting": [*_COMMON, "enet", "lassolars"],
}
DEFAULT_MODELS = {
    "classification": ["lgbm", "rf", "xgboost", "extra_tree", "xgb_limitdepth", "sgd", "lrl1"],
    "regression": ["lgbm", "rf", "xgboost", "extra_tree", "xgb_limitdepth", "sgd"],
    "forecasting": ["lgbm", "rf", "xgboost", "extra_tree", "xgb_limitdepth", "sgd"],
}
#: Azure ML v1's model names → FLAML's
V1_MODELS = {
    "LightGBM": "lgbm",
    "RandomForest": "rf",
    "XGBoostClassifier": "xgboost",
    "XGBoostRegressor": "xgboost",
    "ExtremeRandomTrees": "extra_tree",
    "SGD": "sgd",
    "LogisticRegression": "lrl2",
    "ElasticNet": "enet",
    "LassoLars": "lassolars",
}


@dataclass
class AutoMLSettings:
    """Every setting of one AutoML run, checked; ``trial_settings`` is what each trial reads."""

    task: str
    label: str
    primary_metric: str
    goal: str
    timeout_s: float
    max_concurrent: int
    iterations: int | None
    models: list[str]
    n_cross_validations: int | None
    validation_size: float
    exit_score: float | None
    time_column: str | None
    forecast_horizon: int
    seed: int
    kinds: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    class_balance: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def trial_settings(self) -> dict[str, Any]:
        keys = ("task", "label", "primary_metric", "n_cross_validations", "validation_size", "seed", "kinds")
        return {k: getattr(self, k) for k in keys} | {
            "time_column": self.time_column,
            "forecast_horizon": self.forecast_horizon,
        }

    def imbalance(self) -> str | None:
        """One line when the smallest class has under a fifth of the largest's rows (classification)."""
        if len(self.class_balance) < 2:
            return None
        counts = sorted(self.class_balance.items(), key=lambda kv: kv[1])
        (small, low), (big, high) = counts[0], counts[-1]
        if low * 5 >= high:
            return None
        return (
            f"The classes are imbalanced: {small!r} has {low} rows, {big!r} has {high}; a metric such as"
            " AUC_weighted or norm_macro_recall judges such data better than accuracy."
        )


def read_data(path: Path, what: str) -> Any:
    """The table at ``path``; an unreadable or empty file is one ``ConfigError`` line."""
    from .trial import read_table

    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist; give a CSV, TSV or Parquet file (or dataset:NAME).")
    try:
        frame = read_table(str(path))
    except Exception as exc:  # pandas' many parse errors: the first line says enough
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "give a CSV, TSV or Parquet file"
        raise ConfigError(f"{what} {path} could not be read as a table ({first}); {hint}.") from None
    if frame.empty or len(frame.columns) < 2:
        raise ConfigError(f"{what} {path} is empty (it needs a header row, a label column and rows of data).")
    return frame


def check(
    *,
    task: str,
    frame: Any,
    label: str,
    primary_metric: str | None,
    timeout_s: float,
    max_concurrent: int,
    iterations: int | None,
    allowed_models: Sequence[str] | None,
    blocked_models: Sequence[str] | None,
    n_cross_validations: int | None,
    validation_frame: Any,
    validation_size: float | None,
    exit_score: float | None,
    time_column: str | None,
    forecast_horizon: int | None,
    seed: int,
) -> AutoMLSettings:
    """A checked ``AutoMLSettings``; the first bad input is one ``ConfigError`` line that says what to do."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {task!r}.")
    metric = primary_metric or metrics.DEFAULT[task]
    if metric not in metrics.METRICS:
        raise ConfigError(
            f"Unknown primary_metric {metric!r}; for {task} use one of {', '.join(metrics.for_task(task))}."
        )
    if task not in metrics.METRICS[metric][0]:
        raise ConfigError(
            f"primary_metric {metric!r} does not fit a {task} task; use one of {', '.join(metrics.for_task(task))}."
        )
    columns = [str(c) for c in frame.columns]
    if label not in columns:
        raise ConfigError(
            f"The label column {label!r} is not in the training data; its columns are {', '.join(columns)}."
        )
    if frame[label].isna().any():
        raise ConfigError(
            f"The label column {label!r} has {int(frame[label].isna().sum())} empty values; drop those rows."
        )
    balance: dict[str, int] = {}
    if task == "classification":
        balance = {str(k): int(v) for k, v in frame[label].value_counts().items()}
        if len(balance) < 2:
            raise ConfigError(
                f"The label column {label!r} has one class ({next(iter(balance))!r}); a classifier needs two or more."
            )
    else:
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(frame[label]):
            raise ConfigError(
                f"The label column {label!r} is not numeric; {task} needs numbers (or use task='classification')."
            )
    horizon = int(forecast_horizon or 1)
    if task == "forecasting":
        if not time_column:
            raise ConfigError("A forecasting task needs time_column_name (the column with each row's date or time).")
        if time_column not in columns:
            raise ConfigError(
                f"The time column {time_column!r} is not in the training data; its columns are {', '.join(columns)}."
            )
        if horizon < 1 or horizon * (n_cross_validations or 1) >= len(frame):
            raise ConfigError(
                f"forecast_horizon {horizon} leaves no rows to train on ({len(frame)} rows); give a smaller one."
            )
    if validation_frame is not None:
        if n_cross_validations:
            raise ConfigError("Give either validation_data or n_cross_validations, not both.")
        if label not in [str(c) for c in validation_frame.columns]:
            raise ConfigError(f"The validation data has no label column {label!r}.")
    if validation_size is None:
        if n_cross_validations is None and validation_frame is None and task != "forecasting":
            n_cross_validations = default_folds(len(frame))
        validation_size = DEFAULT_HOLDOUT
    if n_cross_validations is not None and not 2 <= int(n_cross_validations) <= 20:
        raise ConfigError(f"n_cross_validations must be from 2 to 20, not {n_cross_validations}.")
    if not 0 < validation_size < 1:
        raise ConfigError(f"validation_size must be between 0 and 1, not {validation_size}.")
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ConfigError("experiment_timeout_minutes must be a positive number of minutes.")
    if max_concurrent < 1 or (iterations is not None and iterations < 1):
        raise ConfigError("max_concurrent_iterations and iterations must be at least 1.")
    features = frame.drop(columns=[label])
    from .featurize import column_kinds

    kinds = column_kinds(features)
    if not any(k not in ("text", "constant") for k in kinds.values()):
        raise ConfigError("No column but the label can be used as a feature (each is free text or has one value).")
    return AutoMLSettings(
        task=task,
        label=label,
        primary_metric=metric,
        goal=metrics.goal(metric),
        timeout_s=float(timeout_s),
        max_concurrent=int(max_concurrent),
        iterations=None if iterations is None else int(iterations),
        models=models_for(task, allowed_models, blocked_models),
        n_cross_validations=None if not n_cross_validations else int(n_cross_validations),
        validation_size=float(validation_size),
        exit_score=None if exit_score is None else float(exit_score),
        time_column=time_column,
        forecast_horizon=horizon,
        seed=int(seed),
        kinds=kinds,
        rows=len(frame),
        class_balance=balance,
    )


#: without validation_data, n_cross_validations or validation_size, as Azure ML v1 chose: cross-validation
#: below 20,000 rows (10 folds below 1,000 rows, else 3), a 10 % holdout above
DEFAULT_HOLDOUT = 0.1


def default_folds(rows: int) -> int | None:
    """Folds of the default cross-validation for a table of ``rows`` (None: the holdout instead). A small
    table's single holdout is a few dozen rows, too few to tell trials apart (diabetes: 89 rows)."""
    if rows < 1_000:
        return 10
    return 3 if rows < 20_000 else None


def models_for(task: str, allowed: Sequence[str] | None, blocked: Sequence[str] | None) -> list[str]:
    """FLAML's estimator names to search: ``allowed`` (or FLAML's default list) less ``blocked``."""
    known = SUPPORTED[task]

    def names(given: Sequence[str], what: str) -> list[str]:
        out = [V1_MODELS.get(str(g), str(g)) for g in ([given] if isinstance(given, str) else given)]
        bad = [g for g, o in zip(given, out) if o not in known]
        if bad:
            raise ConfigError(
                f"{what} has {', '.join(map(repr, bad))}, not a model for {task}; use {', '.join(known)}."
            )
        return out

    chosen = names(allowed, "allowed_models") if allowed else list(DEFAULT_MODELS[task])
    drop = set(names(blocked, "blocked_models")) if blocked else set()
    left = [m for m in chosen if m not in drop]
    if not left:
        raise ConfigError("blocked_models leaves no model to try; block fewer.")
    return left
