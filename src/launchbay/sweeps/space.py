"""Parameter expressions: what values a parameter may take, with Azure ML HyperDrive's meanings.

Every expression maps a number ``u`` in [0, 1) to a value (its inverse CDF), so random,
Sobol and grid samplers share one definition of each distribution. Expressions are
small JSON-able objects so the detached controller rebuilds them from the sweep's record.

Note on ``loguniform``/``qloguniform``: Azure ML (v1 and v2) take EXPONENTS
(``exp(uniform(lo, hi))``); launchbay takes the VALUES themselves
(``loguniform(1e-4, 1e-1)``). ``loguniform_v1``/``qloguniform_v1`` accept the exponent
form for code and YAML ported from Azure and give the same distribution.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from ..errors import ConfigError

LOG_KINDS = frozenset({"loguniform", "qloguniform", "lognormal", "qlognormal"})
_NORMAL = NormalDist()


def quantise(x: float, q: float) -> float:
    value = round(x / q) * q
    return int(value) if isinstance(q, int) else round(value, 12)


@dataclass(frozen=True)
class Expression:
    """One parameter's distribution; ``sample(rng)`` draws a value, ``from_unit(u)`` maps [0, 1)."""

    kind: str
    args: tuple[Any, ...]

    def from_unit(self, u: float) -> Any:
        """The value at quantile ``u`` (0 <= u < 1): uniform ``u`` gives this distribution."""
        kind, a = self.kind, self.args
        if kind == "choice":
            return a[min(int(u * len(a)), len(a) - 1)]
        if kind == "randint":
            return min(int(u * a[0]), a[0] - 1)
        if kind in ("uniform", "quniform"):
            x = a[0] + u * (a[1] - a[0])
        elif kind in ("loguniform", "qloguniform"):
            x = math.exp(math.log(a[0]) + u * (math.log(a[1]) - math.log(a[0])))
        elif kind in ("normal", "qnormal", "lognormal", "qlognormal"):
            x = a[0] + a[1] * _NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
            if kind in ("lognormal", "qlognormal"):
                x = math.exp(x)
        else:
            raise ConfigError(f"Unknown parameter expression {kind!r}; use one of {', '.join(EXPRESSIONS)}.")
        return quantise(x, a[2]) if kind.startswith("q") else x

    def sample(self, rng: random.Random) -> Any:
        return self.from_unit(rng.random())

    @property
    def log_scale(self) -> bool:
        """Whether the values spread over orders of magnitude (plots use log axes)."""
        return self.kind in LOG_KINDS

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": list(self.args)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Expression:
        return cls(str(data["kind"]), tuple(data["args"]))

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(repr(a) for a in self.args)})"


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{what} needs numbers, got {value!r}.")
    return value


def _q(q: Any, what: str) -> float:
    if _number(q, what) <= 0:
        raise ConfigError(f"{what} needs q > 0, got q={q!r}.")
    return q


def choice(*values: Any) -> Expression:
    """One of ``values`` (numbers, strings, booleans), each equally likely."""
    if len(values) == 1 and isinstance(values[0], (list, tuple, range)):
        values = tuple(values[0])
    if not values:
        raise ConfigError("choice() needs at least one value, e.g. choice(16, 32).")
    bad = [v for v in values if v is not None and not isinstance(v, (bool, int, float, str))]
    if bad:
        raise ConfigError(f"choice() takes numbers, strings or booleans, not {bad[0]!r}.")
    return Expression("choice", tuple(values))


def randint(upper: int) -> Expression:
    """An integer in ``[0, upper)``, each equally likely."""
    if not isinstance(upper, int) or isinstance(upper, bool) or upper < 1:
        raise ConfigError(f"randint({upper!r}) needs an integer upper bound >= 1.")
    return Expression("randint", (upper,))


def uniform(min_value: float, max_value: float) -> Expression:
    """A float between ``min_value`` and ``max_value``."""
    lo, hi = _number(min_value, "uniform()"), _number(max_value, "uniform()")
    if not lo < hi:
        raise ConfigError(f"uniform({lo}, {hi}) needs min_value < max_value.")
    return Expression("uniform", (lo, hi))


def quniform(min_value: float, max_value: float, q: float) -> Expression:
    """``round(uniform(min_value, max_value) / q) * q`` (an int when ``q`` is an int)."""
    base = uniform(min_value, max_value)
    if base.args[0] == base.args[1]:
        raise ConfigError("quniform() needs min_value < max_value.")
    return Expression("quniform", (*base.args, _q(q, "quniform()")))


