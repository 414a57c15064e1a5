"""Every error launchbay raises on purpose, under one root.

    LaunchbayError
    ├── ConfigError            launchbay.toml / arguments are wrong
    │   ├── UnknownTargetError
    │   └── UnknownEnvironmentError
    ├── SnapshotError
    │   └── SnapshotTooLargeError
    ├── StoreError
    │   ├── RunNotFoundError
    │   │   ├── ModelNotFoundError  (a "not found" like a run's: a 404 in the REST API)
    │   │   └── DatasetNotFoundError  (an unknown dataset or version: a 404 too)
    │   ├── StoreDamagedError  the index is damaged or missing: `launchbay store repair`
    │   ├── DiskFullError      the disk holding the store is full
    │   └── StoreUnavailableError  a team store's server cannot be reached (for now: waiting goes on)
    ├── SubmitError            the run could not be started (missing script, pickling, ...)
    │   └── DataInputError     an input (--input NAME=SOURCE) cannot be read, hashed or fetched
    ├── TargetError            a compute target misbehaved (unreachable host, daemon down)
    ├── EnvironmentBuildError
    └── NotSupportedError      an Azure ML v1 feature launchbay does not have (names the alternative)

Each message says what happened and what to do next; the CLI prints it as one line.
"""

from __future__ import annotations


class LaunchbayError(Exception):
    """Root of every launchbay error."""


class ConfigError(LaunchbayError):
    """The configuration or the arguments given are invalid."""


class UnknownTargetError(ConfigError):
    """A target name that launchbay.toml does not define."""


class UnknownEnvironmentError(ConfigError):
    """An environment name that launchbay.toml does not define."""


class SnapshotError(LaunchbayError):
    """The source folder could not be snapshotted."""


class SnapshotTooLargeError(SnapshotError):
    """The snapshot is over its file-count or byte budget."""


class StoreError(LaunchbayError):
    """The run-history store failed or is incompatible."""


class RunNotFoundError(StoreError):
    """No run with that id exists in the store."""


class StoreDamagedError(StoreError):
    """The SQLite index is damaged or missing while run folders exist; rebuild it from them."""


class DiskFullError(StoreError):
    """The disk holding the store (or a run's folder) has no space left."""


class StoreUnavailableError(StoreError):
    """A team store's database cannot be reached (down, restarting, the network): nothing was written,
    and runs keep their journals until it is back; a wait goes on through it."""


class SubmitError(LaunchbayError):
    """The run could not be submitted; nothing was recorded."""


class TargetError(LaunchbayError):
    """A compute target is unreachable or failed an operation."""


class EnvironmentBuildError(LaunchbayError):
    """An environment failed to build."""


class ModelNotFoundError(RunNotFoundError):
    """No model, or no such version of it, in the registry."""


class DataInputError(SubmitError):
    """A data input cannot be used: a missing or unreadable path, a URL that fails, a bad NAME=SOURCE."""


class DatasetNotFoundError(RunNotFoundError):
    """A named dataset, or a version of one, that the store does not have."""


class NotSupportedError(LaunchbayError, ImportError):
    """Something Azure ML v1 had that launchbay does not; the message names the launchbay way.

    Also an ``ImportError`` so that ``from azureml.X import Y`` fails the way Python code expects."""
