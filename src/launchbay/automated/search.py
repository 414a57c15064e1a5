"""What to try next: FLAML's search (BlendSearch over FLAML's own per-estimator search spaces), asked and
told one trial at a time, so each trial can run as a launchbay run anywhere.

FLAML's ``AutoML`` is asked only for its search space (``max_iter=0``: nothing is fitted): the same
hierarchical space, low-cost starting points, categorical costs and initial points it gives its own
parallel search. The controller then ``suggest``s a config for each free slot and reports each trial's
loss (``-score`` for a metric to maximize) and time with ``complete``. The seed fixes the order.
"""

from __future__ import annotations

from typing import Any

LOSS = "val_loss"


class Search:
    """FLAML's searcher for ``models`` on data shaped like ``X``/``y``."""

    def __init__(self, task: str, models: list[str], X: Any, y: Any, goal: str, seed: int) -> None:
        import logging

        from flaml import AutoML, BlendSearch

        logging.getLogger("flaml.automl.logger").setLevel(logging.ERROR)
        planner = AutoML()
        flaml_task = "regression" if task == "forecasting" else task
        planner.fit(X, y, task=flaml_task, estimator_list=models, max_iter=0, retrain_full=False, verbose=0)
        self.goal = goal
        self.single = len(models) == 1
        self.models = models
        self.searcher = BlendSearch(
            metric=LOSS,
            mode="min",
            space=planner.search_space,
            low_cost_partial_config=planner.low_cost_partial_config,
            cat_hp_cost=planner.cat_hp_cost,
            points_to_evaluate=list(planner.points_to_evaluate),  # a list of dicts (its annotation says dict)
            seed=seed,
        )
        self._configs: dict[str, dict[str, Any]] = {}

    def suggest(self, trial_id: str) -> tuple[str, dict[str, Any]] | None:
        """(algorithm, hyperparameters) to try next, or None when the search has nothing now."""
        config = self.searcher.suggest(trial_id)
        if config is None:
            return None
        self._configs[trial_id] = config
        inner = dict(config["ml"] if "ml" in config else config)
        algorithm = str(inner.pop("learner", self.models[0]))
        return algorithm, {k: plain(v) for k, v in inner.items()}

    def complete(self, trial_id: str, score: float | None, seconds: float) -> None:
        """Tell the search how the trial did (None: it failed)."""
        config = self._configs.pop(trial_id, None)
        if config is None:
            return
        if score is None or score != score:
            self.searcher.on_trial_complete(trial_id, None, error=True)
            return
        loss = -score if self.goal == "maximize" else score
        result = {LOSS: loss, "time_total_s": max(seconds, 1e-3), **{f"config/{k}": v for k, v in config.items()}}
        self.searcher.on_trial_complete(trial_id, result)


def plain(value: Any) -> Any:
    """numpy scalars → Python numbers (run params and arguments are JSON)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.10g}")
    return value
