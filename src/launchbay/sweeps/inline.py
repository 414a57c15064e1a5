"""``%%submit --sweep ...``: a sweep file, or the sweep written inline on one line.

Inline form: parameters and options as ``NAME=VALUE`` words, e.g.
``lr=loguniform(1e-4,1e-1) bs=choice(16,32) metric=loss runs=8 concurrent=2 policy=bandit:0.1``.
Spaces inside parentheses are fine; ``;`` also separates words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError

OPTIONS = {
    "metric": ("primary_metric", str),
    "goal": ("goal", str),
    "runs": ("max_total_runs", int),
    "concurrent": ("max_concurrent_runs", int),
    "max_duration": ("max_duration_s", float),
    "policy": ("policy", str),
    "sampling": ("sampling", str),
    "seed": ("seed", int),
}


def _words(text: str) -> list[str]:
    words, current, depth = [], "", 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and (ch.isspace() or ch == ";"):
            if current:
                words.append(current)
            current = ""
        else:
            current += ch
    if current:
        words.append(current)
    return words


def sweep_from_text(text: str, base: Path) -> dict[str, Any]:
    """``sweep()`` keyword arguments from a YAML path (relative to ``base``) or the inline form."""
    from .policy import parse_policy
    from .sampling import make_sampling
    from .space import parse_expression
    from .yamlconfig import load_sweep_yaml

    text = text.strip()
    if text.endswith((".yml", ".yaml")) and "=" not in text:
        return load_sweep_yaml(base / text)
    space: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for word in _words(text):
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ConfigError(
                f"--sweep: cannot read {word!r}; write NAME=EXPRESSION or OPTION=VALUE, e.g."
                " --sweep 'lr=loguniform(1e-4,1e-1) metric=loss runs=8', or name a sweep.yaml."
            )
        if name in OPTIONS:
            key, cast = OPTIONS[name]
            try:
                raw[key] = cast(value)
            except ValueError:
                raise ConfigError(f"--sweep: {name}={value!r} is not a {cast.__name__}.") from None
        elif not name.isidentifier():
            raise ConfigError(f"--sweep: {name!r} is not a variable name the cell can use.")
        else:
            space[name] = parse_expression(value)
    if not space:
        raise ConfigError("--sweep needs at least one parameter, e.g. --sweep 'lr=loguniform(1e-4,1e-1) metric=loss'.")
    if "primary_metric" not in raw:
        raise ConfigError("--sweep needs the metric the cell logs: add metric=NAME (e.g. metric=loss).")
    out: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("sampling", "seed", "policy")}
    out["sampling"] = make_sampling(raw.get("sampling", "random"), space, seed=raw.get("seed"))
    if "policy" in raw:
        out["policy"] = parse_policy(raw["policy"])
    return out
