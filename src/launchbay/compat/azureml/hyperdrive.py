"""``azureml.train.hyperdrive`` (filled in with the sweeps' complete expressions and policies)."""

from __future__ import annotations

from typing import Any

from .unsupported import module_getattr


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.hyperdrive", name)
