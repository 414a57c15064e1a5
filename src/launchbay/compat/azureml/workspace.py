"""v1 ``Workspace`` and ``Experiment`` over the launchbay store.

A workspace is the launchbay store (the nearest ``.launchbay/``, or ``LAUNCHBAY_STORE``);
``.azureml/config.json`` is read for its names only. An experiment is a launchbay
experiment name; ``experiment.submit(config)`` submits a ScriptRunConfig or a
HyperDriveConfig and returns a run at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .unsupported import module_getattr, not_supported

_DATA = (
    "Name the data with Dataset.File.from_files(path) (a folder, file or URL) or Dataset.get_by_name(ws, NAME), "
    "and pass .as_named_input('x').as_mount() in ScriptRunConfig(arguments=[...])."
)


def _find_config(path: str | None, file_name: str | None) -> Path | None:
    names = [file_name] if file_name else ["config.json"]
    start = Path(path or ".").resolve()
    if start.is_file():
        return start
    for folder in (start, *start.parents):
        for name in names:
            for candidate in (folder / name, folder / ".azureml" / name):
                if candidate.is_file():
                    return candidate
    return None


class Workspace:
    """The launchbay store, under a v1 workspace's names."""

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
        *,
        store: str | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.name = workspace_name or "launchbay"
        self.location = _location or "local"
        self.tags = dict(tags or {})
        self._store = store

    # -- finding one ---------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls, path: str | None = None, auth: Any = None, _logger: Any = None, _file_name: str | None = None
    ) -> Workspace:
        """Names from ``.azureml/config.json`` when there is one; the store is launchbay's either way."""
        found = _find_config(path, _file_name)
        data: dict[str, Any] = {}
        if found is not None:
            try:
                data = json.loads(found.read_text())
            except (OSError, ValueError):
                data = {}
        return cls(data.get("subscription_id"), data.get("resource_group"), data.get("workspace_name"))

    @classmethod
    def get(
        cls,
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        **kwargs: Any,
    ) -> Workspace:
        return cls(subscription_id, resource_group, name)

    @classmethod
    def create(
        cls,
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        **kwargs: Any,
    ) -> Workspace:
        """Nothing to create in the cloud: the store appears on first use."""
        return cls.get(name, auth, subscription_id, resource_group)

    def write_config(self, path: str | None = None, file_name: str | None = None) -> None:
        folder = Path(path or ".") / ".azureml"
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.name,
        }
        (folder / (file_name or "config.json")).write_text(json.dumps(data, indent=2))

    # -- what it holds ---------------------------------------------------------------------------------
    def session(self) -> Any:
        from ...session import open_session

        return open_session(self._store)

    @property
    def compute_targets(self) -> dict[str, Any]:
        from .compute import ComputeTarget

        return {t.name: t for t in ComputeTarget.list(self)}

    @property
    def experiments(self) -> dict[str, Experiment]:
        return {name: Experiment(self, name) for name, _count in self.session().store.experiments()}

    @property
    def environments(self) -> dict[str, Any]:
        from .environment import Environment

        return Environment.list(self)

    @property
    def models(self) -> dict[str, Any]:
        from .model import Model

        return Model.latest_by_name(self)

    def get_details(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "location": self.location,
            "store": self.session().store.uri,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
        }

    @property
    def datastores(self) -> dict[str, Any]:
        not_supported("Workspace.datastores", _DATA)

    def get_default_datastore(self) -> Any:
        not_supported("Workspace.get_default_datastore", _DATA)

    @property
    def datasets(self) -> dict[str, Any]:
        """Each named dataset's latest version (``launchbay data list``)."""
        from .dataset import FileDataset

        latest = {v.name: v for v in self.session().store.dataset_versions()}
        return {n: FileDataset(f"dataset:{n}:{v.version}", n, v.version) for n, v in sorted(latest.items())}

    def get_mlflow_tracking_uri(self) -> str:
        not_supported("Workspace.get_mlflow_tracking_uri", "launchbay keeps metrics itself: run.get_metrics().")

    def __repr__(self) -> str:
        return f"Workspace.create(name={self.name!r}, store=launchbay)"


class Experiment:
    """A named group of runs; ``submit`` starts one."""

    def __init__(self, workspace: Workspace, name: str, _skip_name_validation: bool = False, **kwargs: Any) -> None:
        self.workspace = workspace
        self.name = name
        self.id = name

    def submit(self, config: Any, tags: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """Start a ScriptRunConfig, HyperDriveConfig or Pipeline; returns a Run (HyperDriveRun, PipelineRun) at once."""
        submit = getattr(config, "_submit_to", None)
        if submit is None:
            not_supported(
                f"Experiment.submit({type(config).__name__})",
                "Submit a ScriptRunConfig (or a HyperDriveConfig over one), or a Pipeline.",
            )
        import inspect

        takes = inspect.signature(submit).parameters.values()
        if kwargs and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in takes):
            return submit(self, dict(tags or {}), **kwargs)  # a pipeline's pipeline_parameters=...
        return submit(self, dict(tags or {}))

    def get_runs(
        self, type: str | None = None, tags: Any = None, properties: Any = None, include_children: bool = False
    ) -> Iterator[Any]:
        """Runs of this experiment, newest first."""
        from .run import Run

        for record in self.workspace.session().runs(experiment=self.name, limit=None):
            if include_children or not record.parent_run_id:
                yield Run(self, record.run_id)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None, **kwargs: Any) -> list[Experiment]:
        return [e for n, e in workspace.experiments.items() if experiment_name in (None, n)]

    def archive(self) -> None:
        not_supported("Experiment.archive", "Remove old runs with `launchbay rm --experiment NAME`.")

    def __repr__(self) -> str:
        return f"Experiment(Name: {self.name}, Workspace: {self.workspace.name})"


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core", name)


__all__ = ["Experiment", "Workspace"]
