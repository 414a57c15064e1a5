"""Early termination policies: pure functions of the metric series, testable without processes.

``policy.evaluate(goal, series, run_id, ended)`` looks at the primary metric of every
run so far (``{run_id: [values in logging order]}``; ``ended`` names the runs that
have ended) and returns a reason string to stop ``run_id``, or None. As in Azure ML
v1, every logged value of the primary metric is one interval; a run is judged at
interval ``n`` (its point count rounded down to a multiple of ``evaluation_interval``)
once ``n >= delay_evaluation`` (Azure: every multiple of the interval at or past the
delay), against the other runs' values up to the same interval.
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
        return n if n >= self.delay_evaluation and n > 0 else None

    def evaluate(self, goal: str, series: Series, run_id: str, ended: frozenset[str] = frozenset()) -> str | None:
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

    def evaluate(self, goal: str, series: Series, run_id: str, ended: frozenset[str] = frozenset()) -> str | None:
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

    def evaluate(self, goal: str, series: Series, run_id: str, ended: frozenset[str] = frozenset()) -> str | None:
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


class TruncationSelectionPolicy(_Policy):
    """At each interval, stop a run ranked in the worst ``truncation_percentage`` % of the runs
    that reached that interval (by best value so far; ``exclude_finished_jobs`` leaves ended
    runs out of the ranking)."""

    name = "truncation"

    def __init__(
        self,
        truncation_percentage: int,
        evaluation_interval: int = 1,
        delay_evaluation: int = 0,
        exclude_finished_jobs: bool = False,
    ) -> None:
        super().__init__(evaluation_interval, delay_evaluation)
        if isinstance(truncation_percentage, bool) or not 1 <= truncation_percentage <= 99:
            raise ConfigError(f"truncation_percentage must be between 1 and 99, not {truncation_percentage!r}.")
        self.truncation_percentage = int(truncation_percentage)
        self.exclude_finished_jobs = bool(exclude_finished_jobs)

    def evaluate(self, goal: str, series: Series, run_id: str, ended: frozenset[str] = frozenset()) -> str | None:
        goal = _check_goal(goal)
        own = list(series.get(run_id) or ())
        n = self.interval(len(own))
        if n is None:
            return None
        best = min if goal == "minimize" else max
        scores = {
            rid: best(v[:n])
            for rid, v in series.items()
            if len(v) >= n and (rid == run_id or not (self.exclude_finished_jobs and rid in ended))
        }
        cut = len(scores) * self.truncation_percentage // 100
        if cut < 1:
            return None
        ranked = sorted(scores, key=lambda rid: scores[rid], reverse=goal == "minimize")  # worst first
        if run_id not in ranked[:cut] or scores[run_id] == scores[ranked[cut]]:
            return None  # outside the worst part, or tied with a run that stays
        return (
            f"Truncation: best {scores[run_id]:.4g} by interval {n} is in the worst {self.truncation_percentage}%"
            f" of {len(scores)} runs ({goal})."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "truncation_percentage": self.truncation_percentage,
            "exclude_finished_jobs": self.exclude_finished_jobs,
        }


POLICIES: dict[str, type[_Policy]] = {
    "none": NoTerminationPolicy,
    "notermination": NoTerminationPolicy,
    "bandit": BanditPolicy,
    "median": MedianStoppingPolicy,
    "medianstopping": MedianStoppingPolicy,
    "truncation": TruncationSelectionPolicy,
    "truncationselection": TruncationSelectionPolicy,
}


def make_policy(kind: str | None, **fields: Any) -> _Policy:
    """``make_policy("BanditPolicy", slack_factor=0.1)``: Azure's YAML names or launchbay's short ones."""
    key = str(kind or "none").strip().lower().replace("_", "").removesuffix("policy") or "none"
    cls = POLICIES.get(key)
    if cls is None:
        raise ConfigError(
            f"Unknown policy {kind!r}; use BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy"
            " or NoTerminationPolicy."
        )
    if cls is NoTerminationPolicy:
        fields = {}
    try:
        return cls(**{k: v for k, v in fields.items() if v is not None})
    except TypeError as exc:
        import inspect

        known = ", ".join(p for p in inspect.signature(cls.__init__).parameters if p != "self")
        raise ConfigError(f"{cls.__name__} takes {known}; {exc}.") from None


def policy_from_json(data: dict[str, Any] | None) -> _Policy:
    data = dict(data or {"type": "none"})
    return make_policy(data.pop("type", "none"), **data)


def parse_policy(text: str) -> _Policy:
    """CLI form: ``bandit:0.1`` (slack factor), ``bandit:amount=0.2``, ``median``, ``truncation:20``, ``none``."""
    kind, _, arg = text.strip().lower().partition(":")
    try:
        if kind == "none":
            return NoTerminationPolicy()
        if kind == "median":
            return MedianStoppingPolicy(delay_evaluation=int(arg)) if arg else MedianStoppingPolicy()
        if kind == "truncation":
            return TruncationSelectionPolicy(int(arg or 20))
        if kind == "bandit":
            if arg.startswith("amount="):
                return BanditPolicy(slack_amount=float(arg.split("=", 1)[1]))
            return BanditPolicy(slack_factor=float(arg or 0.1))
    except ValueError:
        pass
    raise ConfigError(
        f"Unknown policy {text!r}; use bandit:0.1, bandit:amount=0.5, median, median:3, truncation:20 or none."
    )


Policy = _Policy
