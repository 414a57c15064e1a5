"""Azure ML SDK v1 code on launchbay: ``launchbay.compat.azureml.install()`` and nothing else changes.

After ``install()``, ``import azureml.core`` (and the other v1 modules listed in ``MODULES``)
resolve to launchbay's implementations through an import hook on ``sys.meta_path``. A v1
module launchbay does not cover fails at import with one :class:`~launchbay.errors.NotSupportedError`
naming the launchbay way instead. A real ``azureml`` package, when installed, is left in
charge unless ``install(force=True)`` is asked for, and then launchbay says so.

Inside a run submitted through this layer the runner puts a small ``azureml`` package on the
run's path, so a v1 training script's ``from azureml.core import Run`` works unchanged on
every target, even where launchbay itself is not installed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any

from ...errors import ConfigError, NotSupportedError

#: the environment variable the runner sees on runs submitted through this layer
ENV_FLAG = "LAUNCHBAY_AZUREML_COMPAT"

_PKG = __name__
#: v1 module name → the launchbay module that implements it
MODULES = {
    "azureml": f"{_PKG}.root",
    "azureml.core": f"{_PKG}.core",
    "azureml.core.run": f"{_PKG}.core",
    "azureml.core.script_run": f"{_PKG}.core",
    "azureml.core.workspace": f"{_PKG}.workspace",
    "azureml.core.experiment": f"{_PKG}.workspace",
    "azureml.core.script_run_config": f"{_PKG}.runconfig",
    "azureml.core.runconfig": f"{_PKG}.runconfig",
    "azureml.core.environment": f"{_PKG}.environment",
    "azureml.core.conda_dependencies": f"{_PKG}.environment",
    "azureml.core.compute": f"{_PKG}.compute",
    "azureml.core.compute_target": f"{_PKG}.compute",
    "azureml.core.authentication": f"{_PKG}.authentication",
    "azureml.core.model": f"{_PKG}.model",
    "azureml.core.dataset": f"{_PKG}.dataset",
    "azureml.exceptions": f"{_PKG}.exceptions",
    "azureml.train": f"{_PKG}.root",
    "azureml.train.hyperdrive": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.parameter_expressions": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.sampling": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.policy": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.runconfig": f"{_PKG}.hyperdrive",
    "azureml.train.hyperdrive.run": f"{_PKG}.hyperdrive",
    "azureml.widgets": f"{_PKG}.widgets",
}


class _AliasLoader(importlib.abc.Loader):
    """Fills an ``azureml.*`` module with the names of the launchbay module behind it."""

    def __init__(self, implementation: str | None) -> None:
        self.implementation = implementation

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        if self.implementation is None:
            from .unsupported import module_message

            raise NotSupportedError(module_message(module.__name__))
        impl = importlib.import_module(self.implementation)
        module.__dict__.update({k: v for k, v in vars(impl).items() if not (k.startswith("__") and k.endswith("__"))})
        module.__doc__ = impl.__doc__
        if hasattr(impl, "__all__"):
            module.__all__ = list(impl.__all__)  # type: ignore[attr-defined]
        if hasattr(impl, "__getattr__"):
            module.__getattr__ = impl.__getattr__  # type: ignore[method-assign]


class _AzureMLFinder(importlib.abc.MetaPathFinder):
    """Answers for ``azureml`` and every ``azureml.*`` module (unknown ones explain themselves)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "azureml" and not fullname.startswith("azureml."):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(MODULES.get(fullname)), is_package=True)


_finder: _AzureMLFinder | None = None


def _real_azureml() -> str | None:
    """Where a real ``azureml`` package lives on sys.path, if one does."""
    spec = importlib.machinery.PathFinder.find_spec("azureml")
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or []) or [str(spec.origin)]
    return ", ".join(locations)


def install(force: bool = False) -> None:
    """Make ``import azureml...`` resolve to launchbay (idempotent).

    A real ``azureml`` package stays in charge unless ``force=True``; then launchbay warns
    that it shadows it."""
    global _finder
    if _finder is not None:
        return
    real = _real_azureml()
    if real and not force:
        raise ConfigError(
            f"A real azureml package is installed ({real}); launchbay leaves it in charge. "
            "Call launchbay.compat.azureml.install(force=True) to run v1 code on launchbay instead, "
            "or uninstall azureml-core."
        )
    if real:
        warnings.warn(
            f"launchbay's Azure ML v1 layer now shadows the installed azureml package ({real}).",
            stacklevel=2,
        )
    for name in [n for n in sys.modules if n == "azureml" or n.startswith("azureml.")]:
        del sys.modules[name]
    _finder = _AzureMLFinder()
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo ``install()``: ``azureml`` imports go back to whatever is installed."""
    global _finder
    if _finder is None:
        return
    sys.meta_path.remove(_finder)
    _finder = None
    for name in [n for n in sys.modules if n == "azureml" or n.startswith("azureml.")]:
        del sys.modules[name]


def is_installed() -> bool:
    return _finder is not None


def install_if_configured(config: Any) -> bool:
    """``azureml_compat = true`` in launchbay.toml turns the layer on (used by the magics and CLI)."""
    if getattr(config, "azureml_compat", False):
        install()
        return True
    return False