def loguniform(min_value: float, max_value: float) -> Expression:
    """A float between the VALUES ``min_value`` and ``max_value`` (> 0), uniform in log.

    Unlike Azure ML (whose arguments are exponents), ``loguniform(1e-4, 1e-1)`` samples
    learning rates between 0.0001 and 0.1; ``loguniform_v1`` takes the exponents."""
    lo, hi = _number(min_value, "loguniform()"), _number(max_value, "loguniform()")
    if not 0 < lo < hi:
        raise ConfigError(
            f"loguniform({lo}, {hi}) needs 0 < min_value < max_value (values, not exponents; "
            f"for Azure's exponent form use loguniform_v1({lo}, {hi}))."
        )
    return Expression("loguniform", (lo, hi))


def qloguniform(min_value: float, max_value: float, q: float) -> Expression:
    """``round(loguniform(min_value, max_value) / q) * q`` (values, like ``loguniform``)."""
    base = loguniform(min_value, max_value)
    return Expression("qloguniform", (*base.args, _q(q, "qloguniform()")))


def loguniform_v1(min_exponent: float, max_exponent: float) -> Expression:
    """Azure ML's form: ``exp(uniform(min_exponent, max_exponent))``."""
    lo, hi = _number(min_exponent, "loguniform_v1()"), _number(max_exponent, "loguniform_v1()")
    if not lo < hi:
        raise ConfigError(f"loguniform_v1({lo}, {hi}) needs min_exponent < max_exponent.")
    return loguniform(math.exp(lo), math.exp(hi))


def qloguniform_v1(min_exponent: float, max_exponent: float, q: float) -> Expression:
    """Azure ML's form: ``round(exp(uniform(min_exponent, max_exponent)) / q) * q``."""
    base = loguniform_v1(min_exponent, max_exponent)
    return Expression("qloguniform", (*base.args, _q(q, "qloguniform_v1()")))


def normal(mu: float, sigma: float) -> Expression:
    """A float from the normal distribution with mean ``mu`` and standard deviation ``sigma``."""
    mu, sigma = _number(mu, "normal()"), _number(sigma, "normal()")
    if sigma <= 0:
        raise ConfigError(f"normal({mu}, {sigma}) needs sigma > 0.")
    return Expression("normal", (mu, sigma))


def qnormal(mu: float, sigma: float, q: float) -> Expression:
    """``round(normal(mu, sigma) / q) * q``."""
    return Expression("qnormal", (*normal(mu, sigma).args, _q(q, "qnormal()")))


def lognormal(mu: float, sigma: float) -> Expression:
    """``exp(normal(mu, sigma))``: positive, its natural log is normal (Azure's meaning)."""
    return Expression("lognormal", normal(mu, sigma).args)


def qlognormal(mu: float, sigma: float, q: float) -> Expression:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    return Expression("qlognormal", (*normal(mu, sigma).args, _q(q, "qlognormal()")))


EXPRESSIONS = {
    "choice": choice,
    "randint": randint,
    "uniform": uniform,
    "quniform": quniform,
    "loguniform": loguniform,
    "qloguniform": qloguniform,
    "normal": normal,
    "qnormal": qnormal,
    "lognormal": lognormal,
    "qlognormal": qlognormal,
    "loguniform_v1": loguniform_v1,
    "qloguniform_v1": qloguniform_v1,
}


def make_expression(name: str, values: list[Any]) -> Expression:
    """``make_expression("uniform", [0, 1])``: the YAML form, with one clear error."""
    factory = EXPRESSIONS.get(str(name).strip().lower())
    if factory is None:
        raise ConfigError(f"Unknown parameter expression {name!r}; use one of {', '.join(EXPRESSIONS)}.")
    if not isinstance(values, (list, tuple)):
        values = [values]
    if factory is choice:
        return choice(*values)
    try:
        return factory(*values)  # type: ignore[operator]
    except TypeError:
        import inspect

        wanted = ", ".join(inspect.signature(factory).parameters)
        raise ConfigError(f"{name} takes ({wanted}); got {len(values)} value(s): {values!r}.") from None


def parse_expression(text: str) -> Expression:
    """``loguniform(1e-4, 1e-1)`` or ``choice(16, 32, 'adam')`` → Expression, without eval."""
    text = text.strip()
    head, sep, rest = text.partition("(")
    name = head.strip()
    if not sep or not rest.endswith(")") or name not in EXPRESSIONS:
        raise ConfigError(
            f"Cannot read parameter expression {text!r}; write e.g. loguniform(1e-4,1e-1), uniform(0,1),"
            f" choice(16,32), randint(10), quniform(0,10,2) or normal(0,1)."
        )
    body = rest[:-1].strip()
    args = [_atom(a) for a in _split_args(body)] if body else []
    return make_expression(name, args)


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


def check_space(space: dict[str, Any]) -> dict[str, Expression]:
    if not space:
        raise ConfigError("A sweep needs at least one parameter, e.g. {'lr': loguniform(1e-4, 1e-1)}.")
    out = {}
    for name, expr in space.items():
        if not isinstance(expr, Expression):
            raise ConfigError(f"Parameter {name!r} is {expr!r}; use choice(), uniform(), loguniform(), ...")
        out[str(name)] = expr
    return out
