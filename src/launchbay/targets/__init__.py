"""Compute targets, one module each, behind ``Target`` (base.py).

Only compute targets are here: a sweep's record is kept true by its controller
(``launchbay.sweeps.control.SweepControl``), which ``Session.target_for`` hands out.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..config import ProjectConfig
from ..errors import ConfigError
from ..store import RunStore
from .base import RunControl, Target

_TYPES = {
    "local": ("launchbay.targets.local", "LocalTarget"),
    "docker": ("launchbay.targets.docker", "DockerTarget"),
    "ssh": ("launchbay.targets.ssh", "SSHTarget"),
    "ray": ("launchbay.targets.ray", "RayTarget"),
    "slurm": ("launchbay.targets.slurm", "SlurmTarget"),
}

__all__ = ["RunControl", "Target", "make_target", "target_types"]


def target_types() -> list[str]:
    return list(_TYPES)


def make_target(name: str, config: ProjectConfig, store: RunStore) -> Target[Any]:
    """The target called ``name`` in the project's configuration (imports its module lazily)."""
    settings = config.target(name)
    kind = str(settings["type"])
    if kind not in _TYPES:
        raise ConfigError(
            f"[targets.{name}] has type {kind!r}; launchbay knows {', '.join(_TYPES)}. Fix the type in {config.path}."
        )
    module_name, class_name = _TYPES[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"The {kind} target needs a package that is missing: {exc}. Install it and retry.") from exc
    cls = getattr(module, class_name)
    target: Target[Any] = cls(name, settings, store, config)
    return target
