"""Azure ML v1's file datasets on launchbay's data inputs (launchbay/data/).

``Dataset.File.from_files(path)`` (a folder, a file or an http(s) URL) and
``Dataset.get_by_name(ws, name, version="latest")`` name the data; ``.as_named_input("train")``
names it in the run, ``.as_mount()`` (read-only) or ``.as_download()`` (a private copy) say how the
run gets it. Passed in ``ScriptRunConfig(arguments=[...])``, the consumption config reaches the
script as that input's path (the runner puts it there, as v1's ``DatasetConsumptionConfig:NAME``
placeholder was); inside the run ``run.input_datasets["train"]`` is the same path.
``FileDataset.register(ws, name)`` makes it a version of a named launchbay dataset.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ...errors import ConfigError
from .unsupported import module_getattr, not_supported

PLACEHOLDER = "DatasetConsumptionConfig:"  # what v1 put in a run's arguments; the runner replaces it


class DatasetConsumptionConfig:
    """One dataset as a run's input: its name there, its source and ``mount`` or ``download``."""

    def __init__(self, name: str, dataset: FileDataset, mode: str, path_on_compute: str | None = None) -> None:
        if path_on_compute:
            not_supported(
                "as_mount(path_on_compute=...)", "The run finds the data at run.input_datasets[NAME] instead."
            )
        self.name, self.dataset, self.mode = name, dataset, mode

    @property
    def launchbay_source(self) -> str:
        return self.dataset.launchbay_source

    @property
    def launchbay_mode(self) -> str:
        return self.mode

    def __str__(self) -> str:
        return PLACEHOLDER + self.name

    def __repr__(self) -> str:
        return f"DatasetConsumptionConfig(name={self.name!r}, mode={self.mode!r}, source={self.launchbay_source!r})"


class FileDataset:
    """Files by reference: where they are is read when a run uses them (and checked against their hash)."""

    def __init__(self, source: str, name: str | None = None, version: int | None = None) -> None:
        self.launchbay_source = source
        self.name, self.version = name, version
        self._input_name: str | None = None

    def as_named_input(self, name: str) -> FileDataset:
        named = FileDataset(self.launchbay_source, self.name, self.version)
        named._input_name = name
        return named

    def _input(self) -> str:
        if self._input_name:
            return self._input_name
        if self.name:
            return self.name
        return "input_" + hashlib.sha1(self.launchbay_source.encode()).hexdigest()[:8]

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(self._input(), self, "mount", path_on_compute)

    def as_download(self, path_on_compute: str | None = None, overwrite: bool = False) -> DatasetConsumptionConfig:
        return DatasetConsumptionConfig(self._input(), self, "download", path_on_compute)

    def register(
        self,
        workspace: Any,
        name: str,
        description: str | None = None,
        tags: Any = None,
        create_new_version: bool = False,
    ) -> FileDataset:
        """A version of launchbay dataset ``name`` (the same content again is the same version)."""
        from ...data import datasets

        version, _new = datasets.add(workspace.session().store, name, self.launchbay_source, description=description)
        return FileDataset(f"dataset:{version.name}:{version.version}", version.name, version.version)

    def __str__(self) -> str:  # a dataset given as an argument is mounted under its input name
        return PLACEHOLDER + self._input()

    def __repr__(self) -> str:
        return f"FileDataset(source={self.launchbay_source!r})"


class _FileFactory:
    @staticmethod
    def from_files(
        path: Any, validate: bool = True, partition_format: Any = None, is_file: bool = False
    ) -> FileDataset:
        paths = path if isinstance(path, (list, tuple)) else [path]
        if len(paths) != 1 or not isinstance(paths[0], (str, os.PathLike)):
            raise ConfigError(
                "Dataset.File.from_files(path): launchbay takes one folder, file or http(s) URL "
                "(datastore paths and lists of several are not covered; put the files in one folder)."
            )
        source = os.fspath(paths[0])
        if "://" not in source:
            source = os.path.abspath(source)
            if validate and not os.path.exists(source):
                raise ConfigError(f"Dataset.File.from_files({paths[0]!r}): {source} does not exist.")
        return FileDataset(source)


class TabularDataset(FileDataset):
    """A table by reference (one CSV, TSV or Parquet file): what ``AutoMLConfig(training_data=...)`` takes."""

    def to_pandas_dataframe(self) -> Any:
        from ...automated.trial import read_table

        return read_table(self.launchbay_source)

    def __repr__(self) -> str:
        return f"TabularDataset(source={self.launchbay_source!r})"


class _TabularFactory:
    """``Dataset.Tabular.from_delimited_files(path)`` and ``from_parquet_files(path)``: one local file."""

    def _one(self, what: str, path: Any, validate: bool) -> TabularDataset:
        paths = path if isinstance(path, (list, tuple)) else [path]
        if len(paths) != 1 or not isinstance(paths[0], (str, os.PathLike)):
            raise ConfigError(f"Dataset.Tabular.{what}(path): launchbay takes one file (put the rows in one file).")
        source = os.path.abspath(os.fspath(paths[0]))
        if validate and not os.path.exists(source):
            raise ConfigError(f"Dataset.Tabular.{what}({paths[0]!r}): {source} does not exist.")
        return TabularDataset(source)

    def from_delimited_files(self, path: Any, validate: bool = True, **kwargs: Any) -> TabularDataset:
        return self._one("from_delimited_files", path, validate)

    def from_parquet_files(self, path: Any, validate: bool = True, **kwargs: Any) -> TabularDataset:
        return self._one("from_parquet_files", path, validate)

    def __getattr__(self, name: str) -> Any:
        not_supported(
            f"Dataset.Tabular.{name}",
            "Use Dataset.Tabular.from_delimited_files(path) (one file), or Dataset.File.from_files(path).",
        )


class Dataset:
    """v1's ``Dataset``: ``Dataset.File``, ``Dataset.Tabular`` (one file) and ``Dataset.get_by_name``."""

    File = _FileFactory()
    Tabular = _TabularFactory()

    @staticmethod
    def get_by_name(workspace: Any, name: str, version: str | int = "latest", **kwargs: Any) -> FileDataset:
        from ...data.resolve import find_version

        ref = f"dataset:{name}" + ("" if str(version) == "latest" else f":{version}")
        found = find_version(workspace.session().store, ref)
        return FileDataset(f"dataset:{found.name}:{found.version}", found.name, found.version)


def consumption_inputs(arguments: list[Any]) -> dict[str, Any]:
    """The datasets a run's arguments name, by their input name."""
    found: dict[str, Any] = {}
    for arg in arguments:
        if isinstance(arg, FileDataset):
            arg = arg.as_mount()
        if isinstance(arg, DatasetConsumptionConfig):
            found[arg.name] = arg
    return found


def __getattr__(name: str) -> Any:
    module_getattr("azureml.core.dataset", name)


__all__ = ["Dataset", "DatasetConsumptionConfig", "FileDataset", "TabularDataset"]
