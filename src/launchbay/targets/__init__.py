"""Compute targets, one module each, behind ``Target`` (base.py), found by type in an open registry.

A target type is a row of the ``launchbay.targets`` entry-point group (plugins.py): the
five built-in ones are launchbay's own rows, and a package adds a type by declaring
``[project.entry-points."launchbay.targets"] NAME = "module:TargetClass"``.

Records that are not launched on a target are kept true by a run control of their
kind (``launchbay.controls``): a sweep's by its controller
(``launchbay.runcontrol.ControllerControl``: a sweep's, a pipeline's), which ``Session.target_for`` hands out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import plugins
from ..config import ProjectConfig
from ..errors import ConfigError
from ..plugins import target_types
from ..store import RunRecord, Store
from .base import RunControl, Target

__all__ = ["RunControl", "Target", "control_kinds", "make_control", "make_target", "target_types"]


def make_target(name: str, config: ProjectConfig, store: Store) -> Target[Any, Any]:
    """The target called ``name`` in the project's configuration (imports its module lazily)."""
    settings = config.target(name)
    kind = str(settings["type"])
    reference = plugins.own(plugins.TARGETS, kind) or plugins.rows(plugins.TARGETS).get(kind)
    if reference is None:
        raise ConfigError(
            f"[targets.{name}] has type {kind!r}; launchbay knows {', '.join(target_types())}. "
            f"Fix the type in {config.path}."
        )
    try:
        cls = plugins.load(reference)
    except ImportError as exc:
        raise ConfigError(f"The {kind} target needs a package that is missing: {exc}. Install it and retry.") from exc
    target: Target[Any, Any] = cls(name, settings, store, config)
    return target


def control_kinds() -> list[str]:
    """The record kinds (``target_type``) kept true by a run control instead of a target."""
    return list(plugins.rows(plugins.CONTROLS))


def make_control(kind: str | None, store: Store, control_for: Callable[[RunRecord], RunControl]) -> RunControl | None:
    """The control of a ``kind`` record, or None when ``kind`` is a target type; ``control_for`` finds a child's."""
    if not kind or plugins.own(plugins.TARGETS, kind) is not None:  # a built-in target: no metadata read
        return None
    reference = plugins.own(plugins.CONTROLS, kind) or plugins.rows(plugins.CONTROLS).get(kind)
    if reference is None:
        return None
    control: RunControl = plugins.load(reference)(store, control_for)
    return control
