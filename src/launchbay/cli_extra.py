"""Commands added by later parts (environments, sweeps); one hook keeps cli.py small."""

from __future__ import annotations

from typing import Any


def add_extra_commands(sub: Any, add: Any) -> None:
    """Register ``env``, ``sweep`` and the store commands (models, rerun, diff, rm, gc...) and ``tensorboard``."""
    import importlib

    for module_name in (
        "launchbay.environments.cli",
        "launchbay.sweeps.cli",
        "launchbay.cli_store",
        "launchbay.tboard",
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.register(sub, add)
