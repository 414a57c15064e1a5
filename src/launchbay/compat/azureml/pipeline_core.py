"""``azureml.pipeline.core``: ``Pipeline``, ``PipelineData``, ``PipelineParameter`` and ``PipelineRun`` over
launchbay's pipelines (``launchbay.pipeline``).

``experiment.submit(Pipeline(workspace=ws, steps=[PythonScriptStep(...), ...]))`` is one launchbay pipeline
run whose steps are its children; each step runs on its ``compute_target`` once the data it reads is written;
a step whose code, environment, command, parameters and inputs are unchanged is reused (``allow_reuse``),
and ``launchbay pipeline show RUN`` says why each step ran or was reused. Statuses are launchbay's
(``Completed`` where v1's pipeline said ``Finished``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import LaunchbayError
from .pipeline_data import PipelineData, PipelineParameter
from .run import Run
from .unsupported import module_getattr, not_supported

_PUBLISH = (
    "Submit it again with experiment.submit(pipeline) (unchanged steps are reused), keep it as a pipeline.yaml "
    "for `launchbay pipeline run FILE`, and run it on a timetable with `launchbay schedule`."
)


class Pipeline:
    """Steps to run as one pipeline; ``experiment.submit(pipeline)`` runs it (as often as wanted)."""

    def __init__(
        self,
        workspace: Any,
        steps: list[Any],
        description: str | None = None,
        default_datastore: Any = None,
        default_source_directory: str | os.PathLike[str] | None = None,
        resolve_closure: bool = True,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
        **kwargs: Any,
    ) -> None:
        self.workspace = workspace
        self.steps = list(steps)
        self.description = description
        self.default_source_directory = default_source_directory

    def _launchbay(self, experiment_name: str) -> Any:
        """The launchbay pipeline (checked: graph, names, targets' names)."""
        from ...pipelines import pipeline
        from .pipeline_graph import to_launchbay_steps

        session = self.workspace.session()
        steps, root = to_launchbay_steps(self.steps, session, self.default_source_directory)
        return pipeline(steps, name=experiment_name, experiment=experiment_name, source_dir=root,
                        store=self.workspace._store)  # fmt: skip

    def validate(self) -> list[str]:
        """v1's check before submitting: the problems found (none: an empty list)."""
        from ...pipelines import check_steps

        try:
            lb = self._launchbay("validate")
            check_steps(self.workspace.session(), lb.definition, Path(str(lb.source_dir)))
        except LaunchbayError as exc:
            return [str(exc)]
        return []

    def publish(self, name: str | None = None, description: str | None = None, **kwargs: Any) -> Any:
        not_supported("Pipeline.publish", _PUBLISH)

    def _submit_to(
        self,
        experiment: Any,
        tags: dict[str, str],
        pipeline_parameters: dict[str, Any] | None = None,
        regenerate_outputs: bool = False,
        **kwargs: Any,
    ) -> PipelineRun:
        """``experiment.submit(pipeline, pipeline_parameters={...}, regenerate_outputs=False)``."""
        lb = self._launchbay(experiment.name)
        everything = lb.definition.names() if regenerate_outputs else ()
        handle = lb.submit(dict(pipeline_parameters or {}), no_reuse=everything)
        record = handle.record()
        for key, value in tags.items():
            handle.session.store.set_tag(record.pk, str(key), str(value))
        return PipelineRun(experiment, handle.run_id)


class PortDataReference:
    """A step's output after it ran: ``download(local_path)`` copies its files."""

    def __init__(self, run: Run, name: str) -> None:
        self._run, self.name = run, name

    def download(self, local_path: str, overwrite: bool = False, show_progress: bool = True) -> str:
        prefix = f"outputs/{self.name}"
        self._run.download_files(prefix, local_path)
        return os.path.join(local_path, prefix)


class StepRun(Run):
    """One step's run (for a reused step, the earlier run whose results it reused)."""

    def __init__(self, experiment: Any, run_id: str, step: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(experiment, run_id)
        self._step = step or {}
        self.name = str(self._step.get("name") or "")
        self.reused_from = self._step.get("reused_from")

    def get_output_data(self, name: str) -> PortDataReference:
        return PortDataReference(self, name)

    def get_job_log(self) -> str:
        return str(self._handle.get_log())


class PipelineRun(Run):
    """A submitted pipeline: its status, its steps (``get_steps``, ``find_step_run``), waiting and cancel."""

    def __init__(self, experiment: Any, run_id: str, **kwargs: Any) -> None:
        from ...pipelines import get_pipeline

        self.experiment = experiment
        self.id = run_id
        self._pipeline = get_pipeline(run_id, store=experiment.workspace._store)
        self._handle = self._pipeline
        self._live_view = None

    def wait_for_completion(  # type: ignore[override]
        self, show_output: bool = True, timeout_seconds: float | None = None, raise_on_error: bool = True
    ) -> str:
        """Block until every step ended; with ``show_output`` one line per step change. Returns the status."""
        import time

        from ...pipelines.watch import follow_pipeline

        deadline = None if timeout_seconds is None else time.time() + timeout_seconds
        if show_output:
            print(f"PipelineRunId: {self.id}", flush=True)
            status = follow_pipeline(self._pipeline, sys.stdout, timeout=timeout_seconds)
        else:
            status = self._handle.wait(timeout=timeout_seconds)
        if status not in ("Completed", "Failed", "Canceled") and deadline is not None:
            return status
        if show_output:
            print(f"PipelineRun Status: {status}", flush=True)
        if raise_on_error and status != "Completed":
            error = (self._handle.record().error or {}).get("message") or ""
            raise LaunchbayError(f"Pipeline run {self.id} ended {status}: {error}")
        return status

    def get_steps(self) -> Iterator[StepRun]:
        """The steps that ran or were reused, in the pipeline's order."""
        for step in self._pipeline.steps:
            if step.get("run_id"):
                yield StepRun(self.experiment, step["run_id"], step)

    def find_step_run(self, name: str) -> list[StepRun]:
        """The run of the step named ``name`` (a list, as in v1: empty when it has not started)."""
        from .pipeline_graph import step_id

        return [s for s in self.get_steps() if s.name in (name, step_id(name))]

    def publish_pipeline(self, name: str, description: str | None = None, version: str | None = None) -> Any:
        not_supported("PipelineRun.publish_pipeline", _PUBLISH)

    def __repr__(self) -> str:
        return f"PipelineRun(Experiment: {self.experiment.name}, Id: {self.id}, Status: {self.get_status()})"


def __getattr__(name: str) -> Any:
    module_getattr("azureml.pipeline.core", name)


__all__ = ["Pipeline", "PipelineData", "PipelineParameter", "PipelineRun", "PortDataReference", "StepRun"]
