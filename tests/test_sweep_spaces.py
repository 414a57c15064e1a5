"""Sweep expressions, samplers and policies as pure functions: no runs, no processes."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

import pytest

from launchbay.errors import ConfigError
from launchbay.sweeps import (
    BanditPolicy,
    BayesianSampling,
    GridSampling,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    RandomSampling,
    SobolSampling,
    TruncationSelectionPolicy,
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
from launchbay.sweeps.policy import make_policy
from launchbay.sweeps.sampling import Trial
from launchbay.sweeps.sobol import sobol_point
from launchbay.sweeps.space import Expression, parse_expression
from launchbay.sweeps.yamlconfig import sweep_options

N = 4000


def draws(expr: Expression, n: int = N, seed: int = 1) -> list[Any]:
    sampler = RandomSampling({"v": expr}, seed=seed)
    return [sampler.suggest(i)["v"] for i in range(n)]


def share(values: list[Any], test: Any) -> float:
    return sum(1 for v in values if test(v)) / len(values)


# -- every expression, checked statistically (N = 4000 draws; tolerances are > 4 standard errors) ------
def test_choice_and_randint_give_every_value_equally_often() -> None:
    counts = Counter(draws(choice("adam", "sgd", 0.5)))
    assert set(counts) == {"adam", "sgd", 0.5}
    assert all(abs(c / N - 1 / 3) < 0.035 for c in counts.values())
    ints = Counter(draws(randint(5)))
    assert set(ints) == {0, 1, 2, 3, 4} and all(isinstance(v, int) for v in ints)
    assert all(abs(c / N - 0.2) < 0.03 for c in ints.values())


def test_uniform_stays_in_bounds_and_is_flat() -> None:
    values = draws(uniform(2, 5))
    assert all(2 <= v <= 5 for v in values)
    assert abs(statistics.mean(values) - 3.5) < 0.06
    assert abs(share(values, lambda v: v < 2.75) - 0.25) < 0.03


def test_quniform_rounds_to_multiples_of_q_like_azure() -> None:
    values = draws(quniform(0, 10, 2.5))
    assert set(values) == {0, 2.5, 5, 7.5, 10}
    counts = Counter(values)  # round(): the two ends get half a bucket each
    assert abs(counts[0] / N - 0.125) < 0.025 and abs(counts[5] / N - 0.25) < 0.03
    assert set(draws(quniform(1, 9, 2), n=500)) <= {0, 2, 4, 6, 8, 10}
    assert all(isinstance(v, int) for v in draws(quniform(1, 9, 2), n=50))  # integer q: integer values


def test_loguniform_takes_values_and_is_uniform_in_log() -> None:
    values = draws(loguniform(1e-4, 1e-1))
    assert all(1e-4 <= v <= 1e-1 for v in values)
    for decade in (-4, -3, -2):  # each decade gets a third
        assert abs(share(values, lambda v, d=decade: 10**d <= v < 10 ** (d + 1)) - 1 / 3) < 0.035
    quantised = draws(qloguniform(1, 1000, 1))
    assert all(isinstance(v, int) and 1 <= v <= 1000 for v in quantised)
    assert abs(share(quantised, lambda v: v <= 32) - 0.5) < 0.035  # the median is sqrt(1000) ~ 31.6


def test_the_azure_v1_exponent_forms_give_the_same_distribution() -> None:
    v1_form = loguniform_v1(math.log(1e-4), math.log(1e-1))
    assert v1_form.kind == "loguniform" and v1_form.args == pytest.approx((1e-4, 1e-1))
    v1 = draws(loguniform_v1(-6, -1), n=1000)
    assert all(math.exp(-6) <= v <= math.exp(-1) for v in v1)
    assert draws(qloguniform_v1(0, 3, 1), n=200) == draws(qloguniform(1.0, math.exp(3), 1), n=200)
    with pytest.raises(ConfigError, match="loguniform_v1"):
        loguniform(-6, -1)  # exponents given to the value form: the message names the v1 form


def test_normal_and_qnormal_have_the_right_mean_spread_and_quantisation() -> None:
    values = draws(normal(10, 2))
    assert abs(statistics.mean(values) - 10) < 0.15 and abs(statistics.stdev(values) - 2) < 0.1
    assert abs(share(values, lambda v: 8 <= v <= 12) - 0.6827) < 0.03
    q = draws(qnormal(0, 3, 1))
    assert all(v == int(v) for v in q)
    assert abs(statistics.mean(q)) < 0.2 and abs(statistics.stdev(q) - 3) < 0.15


def test_lognormal_and_qlognormal_are_positive_with_a_normal_log() -> None:
    values = draws(lognormal(0, 0.5))
    logs = [math.log(v) for v in values]
    assert all(v > 0 for v in values)
    assert abs(statistics.mean(logs)) < 0.04 and abs(statistics.stdev(logs) - 0.5) < 0.03
    q = draws(qlognormal(1, 0.5, 0.5))
    assert all(v >= 0 and abs(v / 0.5 - round(v / 0.5)) < 1e-9 for v in q)
    assert abs(statistics.median(q) - round(math.e / 0.5) * 0.5) <= 0.5


def test_bad_expressions_are_refused_with_what_to_write() -> None:
    for bad in (
        "__import__('os')",
        "uniform(1)",
        "uniform(1, 0)",
        "loguniform(0, 1)",
        "choice()",
        "normal(0, -1)",
        "quniform(0, 1, 0)",
        "gamma(1, 2)",
    ):
        with pytest.raises(ConfigError):
            parse_expression(bad)
    assert parse_expression("qlognormal(0, 1, 0.5)").kind == "qlognormal"
    assert parse_expression("choice(16,32,'adam', sgd)").args == (16, 32, "adam", "sgd")


# -- samplers -----------------------------------------------------------------------------------------
def test_random_sampling_is_reproducible_per_trial_index() -> None:
    space = {"lr": loguniform(1e-4, 1e-1), "bs": choice(16, 32)}
    a, b = RandomSampling(space, seed=7), RandomSampling(space, seed=7)
    assert [a.suggest(i) for i in range(20)] == [b.suggest(i) for i in range(20)]
    assert a.suggest(5) == b.suggest(5)  # a resumed sweep asks for trial 5 and gets the same values
    assert [a.suggest(i) for i in range(5)] != [RandomSampling(space, seed=8).suggest(i) for i in range(5)]


def test_grid_sampling_takes_every_choice_combination_and_only_choices() -> None:
    grid = GridSampling({"a": choice(1, 2), "b": choice("x", "y", "z")})
    assert grid.size() == 6
    combos = [grid.suggest(i) for i in range(6)]
    assert combos[:2] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}] and len({str(c) for c in combos}) == 6
    with pytest.raises(ConfigError, match="only choice.*lr \\(uniform"):
        GridSampling({"lr": uniform(0, 1)})


def test_sobol_points_match_the_reference_sequence_and_stratify() -> None:
    assert [sobol_point(i, 2) for i in range(4)] == [[0, 0], [0.5, 0.5], [0.75, 0.25], [0.25, 0.75]]
    shifted = [sobol_point(i, 5, seed=3) for i in range(64)]
    for dim in range(5):  # every 1/64 slice of every axis holds exactly one of the first 64 points
        assert sorted(int(p[dim] * 64) for p in shifted) == list(range(64))
    sampler = SobolSampling({"x": uniform(0, 1), "lr": loguniform(1e-4, 1)}, seed=1)
    assert all(0 <= s["x"] <= 1 and 1e-4 <= s["lr"] <= 1 for s in (sampler.suggest(i) for i in range(32)))


def quadratic(p: dict[str, float]) -> float:
    return (p["x"] - 0.3) ** 2 + (p["y"] + 0.5) ** 2


def best_of(sampler: Any, budget: int = 30, concurrent: int = 3) -> float:
    """A simulated sweep: ``concurrent`` trials are pending while the next one is asked for."""
    trials: list[list[Any]] = []
    for i in range(budget):
        history = [Trial(p, v, "running" if v is None else "completed") for p, v in trials]
        trials.append([sampler.suggest(i, history, "minimize"), None])
        pending = [t for t in trials if t[1] is None]
        for t in pending if i == budget - 1 else pending[: max(0, len(pending) - concurrent + 1)]:
            t[1] = quadratic(t[0])
    return min(t[1] for t in trials)


def test_bayesian_sampling_beats_random_on_a_2d_quadratic_at_equal_budget() -> None:
    space = {"x": uniform(-2, 2), "y": uniform(-2, 2)}
    bayes = [best_of(BayesianSampling(space, seed=s)) for s in range(5)]
    rand = [best_of(RandomSampling(space, seed=s)) for s in range(5)]
    # measured: mean best 0.036 (TPE) vs 0.172 (random), 30 trials, 3 pending, seeds 0-4
    assert statistics.mean(bayes) * 3 < statistics.mean(rand)
    assert sum(b < r for b, r in zip(bayes, rand)) >= 4


def test_bayesian_sampling_spreads_pending_trials_and_refuses_what_tpe_cannot_take() -> None:
    sampler = BayesianSampling({"x": uniform(0, 1), "k": choice(1, 2, 3)}, seed=0, n_startup_trials=2)
    done = [Trial({"x": x / 10, "k": 1 + x % 3}, (x / 10 - 0.5) ** 2, "completed") for x in range(10)]
    first = sampler.suggest(10, done)
    second = sampler.suggest(11, [*done, Trial(first, None, "running")])
    assert first != second and 0 <= first["x"] <= 1 and first["k"] in (1, 2, 3)
    assert sampler.suggest(10, done) == first  # same history, same index: same answer (resume)
    with pytest.raises(ConfigError, match="Bayesian sampling takes"):
        BayesianSampling({"x": normal(0, 1)})


# -- policies, on crafted histories, both goals --------------------------------------------------------
def flip(series: dict[str, list[float]]) -> dict[str, list[float]]:
    """The same race for a maximised metric."""
    return {k: [-v for v in vs] for k, vs in series.items()}


RACE = {"good": [0.5, 0.3, 0.2], "close": [0.6, 0.3, 0.21], "bad": [0.9, 0.9, 0.91], "mid": [0.7, 0.5, 0.4]}


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_bandit_stops_runs_outside_the_slack_of_the_leader(goal: str) -> None:
    series = RACE if goal == "minimize" else flip(RACE)
    factor = BanditPolicy(slack_factor=0.1)
    reason = factor.evaluate(goal, series, "bad")
    assert reason and "Bandit" in reason and goal in reason
    assert factor.evaluate(goal, series, "close") is None and factor.evaluate(goal, series, "good") is None
    assert BanditPolicy(slack_amount=0.5).evaluate(goal, series, "bad")  # 0.91 vs 0.2 + 0.5
    assert BanditPolicy(slack_amount=0.8).evaluate(goal, series, "bad") is None
    assert BanditPolicy(slack_amount=0.1).evaluate(goal, series, "mid")


def test_bandit_with_a_factor_on_positive_maximised_metrics_follows_azure() -> None:
    accuracy = {"leader": [0.9], "a": [0.8], "b": [0.85]}  # stop when best < 0.9 / 1.1 = 0.818
    assert BanditPolicy(slack_factor=0.1).evaluate("maximize", accuracy, "a")
    assert BanditPolicy(slack_factor=0.1).evaluate("maximize", accuracy, "b") is None


def test_every_policy_honours_evaluation_interval_and_delay() -> None:
    series = {"leader": [0.1] * 10, "late": [5.0, 5.0, 5.0]}
    for policy in (
        BanditPolicy(slack_factor=0.1),
        MedianStoppingPolicy(delay_evaluation=0),
        TruncationSelectionPolicy(50),
    ):
        assert policy.evaluate("minimize", series, "late"), policy
        fields = {k: v for k, v in policy.to_json().items() if k != "type"}
        delayed = make_policy(policy.name, **{**fields, "delay_evaluation": 4})
        assert delayed.evaluate("minimize", series, "late") is None, delayed  # 3 points: before the delay
        assert make_policy(policy.name, **{**fields, "delay_evaluation": 3}).evaluate("minimize", series, "late")
        spaced = make_policy(policy.name, **{**fields, "evaluation_interval": 2})
        assert spaced.interval(3) == 2 and spaced.interval(1) is None
    with pytest.raises(ConfigError):
        BanditPolicy()


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_median_stopping_compares_best_with_the_median_of_running_averages(goal: str) -> None:
    series = {"a": [1.0, 0.8, 0.6], "b": [1.0, 0.9, 0.7], "c": [3.0, 2.9, 2.8]}
    series = series if goal == "minimize" else flip(series)
    policy = MedianStoppingPolicy(delay_evaluation=1)
    reason = policy.evaluate(goal, series, "c")
    assert reason and "median" in reason.lower()
    assert policy.evaluate(goal, series, "a") is None
    assert policy.evaluate(goal, {"c": series["c"]}, "c") is None  # nobody to compare with
    assert NoTerminationPolicy().evaluate(goal, series, "c") is None


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_truncation_stops_the_worst_percentage_at_each_interval(goal: str) -> None:
    series = {f"r{i}": [float(i), float(i)] for i in range(10)}  # r0 best when minimising
    series = series if goal == "minimize" else flip(series)
    policy = TruncationSelectionPolicy(truncation_percentage=20)
    worst = ("r9", "r8")
    stopped = {rid for rid in series if policy.evaluate(goal, series, rid)}
    assert stopped == set(worst)
    assert "worst 20%" in (policy.evaluate(goal, series, "r9") or "")
    assert policy.evaluate(goal, {"a": [1.0], "b": [2.0]}, "b") is None  # 20% of 2 runs is nobody
    tied = {"a": [1.0], "b": [2.0], "c": [2.0], "d": [0.5], "e": [0.1]}
    assert TruncationSelectionPolicy(20).evaluate("minimize", tied, "b") is None  # tied with a run that stays
    ended = frozenset({"r9"})
    assert TruncationSelectionPolicy(15).evaluate(goal, series, "r8", ended) is None  # 15% of 10: only r9
    keep_out = TruncationSelectionPolicy(15, exclude_finished_jobs=True)
    assert keep_out.evaluate(goal, series, "r8", ended)  # r9 ended and is left out: r8 is the worst 15% of 9
    with pytest.raises(ConfigError):
        TruncationSelectionPolicy(0)


# -- Azure's YAML layout ------------------------------------------------------------------------------
def test_the_hyperdrive_yaml_layout_is_read_and_checked_before_any_run() -> None:
    options = sweep_options(
        {
            "sampling": {
                "type": "bayesian",
                "parameter_space": [
                    {"name": "--lr", "expression": "loguniform", "values": [1e-4, 1e-1]},
                    {"name": "batch-size", "expression": "choice", "values": [16, 32]},
                ],
            },
            "policy": {"type": "BanditPolicy", "evaluation_interval": 2, "slack_factor": 0.1, "delay_evaluation": 4},
            "primary_metric_name": "accuracy",
            "primary_metric_goal": "Maximize",
            "max_total_runs": 12,
            "max_concurrent_runs": 3,
            "max_duration_minutes": 1.5,
        }
    )
    assert isinstance(options["sampling"], BayesianSampling) and set(options["sampling"].space) == {"lr", "batch-size"}
    policy = options["policy"]
    assert isinstance(policy, BanditPolicy) and policy.evaluation_interval == 2 and policy.delay_evaluation == 4
    assert options["goal"] == "maximize" and options["max_duration_s"] == 90 and options["max_total_runs"] == 12
    base = {
        "primary_metric_name": "loss",
        "sampling": {"parameter_space": [{"name": "x", "expression": "uniform", "values": [0, 1]}]},
    }
    for change, message in (
        (
            {
                "sampling": {
                    "type": "grid",
                    "parameter_space": [{"name": "x", "expression": "uniform", "values": [0, 1]}],
                }
            },
            "only choice",
        ),
        (
            {"sampling": {"parameter_space": [{"name": "x", "expression": "uniform", "values": [1, 0]}]}},
            "min_value < max_value",
        ),
        (
            {"sampling": {"parameter_space": [{"name": "x", "expression": "gamma", "values": [1]}]}},
            "Unknown parameter expression",
        ),
        ({"policy": {"type": "HyperbandPolicy"}}, "Unknown policy"),
        ({"policy": {"type": "BanditPolicy", "slack": 1}}, "BanditPolicy takes"),
        ({"primary_metric_name": None}, "primary_metric_name is required"),
        ({"max_total_runs": 0}, "max_total_runs"),
    ):
        with pytest.raises(ConfigError, match=message):
            sweep_options({**base, **change})
