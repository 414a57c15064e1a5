"""``Run.get_context()`` with Azure ML v1's extra methods, for code inside a run.

Standard library plus ``launchbay.Run`` only: this file is also shipped, as
``azureml/core/run.py``, to runs submitted through the compatibility layer, where
``launchbay`` may be the small in-run stub. It wraps launchbay's one run context, so
logging costs what ``launchbay.Run.log`` costs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from launchbay import Run as _LaunchbayRun
from launchbay.runfolder import FAIL_REQUEST

#: the file the runner reads at the end: a v1 ``run.fail()`` makes the run Failed
FAIL_FILE = FAIL_REQUEST


class _Experiment:
    """``run.experiment`` inside a run: its name (the workspace lives on the submitting side)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.workspace = None

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"


class Run:
    """Azure ML v1's in-run ``Run``: ``Run.get_context()``, ``log*``, tags, properties, ``fail``."""

    _context: Run | None = None

    def __init__(self, inner: Any, prefix: str = "") -> None:
        self._inner = inner
        self._prefix = prefix
        self._tags: dict[str, str] = {}
        self._properties: dict[str, str] = {}
        self.id = inner.id if not prefix else f"{inner.id}/{prefix.rstrip('/')}"
        self.experiment = _Experiment(inner.experiment_name)
        if not prefix:
            self.log = inner.log  # type: ignore[method-assign]  # the hot path stays launchbay's: one append per call

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def get_context(cls, allow_offline: bool = True, **kwargs: Any) -> Run:
        """The run this code executes in; outside one, an offline run that prints (v1 behaviour)."""
        if cls._context is None:
            cls._context = cls(_LaunchbayRun.get_context())
        if cls._context._inner.offline and not allow_offline:
            raise RuntimeError(
                "Run.get_context(allow_offline=False) outside a submitted run: submit the script with "
                "experiment.submit(ScriptRunConfig(...)) or `launchbay submit`."
            )
        return cls._context

    # -- logging ------------------------------------------------------------------------------------
    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:  # type: ignore[no-redef]
        """Log one value of a metric (repeated calls build a series)."""
        if isinstance(value, (list, tuple)):
            raise TypeError(
                f"run.log({name!r}, ...) got a list; use run.log_list({name!r}, values) (as in Azure ML v1)."
            )
        self._inner.log(self._prefix + name, value, step=step)

    def log_list(self, name: str, value: list[Any], description: str = "") -> None:
        self._inner.log_list(self._prefix + name, list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._inner.log_row(self._prefix + name, **kwargs)

    def log_table(self, name: str, value: dict[str, list[Any]], description: str = "") -> None:
        self._inner.log_table(self._prefix + name, value)

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> None:
        self._inner.log_image(self._prefix + name, path=path, plot=plot)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        self._inner.log_table(self._prefix + name, value if isinstance(value, dict) else {"matrix": value})

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        self._inner.log_table(self._prefix + name, value if isinstance(value, dict) else {"table": value})

    @property
    def input_datasets(self) -> dict[str, str]:
        """Each named input's path here (v1: ``run.input_datasets["train"]`` of an ``as_mount``/``as_download``)."""
        return dict(getattr(self._inner, "input_datasets", None) or {})

    # -- tags, properties, files ---------------------------------------------------------------------
    def tag(self, key: str, value: Any = None) -> None:
        self._tags[str(key)] = "" if value is None else str(value)
        self._inner.tag(key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, str]:
        """The tags this process set (the submitting side's ``get_tags`` reads the store)."""
        return dict(self._tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Properties are add-only, as in v1: a key set once keeps its first value."""
        for key, value in properties.items():
            if str(key) in self._properties:
                continue
            self._properties[str(key)] = str(value)
            self._record("property", str(key), str(value))

    def get_properties(self) -> dict[str, str]:
        return dict(self._properties)

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        self._inner.upload_file(name, path_or_stream)

    def upload_files(self, names: list[str], paths: list[str], **kwargs: Any) -> None:
        for name, path in zip(names, paths):
            self._inner.upload_file(name, path)

    def upload_folder(self, name: str, path: str, **kwargs: Any) -> None:
        for folder, _dirs, files in os.walk(path):
            for file in files:
                full = os.path.join(folder, file)
                self._inner.upload_file(f"{name}/{os.path.relpath(full, path)}", full)

    def register_model(self, model_name: str, model_path: str | None = None, **kwargs: Any) -> None:
        register = getattr(self._inner, "register_model", None)
        if register is None:
            raise RuntimeError("This launchbay version cannot register models from inside a run.")
        keep = {k: v for k, v in kwargs.items() if k in ("tags", "description")}
        register(model_name, path=model_path, **keep)

    # -- status --------------------------------------------------------------------------------------
    def get_status(self) -> str:
        return "Running"

    def flush(self) -> None:
        self._inner.flush()

    def complete(self, _set_status: bool = True) -> None:
        self._inner.flush()

    def fail(self, error_details: Any = None, error_code: str | None = None, _set_status: bool = True) -> None:
        """Mark the run Failed when its process ends (v1 semantics), whatever its exit code."""
        message = str(error_details) if error_details is not None else "run.fail() was called"
        self._inner.flush()
        journal = os.environ.get("LAUNCHBAY_JOURNAL_DIR")
        if self._inner.offline or not journal:
            print(f"[launchbay offline] fail: {message}")
            return
        with open(os.path.join(journal, FAIL_FILE), "w") as out:
            json.dump({"message": message, "code": error_code}, out)

    def cancel(self) -> None:
        raise RuntimeError(
            "Cancel a run from the submitting side: run.cancel() on the handle, or `launchbay cancel RUN`."
        )

    def child_run(self, name: str | None = None, run_id: str | None = None, outputs: Any = None) -> Run:
        """A child's metrics are kept in this run under ``NAME/metric`` (launchbay has no nested runs in a run)."""
        label = name or run_id or f"child{len(self._tags) + 1}"
        return Run(self._inner, prefix=f"{self._prefix}{label}/")

    def _record(self, kind: str, name: str, payload: Any) -> None:
        record = getattr(self._inner, "_record", None)
        if record is not None:
            record(kind, name, payload)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline={self._inner.offline})"


__all__ = ["Run"]
