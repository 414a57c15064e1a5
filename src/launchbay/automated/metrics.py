"""Azure ML v1's primary metrics: which task each fits, whether higher is better, and how a trial computes it.

Self-contained (numpy and scikit-learn only): it is shipped beside a trial on a remote target, as
featurize.py is. The normalized errors divide by the label's range on the data scored, as v1 did.
"""

from __future__ import annotations

import numpy as np

CLASSIFICATION = ("classification",)
REGRESSION = ("regression", "forecasting")

#: v1 name → (tasks it fits, goal)
METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "accuracy": (CLASSIFICATION, "maximize"),
    "AUC_weighted": (CLASSIFICATION, "maximize"),
    "average_precision_score_weighted": (CLASSIFICATION, "maximize"),
    "norm_macro_recall": (CLASSIFICATION, "maximize"),
    "precision_score_weighted": (CLASSIFICATION, "maximize"),
    "f1_score_weighted": (CLASSIFICATION, "maximize"),
    "log_loss": (CLASSIFICATION, "minimize"),
    "r2_score": (REGRESSION, "maximize"),
    "spearman_correlation": (REGRESSION, "maximize"),
    "normalized_root_mean_squared_error": (REGRESSION, "minimize"),
    "normalized_mean_absolute_error": (REGRESSION, "minimize"),
    "root_mean_squared_error": (REGRESSION, "minimize"),
    "mean_absolute_error": (REGRESSION, "minimize"),
}
DEFAULT = {"classification": "accuracy", "regression": "r2_score", "forecasting": "normalized_root_mean_squared_error"}


def goal(name: str) -> str:
    return METRICS[name][1]


def for_task(task: str) -> list[str]:
    return [name for name, (tasks, _) in METRICS.items() if task in tasks]


def _range(y: np.ndarray) -> float:
    spread = float(np.max(y) - np.min(y)) if len(y) else 0.0
    return spread or 1.0


def classification_scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float]:
    """Every classification metric, from encoded labels ``y`` (0..n-1) and class probabilities."""
    from sklearn import metrics as m

    predicted = np.argmax(proba, axis=1)
    labels = list(range(n_classes))
    recall = m.recall_score(y, predicted, average="macro", labels=labels, zero_division=0)
    chance = 1.0 / n_classes
    out = {
        "accuracy": m.accuracy_score(y, predicted),
        "norm_macro_recall": max(0.0, (recall - chance) / (1 - chance)),
        "precision_score_weighted": m.precision_score(y, predicted, average="weighted", zero_division=0),
        "f1_score_weighted": m.f1_score(y, predicted, average="weighted", zero_division=0),
        "log_loss": m.log_loss(y, np.clip(proba, 1e-15, 1), labels=labels),
    }
    present = np.unique(y)
    if len(present) > 1:
        onehot = np.eye(n_classes)[y]
        if n_classes == 2:
            out["AUC_weighted"] = m.roc_auc_score(y, proba[:, 1])
            out["average_precision_score_weighted"] = m.average_precision_score(y, proba[:, 1])
        else:
            cols = present.tolist()
            out["AUC_weighted"] = m.roc_auc_score(onehot[:, cols], proba[:, cols], average="weighted")
            out["average_precision_score_weighted"] = m.average_precision_score(
                onehot[:, cols], proba[:, cols], average="weighted"
            )
    return {k: float(v) for k, v in out.items()}


def regression_scores(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr
    from sklearn import metrics as m

    rmse = float(np.sqrt(m.mean_squared_error(y, predicted)))
    mae = float(m.mean_absolute_error(y, predicted))
    spread = _range(y)
    rho = spearmanr(y, predicted).statistic if np.std(predicted) > 0 else 0.0
    return {
        "r2_score": float(m.r2_score(y, predicted)),
        "spearman_correlation": float(0.0 if rho != rho else rho),
        "normalized_root_mean_squared_error": rmse / spread,
        "normalized_mean_absolute_error": mae / spread,
        "root_mean_squared_error": rmse,
        "mean_absolute_error": mae,
    }


def mean_scores(folds: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over cross-validation folds (a metric a fold lacks is left out)."""
    names: list[str] = [n for n in folds[0] if all(n in f for f in folds)] if folds else []
    return {n: float(np.mean([f[n] for f in folds])) for n in names}
