"""``azureml.exceptions``: v1's exception names, each one of launchbay's errors (``launchbay.errors``).

v1 code that catches a v1 exception catches what launchbay raises in the same situation::

    AzureMLException, UserErrorException,   LaunchbayError   anything launchbay refuses or fails at
    ActivityFailedException, ...            (the message says what to do next)
    ComputeTargetException                  TargetError      also an unknown target name, so v1's
                                                             ``try: ComputeTarget(ws, name) except
                                                             ComputeTargetException: ...create...`` works
    ServiceException                        StoreError       the workspace is launchbay's store
                                                             (a run or model not found is one)
    RunConfigurationException               ConfigError
    ExperimentExecutionException            SubmitError
    SnapshotException                       SnapshotError
    ModelNotFoundException                  ModelNotFoundError
"""

from __future__ import annotations

from typing import Any

from ...errors import (
    ConfigError,
    LaunchbayError,
    ModelNotFoundError,
    SnapshotError,
    StoreError,
    SubmitError,
    TargetError,
)
from .unsupported import module_getattr

AzureMLException = LaunchbayError
UserErrorException = LaunchbayError
ActivityFailedException = LaunchbayError  # wait_for_completion() of a run that did not complete
WebserviceException = LaunchbayError
ProjectSystemException = LaunchbayError
ComputeTargetException = TargetError
ServiceException = StoreError
RunConfigurationException = ConfigError
ExperimentExecutionException = SubmitError
SnapshotException = SnapshotError
ModelNotFoundException = ModelNotFoundError


def __getattr__(name: str) -> Any:
    module_getattr("azureml.exceptions", name)


__all__ = [
    "ActivityFailedException",
    "AzureMLException",
    "ComputeTargetException",
    "ExperimentExecutionException",
    "ModelNotFoundException",
    "ProjectSystemException",
    "RunConfigurationException",
    "ServiceException",
    "SnapshotException",
    "UserErrorException",
    "WebserviceException",
]
