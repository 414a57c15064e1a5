"""Commands added by later parts (environments, sweeps); one hook keeps cli.py small."""

from __future__ import annotations

from typing import Any


def add_extra_commands(sub: Any, add: Any) -> None:
    """Register ``env``, ``sweep``, the store commands (models, rerun, diff, rm, gc...), ``tensorboard``, ``store``."""
    import importlib

    for module_name in (
        "launchbay.environments.cli",
        "launchbay.sweeps.cli",
        "launchbay.cli_store",
        "launchbay.tboard",
        "launchbay.store.cli",
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.register(sub, add)
