"""Early termination policies: pure functions of the metric series, testable without processes.

``policy.evaluate(goal, series, run_id)`` looks at the primary metric of every run
so far (``{run_id: [values in logging order]}``) and returns a reason string to stop
``run_id``, or None. As in Azure ML v1, every logged value of the primary metric is
one interval; a run is judged at interval ``n`` (its point count rounded down to a
multiple of ``evaluation_interval``) once ``n > delay_evaluation``, against the
other runs' values up to the same interval.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError

Series = Mapping[str, Sequence[float]]


def _check_goal(goal: str) -> str:
    goal = goal.lower()
    if goal not in ("minimize", "maximize"):
        raise ConfigError(f"goal must be 'minimize' or 'maximize', not {goal!r}.")
    return goal


class _Policy:
    name = "none"

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        if evaluation_interval < 1 or delay_evaluation < 0:
            raise ConfigError("evaluation_interval must be >= 1 and delay_evaluation >= 0.")
        self.evaluation_interval, self.delay_evaluation = int(evaluation_interval), int(delay_evaluation)

    def interval(self, count: int) -> int | None:
        """The interval to judge a run with ``count`` points at, or None when not yet."""
        n = count - count % self.evaluation_interval
        return n if n > self.delay_evaluation and n > 0 else None

    def evaluate(self, goal: str, series: Series, run_id: str) -> str | None:
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "evaluation_interval": self.evaluation_interval,
            "delay_evaluation": self.delay_evaluation,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_json().items() if k != "type" and v is not None)
        return f"{type(self).__name__}({args})"


class NoTerminationPolicy(_Policy):
    """Every run goes to the end (the default)."""

    name = "none"

    def __init__(self) -> None:
        super().__init__()


class BanditPolicy(_Policy):
    """Stop a run whose best value so far falls outside the slack of the leader's.

    Maximise: stop when best < leader / (1 + slack_factor), or best < leader - slack_amount
    (Azure ML v1). Minimise mirrors it: best > leader * (1 + slack_factor), or
    best > leader + slack_amount. For a negative leader the factor applies to |leader|.
    """

    name = "bandit"

    def __init__(
        self,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        evaluation_interval: int = 1,
        delay_evaluation: int = 0,
    ) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise ConfigError("BanditPolicy needs exactly one of slack_factor or slack_amount.")
        if (slack_factor is not None and slack_factor < 0) or (slack_amount is not None and slack_amount < 0):
            raise ConfigError("BanditPolicy's slack must be >= 0.")
        self.slack_factor, self.slack_amount = slack_factor, slack_amount

    def evaluate(self, goal: str, series: Series, run_id: str) -> str | None:
        goal = _check_goal(goal)
        own = list(series.get(run_id) or ())
        n = self.interval(len(own))
        if n is None:
            return None
        best = min if goal == "minimize" else max
        own_best = best(own[:n])
        leader = best(best(v[:n]) for v in series.values() if len(v) >= n)
        if self.slack_factor is not None:
            if goal == "minimize":
                limit = leader + abs(leader) * self.slack_factor
            else:
                limit = leader / (1 + self.slack_factor) if leader > 0 else leader - abs(leader) * self.slack_factor
            slack = f"slack {self.slack_factor:.0%}"
        else:
            assert self.slack_amount is not None
            limit = leader + self.slack_amount if goal == "minimize" else leader - self.slack_amount
            slack = f"slack {self.slack_amount:g}"
        worse = own_best > limit if goal == "minimize" else own_best < limit
        if not worse:
            return None
        return (
            f"Bandit: best {own_best:.4g} by interval {n} is worse than the leader's {leader:.4g}"
            f" by more than {slack} ({goal})."
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "slack_factor": self.slack_factor, "slack_amount": self.slack_amount}


class MedianStoppingPolicy(_Policy):
    """Stop a run whose best value so far is worse than the median of the other runs'
    running averages up to the same interval."""

    name = "median"

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 5) -> None:
        super().__init__(evaluation_interval, delay_evaluation)

    def evaluate(self, goal: str, series: Series, run_id: str) -> str | None:
        goal = _check_goal(goal)
        own = list(series.get(run_id) or ())
        n = self.interval(len(own))
        if n is None:
            return None
        averages = [sum(v[:n]) / n for rid, v in series.items() if rid != run_id and len(v) >= n]
        if not averages:
            return None
        median = statistics.median(averages)
        own_best = min(own[:n]) if goal == "minimize" else max(own[:n])
        worse = own_best > median if goal == "minimize" else own_best < median
        if not worse:
            return None
        return (
            f"Median stopping: best {own_best:.4g} by interval {n} is worse than the median {median:.4g}"
            f" of {len(averages)} other runs' running averages ({goal})."
        )


def policy_from_json(data: dict[str, Any] | None) -> _Policy:
    data = dict(data or {"type": "none"})
    kind = data.pop("type", "none")
    if kind == "bandit":
        return BanditPolicy(**data)
    if kind == "median":
        return MedianStoppingPolicy(**data)
    return NoTerminationPolicy()


def parse_policy(text: str) -> _Policy:
    """CLI form: ``bandit:0.1`` (slack factor), ``bandit:amount=0.2``, ``median``, ``none``."""
    kind, _, arg = text.strip().lower().partition(":")
    try:
        if kind == "none":
            return NoTerminationPolicy()
        if kind == "median":
            return MedianStoppingPolicy(delay_evaluation=int(arg)) if arg else MedianStoppingPolicy()
        if kind == "bandit":
            if arg.startswith("amount="):
                return BanditPolicy(slack_amount=float(arg.split("=", 1)[1]))
            return BanditPolicy(slack_factor=float(arg or 0.1))
    except ValueError:
        pass
    raise ConfigError(f"Unknown policy {text!r}; use bandit:0.1, bandit:amount=0.5, median, median:3 or none.")


Policy = _Policy
