"""Samplers: which parameters trial ``i`` gets, reproducibly, from the trials so far.

``sampler.suggest(index, history)`` is a pure function of the sampler's seed, the
trial's index and (for Bayesian sampling) the earlier trials, so a resumed sweep
asks again and gets what it would have got. ``history`` holds one Trial per earlier
child: its params, its primary metric (None while running) and its state.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .sobol import MAX_DIMENSIONS, sobol_point
from .space import Expression, check_space, quantise


@dataclass(frozen=True)
class Trial:
    """One earlier child as the sampler sees it: state is running, completed, stopped or failed."""

    params: dict[str, Any]
    value: float | None
    state: str


class Sampling:
    kind = "random"

    def __init__(self, space: dict[str, Expression], seed: int | None = None) -> None:
        self.space = check_space(space)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)

    def suggest(self, index: int, history: Sequence[Trial] = (), goal: str = "minimize") -> dict[str, Any]:
        raise NotImplementedError

    def samples(self) -> Iterator[dict[str, Any]]:
        """The suggestions of a sweep whose trials have no results yet (for previews and tests)."""
        index = 0
        while self.size() is None or index < (self.size() or 0):
            yield self.suggest(index)
            index += 1

    def size(self) -> int | None:
        """How many distinct trials there are (grid), or None when unbounded."""
        return None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "seed": self.seed, "space": {k: v.to_json() for k, v in self.space.items()}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.space)} parameters, seed={self.seed})"


class RandomSampling(Sampling):
    """Independent draws; trial ``i`` of a seed is always the same draw."""

    kind = "random"

    def suggest(self, index: int, history: Sequence[Trial] = (), goal: str = "minimize") -> dict[str, Any]:
        rng = random.Random(f"{self.seed}:{index}")
        return {name: expr.from_unit(rng.random()) for name, expr in self.space.items()}


class GridSampling(Sampling):
    """Every combination of ``choice`` values, in order (Azure: grid takes only choice)."""

    kind = "grid"

    def __init__(self, space: dict[str, Expression], seed: int | None = None) -> None:
        super().__init__(space, seed=0)
        bad = [f"{name} ({expr})" for name, expr in self.space.items() if expr.kind != "choice"]
        if bad:
            raise ConfigError(
                f"Grid sampling takes only choice() parameters; {', '.join(bad)} is not. Use random or bayesian"
                " sampling, or list the values with choice()."
            )

    def suggest(self, index: int, history: Sequence[Trial] = (), goal: str = "minimize") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in reversed(list(self.space)):
            values = self.space[name].args
            index, pick = divmod(index, len(values))
            out[name] = values[pick]
        return {name: out[name] for name in self.space}

    def size(self) -> int | None:
        return math.prod(len(e.args) for e in self.space.values())

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "space": {k: v.to_json() for k, v in self.space.items()}}


class SobolSampling(Sampling):
    """A Sobol low-discrepancy sequence (digitally shifted by the seed): covers the space more
    evenly than random draws for the same budget."""

    kind = "sobol"

    def __init__(self, space: dict[str, Expression], seed: int | None = None) -> None:
        super().__init__(space, seed)
        if len(self.space) > MAX_DIMENSIONS:
            raise ConfigError(f"Sobol sampling takes up to {MAX_DIMENSIONS} parameters; use random sampling.")

    def suggest(self, index: int, history: Sequence[Trial] = (), goal: str = "minimize") -> dict[str, Any]:
        point = sobol_point(index, len(self.space), seed=self.seed)
        return {name: expr.from_unit(u) for (name, expr), u in zip(self.space.items(), point)}


class BayesianSampling(Sampling):
    """Optuna's TPE: each trial is asked of a study rebuilt from the finished trials, with the
    running ones pending (constant liar), so ``max_concurrent_runs`` trials don't all land on
    the same spot. As in Azure, it takes choice, randint, uniform, quniform and the log forms."""

    kind = "bayesian"
    SUPPORTED = ("choice", "randint", "uniform", "quniform", "loguniform", "qloguniform")

    def __init__(self, space: dict[str, Expression], seed: int | None = None, n_startup_trials: int = 8) -> None:
        super().__init__(space, seed)
        bad = [f"{name} ({expr})" for name, expr in self.space.items() if expr.kind not in self.SUPPORTED]
        if bad:
            raise ConfigError(
                f"Bayesian sampling takes {', '.join(self.SUPPORTED)}; {', '.join(bad)} is not. Use random sampling."
            )
        self.n_startup_trials = int(n_startup_trials)
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError("Bayesian sampling needs Optuna: pip install 'launchbay[sweeps]'.") from None

    def _distributions(self) -> dict[str, Any]:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        out: dict[str, Any] = {}
        for name, e in self.space.items():
            if e.kind == "choice":
                out[name] = CategoricalDistribution(list(e.args))
            elif e.kind == "randint":
                out[name] = IntDistribution(0, e.args[0] - 1)
            else:
                out[name] = FloatDistribution(float(e.args[0]), float(e.args[1]), log="log" in e.kind)
        return out

    def _latent(self, name: str, value: Any) -> Any:
        """Optuna's value for a recorded one (quantised values may sit just outside the bounds)."""
        e = self.space[name]
        if e.kind in ("choice", "randint"):
            return value
        return min(max(float(value), float(e.args[0])), float(e.args[1]))

    def suggest(self, index: int, history: Sequence[Trial] = (), goal: str = "minimize") -> dict[str, Any]:
        import optuna
        from optuna.trial import TrialState, create_trial

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=(self.seed * 1_000_003 + index) % 2**31,
            constant_liar=True,
            n_startup_trials=self.n_startup_trials,
        )
        study = optuna.create_study(direction="maximize" if goal == "maximize" else "minimize", sampler=sampler)
        dists = self._distributions()
        for trial in history:
            if set(trial.params) != set(dists) or trial.state == "failed":
                continue
            params = {n: self._latent(n, v) for n, v in trial.params.items()}
            if any(
                isinstance(dists[n], optuna.distributions.CategoricalDistribution) and v not in dists[n].choices
                for n, v in params.items()
            ):
                continue
            if trial.value is None or trial.value != trial.value:
                state = TrialState.RUNNING if trial.state == "running" else TrialState.FAIL
                study.add_trial(create_trial(params=params, distributions=dists, state=state))
            else:
                study.add_trial(create_trial(params=params, distributions=dists, value=float(trial.value)))
        asked = study.ask(dists)
        out = {}
        for name, e in self.space.items():
            value = asked.params[name]
            if e.kind.startswith("q"):
                value = quantise(value, e.args[2])
            out[name] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "n_startup_trials": self.n_startup_trials}


SAMPLINGS: dict[str, type[Sampling]] = {
    "random": RandomSampling,
    "grid": GridSampling,
    "sobol": SobolSampling,
    "bayesian": BayesianSampling,
}


def make_sampling(kind: str, space: dict[str, Expression], seed: int | None = None, **options: Any) -> Sampling:
    """``make_sampling("bayesian", space)``; the names Azure's YAML uses are accepted too."""
    key = str(kind).strip().lower().removesuffix("sampling").removesuffix("_") or "random"
    cls = SAMPLINGS.get(key)
    if cls is None:
        raise ConfigError(f"Unknown sampling {kind!r}; use random, grid, bayesian or sobol.")
    return cls(space, seed=seed, **options)  # type: ignore[call-arg]


def sampling_from_json(data: dict[str, Any]) -> Sampling:
    space = {k: Expression.from_json(v) for k, v in data["space"].items()}
    options = {"n_startup_trials": data["n_startup_trials"]} if "n_startup_trials" in data else {}
    return make_sampling(data.get("type", "random"), space, seed=data.get("seed"), **options)
