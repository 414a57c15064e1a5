"""What v1 passed between pipeline steps: ``PipelineData``, ``OutputFileDatasetConfig`` and ``PipelineParameter``.

On launchbay the step that writes one has it as a named output (``outputs/NAME``, kept as a dataset version
when the step completes); the script receives that folder's path in its arguments, as v1's did (create it:
``os.makedirs(path, exist_ok=True)``). A step that reads one has it as a data input: its argument becomes the
path where the upstream output was delivered. A ``PipelineParameter`` is a pipeline parameter
(``experiment.submit(pipeline, pipeline_parameters={...})`` gives its value).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from ...errors import ConfigError
from .unsupported import not_supported

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,40}$")
_counter = itertools.count(1)


class PipelineParameter:
    """A value given when the pipeline is submitted (``default_value`` otherwise)."""

    def __init__(self, name: str, default_value: Any) -> None:
        if not _NAME.match(str(name)):
            raise ConfigError(f"PipelineParameter {name!r}: use letters, digits and '_', starting with a letter.")
        self.name, self.default_value = str(name), default_value

    def __repr__(self) -> str:
        return f"PipelineParameter(name={self.name!r}, default_value={self.default_value!r})"


class StepData:
    """Data one step writes and others read; which step writes it is found from the steps (pipeline_graph.py)."""

    kind = "PipelineData"

    def __init__(self, name: str) -> None:
        if not _NAME.match(str(name)):
            raise ConfigError(
                f"{self.kind} name {name!r}: use letters, digits, '_' or '-', starting with a letter"
                " (it names the step's output and the reading step's input)."
            )
        self.name = str(name)

    def as_input(self, input_name: str | None = None) -> PipelineInput:
        """This data as a reading step's input (named ``input_name``, else as the data)."""
        return PipelineInput(self, input_name or self.name)

    def as_mount(self, *args: Any, **kwargs: Any) -> StepData:
        return self

    def as_download(self, *args: Any, **kwargs: Any) -> StepData:
        return self

    def as_dataset(self) -> StepData:
        return self

    def __repr__(self) -> str:
        return f"{self.kind}(name={self.name!r})"


class PipelineData(StepData):
    """v1's intermediate data: list it in ``outputs=[...]`` of the step that writes it and in ``inputs=[...]``
    of the steps that read it (or pass ``.as_input()``); in ``arguments=[...]`` it is a folder's path."""

    def __init__(
        self,
        name: str,
        datastore: Any = None,
        output_name: str | None = None,
        output_mode: str = "mount",
        output_path_on_compute: str | None = None,
        output_overwrite: bool | None = None,
        data_type: str | None = None,
        is_directory: bool | None = None,
        pipeline_output_name: str | None = None,
        training_output: Any = None,
    ) -> None:
        if datastore is not None:
            not_supported("PipelineData(datastore=...)", "A step's output is kept in launchbay's store; leave it out.")
        if output_path_on_compute:
            not_supported(
                "PipelineData(output_path_on_compute=...)", "The script gets the output's path in its arguments."
            )
        super().__init__(name)


class OutputFileDatasetConfig(StepData):
    """v1's output dataset: pass it in the writing step's ``arguments=[...]`` (a folder's path there) and
    ``.as_input()`` in the reading steps' arguments."""

    kind = "OutputFileDatasetConfig"

    def __init__(
        self, name: str | None = None, destination: Any = None, source: str | None = None, partition_format: Any = None
    ) -> None:
        if destination is not None:
            not_supported(
                "OutputFileDatasetConfig(destination=...)",
                "Every step output is kept in launchbay's store as a dataset version (`launchbay data list`).",
            )
        if source is not None:
            not_supported("OutputFileDatasetConfig(source=...)", "The script gets the output's path in its arguments.")
        super().__init__(name or f"output_{next(_counter)}")

    def as_upload(self, overwrite: bool = False, source_globs: Any = None) -> OutputFileDatasetConfig:
        return self

    def register_on_complete(self, name: str, description: str | None = None, tags: Any = None) -> Any:
        not_supported(
            "OutputFileDatasetConfig.register_on_complete",
            "Every step output is already a dataset version, named PIPELINE-STEP-OUTPUT (`launchbay data list`).",
        )

    def read_delimited_files(self, *args: Any, **kwargs: Any) -> Any:
        not_supported("OutputFileDatasetConfig.read_delimited_files", "Read the files with pandas in the next step.")

    def read_parquet_files(self, *args: Any, **kwargs: Any) -> Any:
        not_supported("OutputFileDatasetConfig.read_parquet_files", "Read the files with pandas in the next step.")


class PipelineInput:
    """``data.as_input(name)``: a step reads ``data``, as its input ``name``."""

    def __init__(self, data: StepData, name: str) -> None:
        self.data, self.name = data, name

    def as_mount(self, *args: Any, **kwargs: Any) -> PipelineInput:
        return self

    def as_download(self, *args: Any, **kwargs: Any) -> PipelineInput:
        return self

    def __repr__(self) -> str:
        return f"{self.data!r}.as_input({self.name!r})"
