"""``azureml.data``: ``OutputFileDatasetConfig`` (data written by a pipeline step) and the file datasets."""

from __future__ import annotations

from typing import Any

from .dataset import DatasetConsumptionConfig, FileDataset
from .pipeline_data import OutputFileDatasetConfig
from .unsupported import module_getattr


def __getattr__(name: str) -> Any:
    module_getattr("azureml.data", name)


__all__ = ["DatasetConsumptionConfig", "FileDataset", "OutputFileDatasetConfig"]
