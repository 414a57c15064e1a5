"""The top of the ``azureml`` package (and ``azureml.train``, ``azureml.exceptions``)."""

from __future__ import annotations

from typing import Any

from ...errors import LaunchbayError
from .unsupported import module_getattr

#: v1's root exception; launchbay raises its own tree (LaunchbayError), caught by this name too
AzureMLException = LaunchbayError
UserErrorException = LaunchbayError
WebserviceException = LaunchbayError
ProjectSystemException = LaunchbayError


def __getattr__(name: str) -> Any:
    module_getattr("azureml", name)
