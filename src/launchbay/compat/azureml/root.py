"""The top of the ``azureml`` package (and ``azureml.train``); v1's exception names are here too."""

from __future__ import annotations

from typing import Any

from .exceptions import AzureMLException as AzureMLException
from .exceptions import ProjectSystemException as ProjectSystemException
from .exceptions import UserErrorException as UserErrorException
from .exceptions import WebserviceException as WebserviceException
from .unsupported import module_getattr


def __getattr__(name: str) -> Any:
    module_getattr("azureml", name)
