"""The small ``azureml`` package put on the path of runs submitted through the v1 layer.

Standard library only. Registered as a ``launchbay.runtime`` extra (pyproject.toml): every target
ships these files as ``runtime/azureml_alias/``, which the runner puts on the path of a run that
asks for it. Its ``Run`` is ``inrun.py``.
"""

from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))

_ROOT_INIT = '"""Azure ML v1 names inside a launchbay run (written by launchbay\'s runner)."""\n'
_CORE_INIT = '''"""``from azureml.core import Run`` inside a launchbay run."""
from .run import Run


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    try:  # launchbay installed here: the whole v1 layer is available
        from launchbay.compat.azureml import core
    except ImportError:
        raise ImportError(
            "azureml.core.%s is not available inside this run: launchbay is not installed on the target, "
            "only Run is. Use it from the submitting side." % name
        ) from None
    return getattr(core, name)
'''


def alias_files(inrun_source: str | None = None) -> dict[str, str]:
    """Relative path → text of the ``azureml`` package for a run."""
    if inrun_source is None:
        with open(os.path.join(_HERE, "inrun.py")) as fh:
            inrun_source = fh.read()
    return {
        "azureml/__init__.py": _ROOT_INIT,
        "azureml/core/__init__.py": _CORE_INIT,
        "azureml/core/run.py": inrun_source,
    }
