"""AutoML's featurization and fitted model: sklearn transformers a trial fits on the raw training rows.

Self-contained on purpose (numpy, pandas and scikit-learn only, no other launchbay module): a trial on a
remote target, where launchbay is not installed, gets a copy of this file beside it, loaded under this
same module name, so the pickled model refers to ``launchbay.automated.featurize`` wherever it was fitted and
unpickles wherever launchbay is installed (``launchbay.get_model(...).download()``, then ``predict`` on
raw rows).

What is done, by column kind: numbers get the median for a missing value; categories (text with few
distinct values, booleans) get one-hot columns, a missing value being a category of its own and an unseen
one all zeros; datetimes become year, month, day, weekday, hour parts; free text (many distinct values) is
left out; a column with one value is left out. ``describe`` says which column got what.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

MAX_CATEGORIES = 50  # more distinct text values than this (and more than half the rows): free text
DATE_PARTS = ("year", "month", "day", "weekday", "hour")


def column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each feature column's kind: numeric, categorical, datetime, text (left out) or constant (left out)."""
    kinds = {}
    for name in frame.columns:
        col = frame[name]
        if col.nunique(dropna=True) <= 1:
            kinds[str(name)] = "constant"
        elif pd.api.types.is_bool_dtype(col):
            kinds[str(name)] = "categorical"
        elif pd.api.types.is_numeric_dtype(col):
            kinds[str(name)] = "numeric"
        elif pd.api.types.is_datetime64_any_dtype(col) or _looks_like_dates(col):
            kinds[str(name)] = "datetime"
        else:
            distinct = col.nunique(dropna=True)
            many = distinct > MAX_CATEGORIES and distinct > 0.5 * max(1, col.notna().sum())
            kinds[str(name)] = "text" if many else "categorical"
    return kinds


def _looks_like_dates(col: pd.Series) -> bool:
    sample = col.dropna().astype(str).head(20)
    if sample.empty or not sample.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(pd.to_datetime(sample, errors="coerce").notna().all())


class DateParts(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Datetime columns (or ISO text) → year, month, day, weekday, hour numbers (missing: -1)."""

    def fit(self, X: Any, y: Any = None) -> DateParts:
        self.n_features_in_ = np.asarray(X).shape[1] if np.ndim(X) == 2 else 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = []
        for name in frame.columns:
            when = pd.to_datetime(frame[name], errors="coerce")
            parts = [when.dt.year, when.dt.month, when.dt.day, when.dt.day_of_week, when.dt.hour]
            out += [p.fillna(-1).to_numpy(dtype=float) for p in parts]
        return np.column_stack(out) if out else np.empty((len(frame), 0))


def categories_as_text(X: Any) -> pd.DataFrame:
    """Category values as text, missing ones kept missing: booleans and mixed columns then impute and
    one-hot encode like any text (the imputer refuses booleans; the encoder cannot sort mixed types)."""
    frame = pd.DataFrame(X)
    return frame.astype(str).where(frame.notna(), np.nan).astype(object)


def make_featurizer(kinds: dict[str, str]) -> ColumnTransformer:
    """The featurizer for these column kinds (unfitted); text and constant columns are dropped."""
    parts: list[tuple[str, Any, list[str]]] = []
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]
    dates = [c for c, k in kinds.items() if k == "datetime"]
    if numeric:
        parts.append(("numeric", SimpleImputer(strategy="median"), numeric))
    if categorical:
        encode = make_pipeline(
            FunctionTransformer(categories_as_text),
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        )
        parts.append(("categorical", encode, categorical))
    if dates:
        parts.append(("datetime", DateParts(), dates))
    return ColumnTransformer(parts, remainder="drop")


def describe(kinds: dict[str, str]) -> dict[str, Any]:
    """What the featurization did, for the run's record (``featurization.json``)."""
    done = {
        "numeric": "missing values: the median",
        "categorical": "one-hot; missing values are a category, unseen ones all zeros",
        "datetime": "parts: " + ", ".join(DATE_PARTS),
        "text": "left out (free text)",
        "constant": "left out (one value)",
    }
    return {"columns": [{"name": c, "kind": k, "treatment": done[k]} for c, k in kinds.items()]}


def as_frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    """Raw rows (a DataFrame, a list of dicts or of lists) as a DataFrame of the training columns."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if isinstance(rows, list) and rows and not isinstance(rows[0], dict):
        frame = pd.DataFrame(rows, columns=columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"The rows lack the column(s) {', '.join(missing)} the model was trained on.")
    return frame[columns]


class AutoMLModel:
    """One fitted pipeline: the featurizer, the estimator and the label's classes (classification).

    ``predict`` and ``predict_proba`` take raw rows (the training file's columns, the label left out)."""

    def __init__(
        self, pipeline: Pipeline, kinds: dict[str, str], task: str, classes: list[Any] | None, algorithm: str
    ) -> None:
        self.pipeline, self.columns, self.task, self.classes_ = pipeline, list(kinds), task, classes
        self.algorithm, self.featurization = algorithm, describe(kinds)

    def __repr__(self) -> str:
        return f"AutoMLModel(task={self.task!r}, algorithm={self.algorithm!r})"

    def predict(self, rows: Any) -> np.ndarray:
        predicted = self.pipeline.predict(as_frame(rows, self.columns))
        if self.classes_ is not None:
            return np.asarray(self.classes_)[np.asarray(predicted, dtype=int)]
        return np.asarray(predicted, dtype=float)

    def predict_proba(self, rows: Any) -> np.ndarray:
        if self.classes_ is None:
            raise ValueError("predict_proba is for classification models.")
        return np.asarray(self.pipeline.predict_proba(as_frame(rows, self.columns)))


def load_model(path: str | Path) -> Any:
    """The fitted pipeline in ``path`` (a downloaded ``model.pkl``, or the folder holding it)."""
    import pickle

    where = Path(path)
    if where.is_dir():
        where = where / "model.pkl"
    with open(where, "rb") as fh:
        return pickle.load(fh)
