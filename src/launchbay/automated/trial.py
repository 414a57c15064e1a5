"""One AutoML trial, run as an ordinary launchbay run: fit one algorithm with one set of hyperparameters
(FLAML's estimator classes) after the featurization, score it with the primary metric, keep the fitted
pipeline.

Shipped in the AutoML run's snapshot as ``automl_trial.py`` with ``automl_settings.json`` (the task, label,
metric and validation), and copies of featurize.py and metrics.py for targets without launchbay. Usage:
``python automl_trial.py --algorithm lgbm --n_estimators 4 ...``; the data is the run's inputs ``train``
(and ``valid``). It logs every metric of its task, writes ``outputs/model.pkl`` (an ``AutoMLModel``: raw
rows in, predictions out) and ``outputs/featurization.json``. ``launchbay rerun`` of it gives the same score.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import sys
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SETTINGS_FILE = "automl_settings.json"
COPIES = {"featurize": "automl_featurize.py", "metrics": "automl_metrics.py"}


def _module(name: str) -> Any:
    """``launchbay.automated.NAME``: the installed one, else the copy shipped beside this file, loaded under
    the same name (so what is pickled here unpickles where launchbay is installed)."""
    full = f"launchbay.automated.{name}"
    try:
        return importlib.import_module(full)
    except ImportError:
        pass
    import launchbay  # the runtime's stub package (its Run)

    parent = sys.modules.setdefault("launchbay.automated", types.ModuleType("launchbay.automated"))
    launchbay.automated = parent  # type: ignore[attr-defined]
    spec = importlib.util.spec_from_file_location(full, HERE / COPIES[name])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    setattr(parent, name, module)
    return module


def parse_arguments(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """``--algorithm A --name value ...`` → (A, hyperparameters); values are JSON where they parse."""
    values: dict[str, Any] = {}
    for flag, text in zip(argv[::2], argv[1::2]):
        try:
            values[flag.lstrip("-")] = json.loads(text)
        except ValueError:
            values[flag.lstrip("-")] = text
    return str(values.pop("algorithm")), values


def read_table(path: str) -> Any:
    import pandas as pd

    where = Path(path)
    if where.is_dir():
        files = sorted(p for p in where.rglob("*") if p.is_file() and not p.name.startswith("."))
        where = files[0]
    if where.suffix in (".parquet", ".pq"):
        return pd.read_parquet(where)
    return pd.read_csv(where, sep="\t" if where.suffix == ".tsv" else ",")


def _without_ray() -> None:
    """FLAML imports Ray whenever it is installed (2-3 s of a trial's start, its largest part), though a
    trial fits one estimator in this process and never uses it; a trial's own process does without."""
    if "ray" not in sys.modules:
        sys.modules["ray"] = None  # type: ignore[assignment]  # `import ray` raises ImportError: FLAML goes on


def estimator_class(task: str, algorithm: str, X: Any, y: Any) -> Any:
    _without_ray()
    from flaml.automl.task.factory import task_factory

    flaml_task = task_factory("regression" if task == "forecasting" else task, X, y)
    return flaml_task, flaml_task.estimator_class_from_str(algorithm)


def fit(settings: dict[str, Any], algorithm: str, params: dict[str, Any], frame: Any, y: Any, featurize: Any) -> Any:
    """A fitted sklearn Pipeline (featurizer, estimator) on these rows."""
    from sklearn.pipeline import Pipeline

    featurizer = featurize.make_featurizer(settings["kinds"])
    X = featurizer.fit_transform(frame)
    flaml_task, cls = estimator_class(settings["task"], algorithm, X, y)
    estimator = cls(task=flaml_task, n_jobs=1, random_state=settings["seed"], **params)
    estimator.fit(X, y)
    return Pipeline([("featurize", featurizer), ("model", estimator.model)])


def score(
    settings: dict[str, Any], pipeline: Any, frame: Any, y: Any, n_classes: int, metrics: Any
) -> dict[str, float]:
    if settings["task"] == "classification":
        proba = pipeline.predict_proba(frame)
        return dict(metrics.classification_scores(y, proba, n_classes))
    return dict(metrics.regression_scores(y, pipeline.predict(frame)))


def folds(settings: dict[str, Any], frame: Any, y: Any) -> list[tuple[Any, Any]]:
    """(train rows, validation rows) pairs: cross-validation, a time-ordered split, or a holdout."""
    import numpy as np
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    seed, n = settings["seed"], len(frame)
    rows = np.arange(n)
    if settings["task"] == "forecasting":  # the frame is in time order: validate on what comes last
        horizon = int(settings["forecast_horizon"])
        count = int(settings.get("n_cross_validations") or 1)
        return [(rows[: n - horizon * k], rows[n - horizon * k : n - horizon * (k - 1)]) for k in range(count, 0, -1)]
    if settings.get("n_cross_validations"):
        k = int(settings["n_cross_validations"])
        if settings["task"] == "classification" and np.min(np.bincount(y)) >= k:
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(frame, y))
        return list(KFold(k, shuffle=True, random_state=seed).split(frame))
    strata = y if settings["task"] == "classification" and np.min(np.bincount(y)) >= 2 else None
    train, valid = train_test_split(rows, test_size=settings["validation_size"], random_state=seed, stratify=strata)
    return [(np.sort(train), np.sort(valid))]


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import pandas as pd

    from launchbay import Run

    featurize, metrics = _module("featurize"), _module("metrics")
    settings = json.loads((HERE / SETTINGS_FILE).read_text())
    algorithm, params = parse_arguments(list(sys.argv[1:] if argv is None else argv))
    label, task = settings["label"], settings["task"]
    frame = read_table(os.environ["LAUNCHBAY_INPUT_TRAIN"])
    if task == "forecasting":
        frame = frame.sort_values(settings["time_column"], kind="stable").reset_index(drop=True)
    features = frame[list(settings["kinds"])]
    classes: list[Any] | None = None
    if task == "classification":
        codes, uniques = pd.factorize(frame[label], sort=True)
        y, classes = np.asarray(codes), list(uniques)
    else:
        y = frame[label].to_numpy(dtype=float)
    started = time.perf_counter()
    valid_path = os.environ.get("LAUNCHBAY_INPUT_VALID")
    if valid_path:
        other = read_table(valid_path)
        vy = (
            np.asarray(pd.Categorical(other[label], categories=classes).codes)
            if classes
            else other[label].to_numpy(float)
        )
        pipeline = fit(settings, algorithm, params, features, y, featurize)
        scores = score(settings, pipeline, other[list(settings["kinds"])], vy, len(classes or []), metrics)
    else:
        per_fold = []
        for train, valid in folds(settings, features, y):
            pipeline = fit(settings, algorithm, params, features.iloc[train], y[train], featurize)
            per_fold.append(score(settings, pipeline, features.iloc[valid], y[valid], len(classes or []), metrics))
        scores = metrics.mean_scores(per_fold)
        pipeline = fit(settings, algorithm, params, features, y, featurize)  # the model kept: on every row
    run = Run.get_context()
    for name, value in scores.items():
        run.log(name, value)
    run.log("fit_time_s", time.perf_counter() - started)
    model = featurize.AutoMLModel(pipeline, settings["kinds"], task, classes, algorithm)
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    with open(out / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    (out / "featurization.json").write_text(json.dumps(model.featurization, indent=1))
    print(f"{algorithm} {settings['primary_metric']}={scores.get(settings['primary_metric'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
