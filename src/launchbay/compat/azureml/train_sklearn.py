"""``azureml.train.sklearn``: the ``SKLearn`` estimator, see estimator.py."""

from __future__ import annotations

from typing import Any

from .estimator import SKLearn as SKLearn
from .unsupported import module_getattr


def __getattr__(name: str) -> Any:
    module_getattr("azureml.train.sklearn", name)


__all__ = ["SKLearn"]
