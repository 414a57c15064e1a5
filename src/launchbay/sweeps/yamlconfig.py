"""Read a sweep from the layout of Azure ML's HyperDrive YAML (``hdconfig.yml``).

::

    sampling:
      type: bayesian            # random | grid | bayesian | sobol
      parameter_space:
        - name: --lr            # leading dashes are dropped; the script gets --lr VALUE
          expression: loguniform
          values: [0.0001, 0.1] # launchbay's loguniform takes VALUES; Azure's exponents: loguniform_v1
    policy:
      type: BanditPolicy        # BanditPolicy | MedianStoppingPolicy | TruncationSelectionPolicy | NoTerminationPolicy
      evaluation_interval: 1
      slack_factor: 0.1
    primary_metric_name: loss
    primary_metric_goal: minimize
    max_total_runs: 12
    max_concurrent_runs: 3
    max_duration_minutes: 30

Everything is checked here, before any run starts; each mistake is one line naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .policy import make_policy
from .sampling import make_sampling
from .space import make_expression

TOP_KEYS = {
    "sampling",
    "policy",
    "primary_metric_name",
    "primary_metric_goal",
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
    "seed",
    "target",
    "experiment",
    "environment",
    "description",
}


def load_sweep_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``sweep()`` keyword arguments (sampling, policy, primary_metric, goal, limits) from the file."""
    try:
        import yaml
    except ImportError:
        raise ConfigError("Reading a sweep file needs PyYAML: pip install 'launchbay[sweeps]'.") from None
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigError(f"Cannot read the sweep file {file}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {str(exc).splitlines()[0]}.") from None
    return sweep_options(data, str(file))


def sweep_options(data: Any, where: str = "the sweep config") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with sampling, policy, primary_metric_name, ...")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}.")
    sampling = data.get("sampling")
    if not isinstance(sampling, dict) or not sampling.get("parameter_space"):
        raise ConfigError(
            f"{where}: sampling.parameter_space must list the parameters ([{{name, expression, values}}])."
        )
    space = {}
    for i, item in enumerate(sampling["parameter_space"]):
        if not isinstance(item, dict) or not {"name", "expression"} <= set(item):
            raise ConfigError(f"{where}: sampling.parameter_space[{i}] needs name, expression and values.")
        name = str(item["name"]).lstrip("-")
        if not name or name in space:
            raise ConfigError(f"{where}: parameter name {item['name']!r} is empty or given twice.")
        try:
            space[name] = make_expression(str(item["expression"]), item.get("values", []))
        except ConfigError as exc:
            raise ConfigError(f"{where}: parameter {name}: {exc}") from None
    extra = {k: v for k, v in sampling.items() if k not in ("type", "parameter_space", "parameters", "seed")}
    if extra:
        raise ConfigError(f"{where}: unknown sampling key(s) {', '.join(sorted(extra))}.")
    options = dict(sampling.get("parameters") or {})
    seed = sampling.get("seed", data.get("seed"))
    try:
        sampler = make_sampling(str(sampling.get("type", "random")), space, seed=seed, **options)
    except TypeError:
        raise ConfigError(f"{where}: unknown sampling parameters {', '.join(options)}.") from None
    policy_data = dict(data.get("policy") or {"type": "NoTerminationPolicy"})
    policy = make_policy(policy_data.pop("type", None), **policy_data)
    metric = data.get("primary_metric_name")
    if not metric:
        raise ConfigError(f"{where}: primary_metric_name is required (the metric the script logs, e.g. loss).")
    goal = str(data.get("primary_metric_goal", "minimize")).lower()
    if goal not in ("minimize", "maximize"):
        raise ConfigError(f"{where}: primary_metric_goal must be minimize or maximize, not {goal!r}.")
    out: dict[str, Any] = {"sampling": sampler, "policy": policy, "primary_metric": str(metric), "goal": goal}
    for key in ("max_total_runs", "max_concurrent_runs"):
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {key} must be a whole number >= 1, not {value!r}.")
            out[key] = value
    if data.get("max_duration_minutes") is not None:
        minutes = data["max_duration_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
            raise ConfigError(f"{where}: max_duration_minutes must be a number > 0, not {minutes!r}.")
        out["max_duration_s"] = float(minutes) * 60
    for key in ("target", "experiment", "environment"):
        if data.get(key):
            out[key] = str(data[key])
    return out
