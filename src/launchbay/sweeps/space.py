"""Parameter expressions and samplers: what values a sweep tries, reproducibly.

Expressions are small JSON-able objects so the detached controller can rebuild
them from the sweep's record. Note on ``loguniform``: Azure ML v1 took exponents
(``exp(uniform(lo, hi))``); launchbay's ``loguniform(min_value, max_value)`` takes
the VALUES themselves (``loguniform(1e-4, 1e-1)``) and samples their natural log
uniformly.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Expression:
    """One parameter's distribution; ``sample(rng)`` draws a value."""

    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: random.Random) -> Any:
        kind, a = self.kind, self.args
        if kind == "choice":
            return a[rng.randrange(len(a))]
        if kind == "uniform":
            return rng.uniform(a[0], a[1])
        if kind == "loguniform":
            return math.exp(rng.uniform(math.log(a[0]), math.log(a[1])))
        if kind == "quniform":
            return round(rng.uniform(a[0], a[1]) / a[2]) * a[2]
        if kind == "randint":
            return rng.randrange(a[0])
        raise ConfigError(f"Unknown parameter expression {kind!r}.")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": list(self.args)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Expression:
        return cls(str(data["kind"]), tuple(data["args"]))

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(repr(a) for a in self.args)})"


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} needs numbers, got {value!r}.")
    return value


def choice(*values: Any) -> Expression:
    """One of ``values`` (numbers or strings), each equally likely."""
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    if not values:
        raise ConfigError("choice() needs at least one value, e.g. choice(16, 32).")
    return Expression("choice", tuple(values))


def uniform(lo: float, hi: float) -> Expression:
    """A float between ``lo`` and ``hi``."""
    lo, hi = _number(lo, "uniform()"), _number(hi, "uniform()")
    if not lo < hi:
        raise ConfigError(f"uniform({lo}, {hi}) needs lo < hi.")
    return Expression("uniform", (lo, hi))


def loguniform(min_value: float, max_value: float) -> Expression:
    """A float between the VALUES ``min_value`` and ``max_value`` (> 0), log-uniformly.

    Unlike Azure ML v1 (whose arguments were exponents), ``loguniform(1e-4, 1e-1)``
    samples learning rates between 0.0001 and 0.1."""
    lo, hi = _number(min_value, "loguniform()"), _number(max_value, "loguniform()")
    if not 0 < lo < hi:
        raise ConfigError(f"loguniform({lo}, {hi}) needs 0 < min_value < max_value (values, not exponents).")
    return Expression("loguniform", (lo, hi))


def quniform(lo: float, hi: float, q: float) -> Expression:
    """``round(uniform(lo, hi) / q) * q``."""
    base = uniform(lo, hi)
    if _number(q, "quniform()") <= 0:
        raise ConfigError(f"quniform(..., q={q}) needs q > 0.")
    return Expression("quniform", (*base.args, q))


def randint(upper: int) -> Expression:
    """An integer in ``[0, upper)``."""
    if not isinstance(upper, int) or isinstance(upper, bool) or upper < 1:
        raise ConfigError(f"randint({upper!r}) needs an integer upper bound >= 1.")
    return Expression("randint", (upper,))


EXPRESSIONS = {"choice": choice, "uniform": uniform, "loguniform": loguniform, "quniform": quniform, "randint": randint}


def _check_space(space: dict[str, Any]) -> dict[str, Expression]:
    if not space:
        raise ConfigError("A sweep needs at least one parameter, e.g. {'lr': loguniform(1e-4, 1e-1)}.")
    out = {}
    for name, expr in space.items():
        if not isinstance(expr, Expression):
            raise ConfigError(f"Parameter {name!r} is {expr!r}; use choice(), uniform(), loguniform(), ...")
        out[str(name)] = expr
    return out


class RandomSampling:
    """Independent random draws; the same seed gives the same sequence of samples."""

    kind = "random"

    def __init__(self, space: dict[str, Expression], seed: int | None = None) -> None:
        self.space = _check_space(space)
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)

    def samples(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        while True:
            yield {name: expr.sample(rng) for name, expr in self.space.items()}

    def size(self) -> int | None:
        return None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "seed": self.seed, "space": {k: v.to_json() for k, v in self.space.items()}}


class GridSampling:
    """Every combination of ``choice`` values, in order."""

    kind = "grid"

    def __init__(self, space: dict[str, Expression]) -> None:
        self.space = _check_space(space)
        bad = [name for name, expr in self.space.items() if expr.kind != "choice"]
        if bad:
            raise ConfigError(f"Grid sampling takes only choice() parameters; {', '.join(bad)} are not.")

    def samples(self) -> Iterator[dict[str, Any]]:
        names = list(self.space)
        for combo in itertools.product(*(self.space[n].args for n in names)):
            yield dict(zip(names, combo))

    def size(self) -> int | None:
        return math.prod(len(e.args) for e in self.space.values())

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, "space": {k: v.to_json() for k, v in self.space.items()}}


Sampling = RandomSampling | GridSampling


def sampling_from_json(data: dict[str, Any]) -> RandomSampling | GridSampling:
    space = {k: Expression.from_json(v) for k, v in data["space"].items()}
    if data["type"] == "grid":
        return GridSampling(space)
    return RandomSampling(space, seed=data.get("seed"))


def parse_expression(text: str) -> Expression:
    """``loguniform(1e-4, 1e-1)`` or ``choice(16, 32, 'adam')`` → Expression, without eval."""
    text = text.strip()
    head, sep, rest = text.partition("(")
    name = head.strip()
    if not sep or not rest.endswith(")") or name not in EXPRESSIONS:
        raise ConfigError(
            f"Cannot read parameter expression {text!r}; write e.g. loguniform(1e-4,1e-1), uniform(0,1),"
            f" choice(16,32), randint(10) or quniform(0,10,2)."
        )
    body = rest[:-1].strip()
    args = [_atom(a) for a in _split_args(body)] if body else []
    try:
        return EXPRESSIONS[name](*args)  # type: ignore[operator]
    except TypeError as exc:
        raise ConfigError(f"Wrong number of arguments in {text!r}: {exc}.") from None


def _split_args(body: str) -> list[str]:
    parts, current, quote = [], "", ""
    for ch in body:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current += ch
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    if quote:
        raise ConfigError(f"Unclosed quote in {body!r}.")
    parts.append(current)
    return [p.strip() for p in parts]


def _atom(token: str) -> Any:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    for cast in (int, float):
        try:
            return cast(token)
        except ValueError:
            continue
    if token in ("True", "False"):
        return token == "True"
    if not token:
        raise ConfigError("Empty argument in a parameter expression.")
    return token  # a bare word in choice(adam, sgd) is a string
