"""RunHandle: what ``submit`` returns and ``get_run`` re-attaches to, from any process."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import runfolder as rf
from .errors import StoreUnavailableError
from .logged import Logged, logged_version, read_logged
from .models import RunStatus
from .store import RunRecord, Series

if TYPE_CHECKING:
    from .registry import ModelVersion
    from .session import Session


class RunHandle:
    """A run by id. Cheap to create; every property reads the store (caught up first).

    The widgets and the CLI read a run only through these methods. The streaming ones
    (``read_log``, ``series_since``, ``metric_summaries``, ...) take the ``record`` a poll already
    caught up, so one poll reads the journal once. In a notebook, ``%load_ext launchbay`` (or
    importing launchbay into a running kernel) makes a handle display as its live widget.
    """

    def __init__(self, run_id: str, session: Session) -> None:
        self.run_id = run_id
        self._session = session

    @property
    def session(self) -> Session:
        """The session (store and project configuration) this handle reads and acts through."""
        return self._session

    # -- (de)serialise so any process can re-attach -------------------------------------------
    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "store": self._session.store.uri}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> RunHandle:
        from .session import open_session

        return cls(data["run_id"], open_session(data["store"]))

    def __repr__(self) -> str:
        return f"RunHandle(run_id={self.run_id!r}, status={self.status!r})"

    # -- notebook variables ----------------------------------------------------------------------
    def pull(self, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
        """Bring the ``--pull`` variables of a completed run into ``namespace`` (the notebook's by default)."""
        from .errors import LaunchbayError

        record = self.record()
        if record.status is not RunStatus.COMPLETED:
            raise LaunchbayError(
                f"Run {self.run_id} is {record.status.value}; variables can be pulled once it has Completed."
            )
        variables, missing, errors = _read_pulled(self.files_dir(record=record))
        if errors:
            raise LaunchbayError(f"The run could not pickle {', '.join(f'{k} ({v})' for k, v in errors.items())}.")
        if missing and not variables:
            raise LaunchbayError(f"The run never defined {', '.join(missing)}; nothing to pull.")
        if namespace is None:
            from IPython import get_ipython

            shell = get_ipython()
            namespace = shell.user_ns if shell is not None else {}
        namespace.update(variables)
        return variables

    # -- state ------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.run_id

    def record(self) -> RunRecord:
        return self._session.refresh(self.run_id)

    @property
    def status(self) -> str:
        return self.record().status.value

    def get_status(self) -> str:
        return self.status

    def get_details(self) -> dict[str, Any]:
        record = self.record()
        details = record.to_dict()
        data = self._session.store.run_inputs(record.run_id, None)  # its lineage: what it read, what it made
        details["inputs"] = [i.to_dict() for i in data if i.direction == "input"]
        details["outputs"] = [i.to_dict() for i in data if i.direction == "output"]
        details.update(self._session.target_for(record).describe(record))
        entry = self._session.store.queue_positions([record.run_id]).get(record.run_id)
        details["queue_position"] = None if entry is None else entry.position  # 1 = next, while it waits
        details["queue"] = None if entry is None else entry.pool
        return details

    @property
    def tags(self) -> dict[str, str]:
        return self.record().tags

    # -- waiting and logs ---------------------------------------------------------------------------
    def wait(
        self, show_output: bool = False, timeout: float | None = None, stream: TextIO | None = None, poll_s: float = 0.2
    ) -> str:
        """Block until the run ends; with ``show_output`` print its log as it grows. Returns the status."""
        out = stream or sys.stdout
        offset = 0
        deadline = None if timeout is None else time.time() + timeout
        while True:
            try:
                record = self.record()
            except StoreUnavailableError:  # a team store's server is away (a restart): the run goes on
                if deadline is not None and time.time() > deadline:
                    raise
                time.sleep(max(poll_s, 1.0))
                continue
            if show_output:
                while True:
                    data, offset = self.read_log(offset, record=record)
                    if not data:
                        break
                    out.write(data.decode("utf-8", "replace"))
                    out.flush()
            if record.status.is_terminal():
                if show_output and record.status is not RunStatus.COMPLETED and record.error:
                    out.write(f"\nRun {record.run_id} {record.status.value}: {record.error.get('message')}\n")
                return record.status.value
            if deadline is not None and time.time() > deadline:
                return record.status.value
            time.sleep(poll_s)

    def wait_for_completion(
        self, show_output: bool = False, wait_post_processing: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        """Azure ML v1's name: wait, then return the details (raise if the run did not complete)."""
        from .errors import LaunchbayError

        status = self.wait(show_output=show_output)
        details = self.get_details()
        if raise_on_error and status != RunStatus.COMPLETED.value:
            message = (details.get("error") or {}).get("message", "")
            raise LaunchbayError(f"Run {self.run_id} ended {status}: {message}")
        return details

    def get_log(self, offset: int = 0) -> str:
        data, _ = self.read_log(offset, max_bytes=1 << 30)
        return data.decode("utf-8", "replace")

    # -- streaming: a piece at a time, from where the reader left off ---------------------------
    def read_log(
        self, offset: int = 0, max_bytes: int = 1 << 20, *, record: RunRecord | None = None
    ) -> tuple[bytes, int]:
        """The log from byte ``offset`` (at most ``max_bytes``) and the offset to read from next."""
        return self._session.store.read_log(record or self.record(), offset, max_bytes=max_bytes)

    def metric_summaries(self, *, record: RunRecord | None = None) -> list[dict[str, Any]]:
        """One dict per scalar metric: name, count, last, last_step, min, max."""
        return self._session.store.metric_summaries(record or self.record())

    def series_since(self, name: str, after_step: int | None = None, *, record: RunRecord | None = None) -> Series:
        """A scalar metric's points after ``after_step`` (all of them for None): what a live plot appends."""
        return self._session.store.read_series(record or self.record(), name, after_step=after_step)

    def logged_version(self, *, record: RunRecord | None = None) -> int:
        """Grows whenever the run logs an image, table, row or list: redraw those when it changed."""
        return logged_version(self._session.store, record or self.record())

    def files_dir(self, *, record: RunRecord | None = None) -> Path:
        """The folder holding the run's files as brought back so far (``outputs/``, ``logs/``, ...)."""
        return self._session.store.files_dir(record or self.record())

    def file_path(self, name: str, *, record: RunRecord | None = None) -> Path:
        """Where one of the run's files (e.g. ``outputs/model.pt``) is on this machine."""
        return self._session.store.file_path(record or self.record(), name)

    def cancel(self) -> str:
        """Stop the run and its whole process tree; returns the final status."""
        return self._session.cancel(self.run_id).status.value

    # -- metrics --------------------------------------------------------------------------------
    def get_metrics(self, name: str | None = None) -> dict[str, Any]:
        """Azure ML v1 shape: ``{name: value}`` for one point, ``{name: [values]}`` for more,
        plus lists, rows (``{col: [..]}``) and tables logged with the other ``log_*`` calls."""
        record = self.record()
        store = self._session.store
        out: dict[str, Any] = {}
        for summary in store.metric_summaries(record):
            if name is not None and summary["name"] != name:
                continue
            values = store.read_series(record, summary["name"]).values.tolist()
            out[summary["name"]] = values[0] if len(values) == 1 else values
        for entry in read_logged(store, record, None if name is None else [name]):
            if entry.kind == "list":
                out[entry.name] = entry.values
            elif entry.kind == "image":
                out[entry.name] = entry.images[-1]["file"]  # the latest; all are in get_logged()
            else:
                out[entry.name] = entry.columns
        return out

    def get_logged(self, names: list[str] | None = None, *, record: RunRecord | None = None) -> list[Logged]:
        """Images (every step), tables, rows and lists the run logged, one entry per name."""
        return read_logged(self._session.store, record or self.record(), names)

    def get_metric_series(self, name: str) -> Series:
        """A scalar metric's steps, values and timestamps as arrays (fast for millions of points)."""
        return self._session.store.read_series(self.record(), name)

    # -- files ------------------------------------------------------------------------------------
    def get_file_names(self, *, record: RunRecord | None = None) -> list[str]:
        return self._session.store.file_names(record or self.record())

    def download_file(self, name: str, output_file_path: str | Path | None = None) -> Path:
        """Copy one of the run's files (e.g. ``outputs/model.pt``) to ``output_file_path``."""
        source = self.file_path(name)
        dest = Path(output_file_path or Path(name).name)
        if dest.is_dir():
            dest = dest / Path(name).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def download_files(self, prefix: str = rf.OUTPUTS, output_directory: str | Path = ".") -> list[Path]:
        out = []
        for name in self.get_file_names():
            if name.startswith(prefix):
                out.append(self.download_file(name, Path(output_directory) / name))
        return out

    # -- models and re-runs ---------------------------------------------------------------------
    def register_model(
        self, name: str, path: str, *, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> Model:
        """Register the run's file or folder ``path`` (e.g. ``outputs/model.pt``) as the next version of ``name``."""
        return self._session.register_model(self.run_id, name, path, tags=tags, description=description)

    def rerun(self, target: str | None = None, arguments: list[str] | tuple[str, ...] | None = None) -> RunHandle:
        """Submit this run's exact snapshot again, with its environment and arguments unless overridden."""
        return self._session.rerun(self.run_id, target=target, arguments=None if arguments is None else list(arguments))

    def resume(self, target: str | None = None) -> RunHandle:
        """A new run that goes on from this one's ``outputs/`` (given to it as the input ``checkpoint``:
        ``$LAUNCHBAY_INPUT_CHECKPOINT``), with the same snapshot, environment and arguments."""
        return self._session.resume(self.run_id, target=target)


class Model:
    """One version of a registered model. ``.path`` is a read-only local copy; ``.download(dir)`` a copy of yours.

    It lives beside ``RunHandle`` because it is the same kind of thing: a handle on what the store keeps,
    reached through a session (a model's run is ``session``'s run)."""

    def __init__(self, version: ModelVersion, session: Session) -> None:
        self._version = version
        self._session = session
        self.name, self.version = version.name, version.version
        self.run_id, self.tags, self.metrics = version.run_id, version.tags, version.metrics
        self.description = version.description

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, run_id={self.run_id!r})"

    @classmethod
    def register(
        cls,
        run: RunHandle | str,
        name: str,
        path: str,
        *,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Model:
        """Register ``path`` of a finished run (a RunHandle or a run id) as the next version of ``name``."""
        from .session import open_session

        session = open_session() if isinstance(run, str) else run.session
        run_id = run if isinstance(run, str) else run.run_id
        return session.register_model(run_id, name, path, tags=tags, description=description)

    @property
    def session(self) -> Session:
        return self._session

    @property
    def details(self) -> dict[str, Any]:
        return self._version.to_dict()

    @property
    def path(self) -> Path:
        """The model file (or folder) in the store's cache, written once; do not modify it."""
        from .registry import ModelRegistry

        self._note_use()
        return ModelRegistry(self._session.store).local_path(self._version)

    def download(self, target_dir: str | os.PathLike[str] = ".") -> Path:
        """Write the model's file (or folder) into ``target_dir``; returns its path there."""
        from .registry import ModelRegistry

        self._note_use()
        return ModelRegistry(self._session.store).download(self._version, Path(target_dir))

    def _note_use(self) -> None:
        """Inside a run, record that this run loaded this version (``models delete`` then asks --force)."""
        if not os.environ.get("LAUNCHBAY_RUN_ID"):
            return
        from .registry import MODEL_USE
        from .tracking.inrun import Run

        run = Run.get_context()
        if not run.offline:
            run._record(MODEL_USE, self._version.ref, {"name": self.name, "version": self.version})


def _read_pulled(files_dir: Path) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(variables, missing names, errors) the run wrote for ``--pull`` (see cellrunner)."""
    from .cellrunner import PULL_FILE

    path = files_dir / PULL_FILE
    if not path.is_file():
        return {}, [], {}
    with open(path, "rb") as fh:
        data = pickle.load(fh)
    variables = {name: pickle.loads(blob) for name, blob in data["variables"].items()}
    return variables, list(data.get("missing", [])), dict(data.get("errors", {}))
