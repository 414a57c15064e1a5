"""``azureml.core``: Workspace, Experiment, Environment, ScriptRunConfig, Run, Model, ...

``Run`` here is both v1 faces of a run: ``Run.get_context()`` inside the code (launchbay's
in-run API with v1's extra methods) and the object ``experiment.submit`` returns, which
reads the launchbay store through a :class:`launchbay.RunHandle`.
"""

from __future__ import annotations

import getpass
from typing import Any

from ... import runfolder as rf
from .compute import ComputeTarget
from .dataset import Dataset
from .environment import Environment
from .model import Model
from .runconfig import RunConfiguration, ScriptRunConfig
from .unsupported import module_getattr, not_supported
from .workspace import Experiment, Workspace


class Run:
    """A submitted run, by id: status, waiting, metrics, files, tags, models."""

    def __init__(self, experiment: Experiment, run_id: str, outputs: Any = None, **kwargs: Any) -> None:
        import launchbay

        self.experiment = experiment
        self.id = run_id
        self._handle = launchbay.get_run(run_id, store=experiment.workspace._store)
        self._live_view: tuple[Any, int | None] | None = None  # RunDetails(run).show()'s widget, and its cell

    # -- inside a run ------------------------------------------------------------------------------
    @classmethod
    def get_context(cls, allow_offline: bool = True, **kwargs: Any) -> Any:
        """The run this code executes in (or an offline run that prints), with v1's methods."""
        from .inrun import Run as InRun

        return InRun.get_context(allow_offline=allow_offline)

    @staticmethod
    def get(workspace: Workspace, run_id: str) -> Run:
        import launchbay

        record = launchbay.get_run(run_id, store=workspace._store).record()
        return Run(Experiment(workspace, record.experiment), record.run_id)

    # -- state ----------------------------------------------------------------------------------------
    @property
    def handle(self) -> Any:
        """The launchbay RunHandle behind this run (for everything v1 did not have)."""
        return self._handle

    @property
    def status(self) -> str:
        return self.get_status()

    @property
    def display_name(self) -> str:
        return self._handle.record().name or self.id

    @property
    def parent(self) -> Run | None:
        parent = self._handle.record().parent_run_id
        return Run(self.experiment, parent) if parent else None

    def get_status(self) -> str:
        return str(self._handle.status)

    def get_details(self) -> dict[str, Any]:
        """v1's shape: runId, target, status, times, properties, runDefinition, logFiles, error."""
        record = self._handle.record()
        details = self._handle.get_details()
        log_files = {n: n for n in self._handle.get_file_names() if n.startswith((f"{rf.USER_LOGS}/", f"{rf.LOGS}/"))}
        out: dict[str, Any] = {
            "runId": record.run_id,
            "target": record.target,
            "status": record.status.value,
            "startTimeUtc": details.get("started"),
            "endTimeUtc": details.get("ended"),
            "properties": {**record.properties, **self.get_properties()},
            "tags": record.tags,
            "inputDatasets": [],
            "outputDatasets": [],
            "runDefinition": {
                "script": record.script,
                "arguments": record.arguments,
                "target": record.target,
                "environment": details.get("environment") or record.environment,
            },
            "logFiles": log_files,
            "submittedBy": getpass.getuser(),
        }
        if record.error:
            out["error"] = {"error": {"message": record.error.get("message", ""), "code": "UserError"}}
        return out

    def get_details_with_logs(self) -> dict[str, Any]:
        details = self.get_details()
        details["logFiles"] = {rf.STD_LOG: self._handle.get_log()}
        return details

    def wait_for_completion(
        self, show_output: bool = False, wait_post_processing: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        """Block until the run ends (streaming its log with ``show_output``); v1's details after.

        Under the cell whose ``RunDetails(run).show()`` put the live widget up, the widget streams the
        log: it is not printed again below it, and the widget shows all of it when this returns."""
        from .widgets import cell_number

        view, cell = self._live_view or (None, None)
        if view is not None and cell == cell_number():
            self._handle.wait()
            view.wait_until_done(timeout=30)
            show_output = False
        self._handle.wait_for_completion(show_output=show_output, raise_on_error=raise_on_error)
        return self.get_details()

    def _shown_live(self, view: Any, cell: int | None) -> None:
        """``RunDetails(run).show()`` displayed ``view``, a live widget of this run, under ``cell``."""
        self._live_view = (view, cell)

    def cancel(self) -> None:
        self._handle.cancel()

    def fail(self, error_details: Any = None, error_code: str | None = None, _set_status: bool = True) -> None:
        not_supported("Run.fail() from the submitting side", "Call run.fail() inside the run, or run.cancel() here.")

    def complete(self, _set_status: bool = True) -> None:
        """A submitted run completes when its script ends."""

    # -- metrics, tags, properties ------------------------------------------------------------------------
    def get_metrics(
        self, name: str | None = None, recursive: bool = False, run_type: Any = None, populate: bool = False
    ) -> dict[str, Any]:
        metrics = self._handle.get_metrics(name)
        if recursive:
            for child in self.get_children():
                metrics[child.id] = child.get_metrics(name)
        return metrics

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        not_supported("Run.log on a submitted run from outside it", "Log inside the run: Run.get_context().log(...).")

    def tag(self, key: str, value: Any = None) -> None:
        record = self._handle.record()
        self._handle.session.store.set_tag(record.pk, str(key), "" if value is None else str(value))

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, str]:
        return dict(self._handle.tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add-only, as in v1: existing keys keep their value."""
        record = self._handle.record()
        merged = {str(k): str(v) for k, v in properties.items()}
        merged.update(record.properties)
        self._handle.session.store.update_run(record.pk, properties=merged)

    def get_properties(self) -> dict[str, Any]:
        record = self._handle.record()
        props = dict(record.properties)
        for _kind, name, payload, _ts in self._handle.session.store.read_records(record, "property"):
            props.setdefault(name, payload)
        return props

    # -- files and models -------------------------------------------------------------------------------
    def get_file_names(self) -> list[str]:
        return self._handle.get_file_names()

    def download_file(self, name: str, output_file_path: str | None = None, _validate_checksum: bool = False) -> None:
        self._handle.download_file(name, output_file_path)

    def download_files(
        self,
        prefix: str | None = None,
        output_directory: str | None = None,
        output_paths: Any = None,
        batch_size: int = 100,
        append_prefix: bool = True,
    ) -> None:
        self._handle.download_files(prefix or "", output_directory or ".")

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        not_supported("Run.upload_file from outside the run", "Call Run.get_context().upload_file(...) in the run.")

    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Model:
        return Model._register_from_run(self, model_name, model_path, tags, properties, description)

    def get_children(
        self,
        recursive: bool = False,
        tags: Any = None,
        properties: Any = None,
        type: Any = None,
        status: Any = None,
        _rehydrate_runs: bool = True,
    ) -> list[Run]:
        store = self._handle.session.store
        children = [store.get_run(run_id) for run_id in store.children(self.id, newest_first=True)]
        return [Run(self.experiment, r.run_id) for r in children if status in (None, r.status.value)]

    def get_portal_url(self) -> str:
        """A JupyterLab link that opens this run in launchbay's sidebar (the server from $JUPYTER_URL)."""
        import os

        base = os.environ.get("JUPYTER_URL", "http://127.0.0.1:8888").rstrip("/")
        return f"{base}/lab?launchbay-run={self.id}"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._handle)  # the live run widget, as launchbay's extension shows a RunHandle

    def __repr__(self) -> str:
        return f"Run(Experiment: {self.experiment.name}, Id: {self.id}, Type: azureml.scriptrun, Status: {self.status})"


ScriptRun = Run


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core", name)


__all__ = [
    "ComputeTarget",
    "Dataset",
    "Environment",
    "Experiment",
    "Model",
    "Run",
    "RunConfiguration",
    "ScriptRun",
    "ScriptRunConfig",
    "Workspace",
]
