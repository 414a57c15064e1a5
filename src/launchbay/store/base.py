"""The store's contract: ``Store``, what every backend of the run history provides.

The house (CLI, API, server, ingest, sweeps, registry, targets) reads and writes runs only through
these named methods, typed on the records in records.py. A backend (sqlite.py's ``RunStore``: an
SQLite index with folder blobs) fills the abstract ones; the rest is written once here, on top of
them, so that every backend keeps the same rules:

- every change to a run goes through ``batch()`` (``write(pk)`` for one run), whose ``RunWriter``
  (batch.py) holds the terminal-status rule;
- a run's folder (``runs/<run_id>/``: ``run.json``, the journal, its files) is the runner's
  protocol on every backend, so creating a run makes its folder first and reading its files and log
  is the same everywhere (files.py);
- ``blobs`` is a ``BlobStore`` (blobs.py) and ``cache_dir`` a local folder for what launchbay keeps
  on this machine only (environments, staged work trees, snapshot indexes, model checkouts).

What only one engine has (SQLite's connection, ``transaction``, checkpointing) is not part of it.
A backend maps its own driver's errors to launchbay errors (errors.py) before they leave it.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LaunchbayError, RunNotFoundError
from ..models import RunSpec, RunStatus
from . import runfile
from .batch import Batch, RunWriter
from .blobs import BlobStore
from .files import RunFiles
from .records import (
    Catalog,
    CatalogReport,
    ChildRow,
    DatasetVersion,
    ModelVersion,
    QueueEntry,
    RunExport,
    RunInput,
    RunRecord,
    Schedule,
    ScheduleFire,
    Series,
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_S = TypeVar("_S", bound="Store")


class Store(RunFiles, ABC):
    """All reads and writes of run history go through here. Close it when done (``close()``, or ``with``)."""

    #: the blob side: snapshot files and manifests, model files
    blobs: BlobStore
    #: where the run folders are (``runs_dir / run_id``): on this machine, whatever the backend
    runs_dir: Path
    #: launchbay's local cache on this machine (environments, stage, snapshot indexes, model checkouts)
    cache_dir: Path
    #: several machines use the store (a team store): a run whose folder is elsewhere is judged (ingested,
    #: found dead) only by the machine that has its folder
    shared: bool = False

    @property
    @abstractmethod
    def uri(self) -> str:
        """What ``open_store`` opens this store from again (another process: a runner, a sweep controller)."""

    @abstractmethod
    def close(self) -> None:
        """Let go of connections; the store opens them again if it is used afterwards."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def index_bytes(self) -> int:
        """What the index takes on this machine's disk (``du``); 0 when it lives elsewhere."""

    @abstractmethod
    def failure(self, exc: BaseException) -> LaunchbayError:
        """The launchbay error for a driver or file-system failure met while using this store."""

    # -- the gc lock: no blob is collected while something is about to refer to it ---------------
    @abstractmethod
    def writing_blobs(self) -> AbstractContextManager[None]:
        """Held (shared) from storing blobs until a row refers to them (a submit, a model registration)."""

    @abstractmethod
    def collecting_blobs(self) -> AbstractContextManager[None]:
        """Held (exclusive) by ``gc`` while it decides and deletes."""

    # -- run ids and folders -------------------------------------------------------------------
    def new_run_id(self, experiment: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", experiment).strip("-")[:24] or "run"
        return f"{slug}_{int(time.time())}_{secrets.token_hex(3)}"

    def run_dir(self, run_id: str) -> Path:
        if not _SAFE_ID.match(run_id):
            raise RunNotFoundError(f"{run_id!r} is not a valid run id.")
        return self.runs_dir / run_id

    # -- reading runs ----------------------------------------------------------------------------
    @abstractmethod
    def resolve_run_id(self, ref: str) -> str:
        """An exact run id, or a unique prefix of one (``RunNotFoundError`` saying what to do otherwise)."""

    @abstractmethod
    def get_run(self, ref: str) -> RunRecord: ...

    @abstractmethod
    def list_runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        text: str | None = None,
        param: tuple[str, Any] | None = None,
        metric_below: tuple[str, float] | None = None,
        metric_above: tuple[str, float] | None = None,
        updated_since: float | None = None,
        parent: str | None = None,
        user: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        details: bool = True,
    ) -> list[RunRecord]:
        """Runs newest first, filtered by the backend (never by reading every run)."""

    @abstractmethod
    def count_runs(self, **filters: Any) -> int:
        """How many runs ``list_runs`` with these filters (no param or metric ones) would list."""

    @abstractmethod
    def statuses(self, run_ids: list[str]) -> dict[str, RunStatus]:
        """The recorded status of each of these runs, in one query (a sweep controller asks often)."""

    @abstractmethod
    def experiments(self) -> list[tuple[str, int]]:
        """Each experiment's name and run count, the one with the newest run first."""

    @abstractmethod
    def users(self) -> list[tuple[str, int]]:
        """Who made runs (``created_by``) and how many each, the most runs first (a team store's filter)."""

    @abstractmethod
    def children(self, parent_run_id: str, *, unfinished: bool = False, newest_first: bool = False) -> list[str]:
        """The ids of a run's child runs (a sweep's trials): oldest first, or newest first."""

    @abstractmethod
    def child_rows(self, parent_run_id: str) -> list[ChildRow]:
        """A sweep's children for its table, oldest first: status, params and tags only."""

    @abstractmethod
    def journal_position(self, pk: int) -> tuple[dict[str, int], float | None, RunStatus]:
        """How far ingest has read the run's journal files, its last heartbeat and its status."""

    @abstractmethod
    def read_records(self, run: RunRecord, kind: str | None = None) -> list[tuple[str, str, Any, float]]:
        """The run's records (kind, name, decoded payload, time) in the order they were kept."""

    @abstractmethod
    def has_records(self, run_id: str, kind: str) -> bool: ...

    @abstractmethod
    def last_record_id(self, run: RunRecord) -> int:
        """The id of the run's newest record (0 when none): changes whenever the run logs one."""

    # -- writing runs: one primitive, the rest built on it ------------------------------------------
    @abstractmethod
    def batch(self) -> AbstractContextManager[Batch]:
        """The batch write primitive: one transaction, committed (every run's row updated once, by
        ``Batch.flush``) when the block ends, nothing written when it raises."""

    @contextmanager
    def write(self, pk: int) -> Iterator[RunWriter]:
        """One run's batch: what every change to a run (ingest, tags, target state, its end) goes through."""
        with self.batch() as batch:
            yield batch.run(pk)

    def update_run(self, pk: int, **fields: Any) -> bool:
        """Set columns of a run. A ``status`` goes through the terminal guard: on a run that has ended,
        nothing changes (returns False)."""
        with self.write(pk) as run:
            status = fields.pop("status", None)
            if status is None:
                run.set(**fields)
                return True
            return run.transition(RunStatus(status), **fields)

    def end_run(self, pk: int, status: RunStatus, error: dict[str, Any] | None = None) -> bool:
        """Make a run terminal, unless it already is (a terminal status is never overwritten).

        Returns whether this call ended it."""
        assert status.is_terminal(), status
        try:
            with self.write(pk) as run:
                return run.transition(status, ended=time.time(), error=error)
        except RunNotFoundError:
            return False  # removed meanwhile: nothing to end

    def merge_target_state(self, pk: int, **fields: Any) -> dict[str, Any]:
        """Add keys to a run's ``target_state`` (container id, job id, ...) without losing others.

        ``run.json`` gets them too (under the same write lock), so a repaired index still
        knows which container or job to sync and cancel."""
        with self.write(pk) as run:
            state = {**run.target_state, **fields}
            run.set(target_state=state)
            runfile.update(self.runs_dir / run.run_id, target_state=state)
        return state

    def set_tag(self, pk: int, key: str, value: str) -> None:
        with self.write(pk) as run:
            run.set_tag(key, value)

    def reopen_run(self, pk: int, **fields: Any) -> bool:
        """Queue a Failed run again (see ``RunWriter.reopen``); False when it did not fail."""
        with self.write(pk) as run:
            return run.reopen(**fields)

    # -- creating and removing runs ------------------------------------------------------------------
    def create_run(
        self,
        spec: RunSpec,
        *,
        target_type: str,
        snapshot_id: str | None,
        properties: dict[str, Any],
        run_id: str | None = None,
        target_state: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> RunRecord:
        """Make the run's folder (with ``run.json``, what ``store repair`` rebuilds it from), then record it Queued.

        A generated id claims its folder with an exclusive mkdir (6 hex digits can repeat within
        a second), and is drawn again if the index has it already. ``created_by``: who makes it
        (default: LAUNCHBAY_USER, else the login name; a session passes ``[user] name``)."""
        from ..config import user_name

        given = run_id
        created_by = created_by or user_name()
        now = time.time()
        while True:
            run_id = given or self.new_run_id(spec.experiment)
            run_dir = self.run_dir(run_id)
            try:
                self.runs_dir.mkdir(parents=True, exist_ok=True)
                run_dir.mkdir(exist_ok=bool(given))
            except FileExistsError:
                continue  # another run drew the same id: draw again
            except OSError as exc:
                raise self.failure(exc) from exc
            try:
                state = target_state or {}
                described = runfile.describe(spec, run_id, target_type, snapshot_id, properties, state, now, created_by)
                runfile.write(run_dir, described)
                if self._insert_run(described):
                    return self.get_run(run_id)
            except BaseException as exc:
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written (e.g. the disk is full)
                if isinstance(exc, OSError):
                    raise self.failure(exc) from exc
                raise
            shutil.rmtree(run_dir, ignore_errors=True)  # the index had that id (its folder was gone)

    @abstractmethod
    def _insert_run(self, described: dict[str, Any]) -> bool:
        """Insert the rows of a run that ``run.json`` describes, Queued; False when that run id is taken."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove a run that never started (used to undo a failed launch), rows and folder."""

    @abstractmethod
    def remove_finished_run(self, pk: int) -> bool:
        """Delete a finished run's rows and folder; False if it was gone or is not finished."""

    # -- an ended run's journal ------------------------------------------------------------------------
    @abstractmethod
    def seal(self, record: RunRecord) -> bool:
        """Keep an ended run's points once, packed (its journal wholly ingested); whether anything changed."""

    @abstractmethod
    def adopt_rebuilt(self, record: RunRecord) -> bool:
        """A rebuilt index (``store repair``) takes a sealed run's points from its run folder."""

    # -- snapshots ---------------------------------------------------------------------------------------
    def snapshot_manifest(self, snapshot_id: str) -> dict[str, Any]:
        import json

        return json.loads(self.blobs.read_bytes(snapshot_id))

    @abstractmethod
    def add_snapshot(self, snapshot_id: str, files: int, size: int, source_dir: str) -> bool:
        """Record a snapshot; False when the same content was recorded before."""

    def check_writable(self) -> None:
        """Raise the store's one-line error when this client may only read it (a read-only team store role)."""

    def file_manifests(self) -> list[str]:
        """Manifests of run files kept in the blob store (a team store's ended runs): ``gc`` keeps them."""
        return []

    @abstractmethod
    def used_snapshot_ids(self) -> list[str]:
        """Every snapshot a run in the index refers to."""

    @abstractmethod
    def unused_snapshot_ids(self) -> list[str]:
        """Snapshots recorded in the index that no run refers to any more."""

    @abstractmethod
    def forget_unused_snapshots(self) -> None:
        """Drop the records of snapshots no run refers to (after their blobs were collected)."""

    # -- metric series -----------------------------------------------------------------------------------
    @abstractmethod
    def metric_summaries(self, run: RunRecord) -> list[dict[str, Any]]:
        """Each series' name, count, last value and step, min, max, and whether it is integer or rounded."""

    @abstractmethod
    def last_values(self, runs: Sequence[RunRecord | ChildRow], name: str) -> dict[int, float | None]:
        """The last value of metric ``name`` of each run that has it, by run pk, in one query."""

    @abstractmethod
    def series_id(self, run: RunRecord, name: str) -> int | None: ...

    @abstractmethod
    def series_count(self, run_id: str, name: str) -> int:
        """How many points a run's series holds (0 when it has none)."""

    @abstractmethod
    def point_count(self) -> int:
        """Every metric point in the store."""

    @abstractmethod
    def read_series(self, run: RunRecord, name: str, after_step: int | None = None) -> Series:
        """A whole series (or the points after ``after_step``); a damaged one is ``StoreDamagedError``."""

    @abstractmethod
    def verify_series(self, run: RunRecord, name: str) -> None:
        """Raise ``StoreDamagedError`` (naming the steps) when a part of the series fails its checksum."""

    # -- the model registry's rows -------------------------------------------------------------------------
    @abstractmethod
    def add_model_version(self, record: RunRecord, version: ModelVersion, source: str | None) -> int | None:
        """Record ``version`` of a model as the model's next number; that number.

        ``source`` (a journal record's id) registers once: None when another process did it first."""

    @abstractmethod
    def model_version(self, name: str, version: int | None = None) -> ModelVersion | None:
        """One version of a model (the latest when ``version`` is None), or None."""

    @abstractmethod
    def model_versions(self, *, name: str | None = None, run_id: str | None = None) -> list[ModelVersion]:
        """Versions by model name and number: all, one model's, or those registered from one run."""

    @abstractmethod
    def model_manifests(self) -> list[str]:
        """The manifest blob of every version (what ``gc`` must keep)."""

    @abstractmethod
    def delete_model_version(self, name: str, version: int) -> None: ...

    @abstractmethod
    def runs_with_record(self, kind: str, name: str) -> list[str]:
        """Runs still in the store that logged a record of ``kind`` named ``name`` (e.g. loaded a model)."""

    @abstractmethod
    def pending_model_records(
        self, run: RunRecord, kind: str, error_kind: str
    ) -> list[tuple[int, str, str, float | None]]:
        """The run's ``kind`` records neither registered yet nor answered by an ``error_kind`` record."""

    # -- data: named datasets, their versions, and each run's inputs (launchbay/data/) -------------------
    @abstractmethod
    def add_dataset_version(self, version: DatasetVersion) -> tuple[int, bool]:
        """Record ``version`` (its ``version`` field is ignored) as its dataset's next number, or find the
        version of that dataset with the same hash: (its number, whether it is new)."""

    @abstractmethod
    def dataset_version(self, name: str, version: int | None = None) -> DatasetVersion | None:
        """One version of a dataset (the latest when ``version`` is None), or None."""

    @abstractmethod
    def dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Versions by dataset name and number: all, or one dataset's."""

    @abstractmethod
    def delete_dataset_version(self, name: str, version: int) -> None:
        """Forget a version (the dataset too with its last one); the caller checks lineage first."""

    @abstractmethod
    def add_run_inputs(self, run_id: str, inputs: list[RunInput]) -> None:
        """Record a run's inputs (and outputs), all or none."""

    @abstractmethod
    def run_inputs(self, run_id: str, direction: str | None = "input") -> list[RunInput]:
        """A run's inputs by name ("output": the versions it made; None: both)."""

    @abstractmethod
    def set_input_bytes_sent(self, run_id: str, name: str, bytes_sent: int) -> None:
        """How many data bytes the run's target moved for input ``name``."""

    @abstractmethod
    def runs_with_data(self, version_hash: str) -> list[str]:
        """The runs still in the store that read or made the data version ``version_hash``, oldest first."""

    @abstractmethod
    def data_manifests(self) -> list[str]:
        """The manifest blob of every dataset version and run input (what ``gc`` must keep)."""

    # -- run queues (queue_rows.py): a slot of a target's or experiment's max_concurrent_runs -----------------
    @abstractmethod
    def enqueue(
        self,
        pk: int,
        *,
        target: str,
        experiment: str,
        target_limit: int | None,
        experiment_limit: int | None,
        priority: int = 0,
        claimer: str,
    ) -> bool:
        """Put a recorded run in its queue; True when it took a free slot at once (``claimer`` starts it)."""

    @abstractmethod
    def claim_queued(self, claimer: str) -> list[str]:
        """Claim every free slot for the runs next in line; the run ids ``claimer`` must now start."""

    @abstractmethod
    def queue_started(self, pk: int) -> None:
        """The claimed run is started: its slot is held until it ends."""

    @abstractmethod
    def dequeue(self, pk: int) -> bool:
        """Take a waiting run out of its queue; False when it is not waiting."""

    @abstractmethod
    def release_claims(self, claimers: list[str]) -> int:
        """Put the runs these dead claimers claimed (but never started) back in line."""

    @abstractmethod
    def queue_claimers(self) -> list[str]:
        """Who holds claims not yet started."""

    @abstractmethod
    def move_to_top(self, pk: int) -> bool:
        """A waiting run goes first in its queue; False when it is not waiting."""

    @abstractmethod
    def queue_entries(self, target: str | None = None, *, waiting_only: bool = True) -> list[QueueEntry]:
        """The queue in start order, positions counted per queue (1 = next)."""

    @abstractmethod
    def queue_positions(self, run_ids: list[str] | None = None) -> dict[str, QueueEntry]:
        """Each waiting run's entry, by run id."""

    @abstractmethod
    def queue_state(self, pk: int) -> str | None:
        """A run's place in a queue: 'waiting', 'claimed', 'started', or None (in none); one indexed read."""

    @abstractmethod
    def queue_waiting(self) -> int:
        """How many runs wait for a slot (or are being started)."""

    # -- schedules (schedule_rows.py) ----------------------------------------------------------------------
    @abstractmethod
    def add_schedule(self, schedule: Schedule) -> bool:
        """Record a new schedule; False (nothing written) when the name is taken."""

    @abstractmethod
    def schedules(self) -> list[Schedule]: ...

    @abstractmethod
    def schedule(self, name: str) -> Schedule | None: ...

    @abstractmethod
    def update_schedule(self, name: str, *, paused: bool | None = None, next_fire: float | None = None) -> bool:
        """Pause, resume or move a schedule's next due time; False when there is none of that name."""

    @abstractmethod
    def remove_schedule(self, name: str) -> bool: ...

    @abstractmethod
    def claim_fire(
        self, name: str, due: float, next_fire: float, outcome: str, message: str | None = None
    ) -> int | None:
        """Take one due time of a schedule (compare and set); the fire's id, or None when it was taken."""

    @abstractmethod
    def claim_change(self, name: str, seen: int, version: int, message: str | None = None) -> int | None:
        """Take an --on-change schedule's fire for a new dataset version (compare and set on ``seen``)."""

    @abstractmethod
    def set_fire_run(
        self, fire_id: int, run_id: str | None = None, outcome: str | None = None, message: str | None = None
    ) -> None:
        """What a fire made: its run, or why it made none."""

    @abstractmethod
    def schedule_fires(self, name: str, limit: int = 10) -> list[ScheduleFire]:
        """A schedule's last fires, newest first."""

    # -- copying to another store (``launchbay store copy``, store/copy.py) ------------------------------
    @abstractmethod
    def all_run_ids(self) -> list[str]:
        """Every run id in the store, oldest first (one query)."""

    @abstractmethod
    def export_runs(self, run_ids: Sequence[str]) -> list[RunExport]:
        """These runs' rows, free of this index's keys, in the order asked (unknown ids left out); points
        as their packed chunks, checked. A damaged chunk is ``StoreDamagedError`` naming the run and metric."""

    @abstractmethod
    def import_runs(self, runs: Sequence[RunExport]) -> list[str]:
        """Insert runs exported from another store, all in one transaction; the ids inserted (a run id this
        store has already is skipped, never changed). Their run folders are the caller's."""

    @abstractmethod
    def export_catalog(self) -> Catalog:
        """Every model version, dataset version and schedule (with its fires)."""

    @abstractmethod
    def import_catalog(self, catalog: Catalog) -> CatalogReport:
        """Add what this store lacks of another's catalog, numbers kept (a model's ``name:3`` stays 3);
        what it has already is counted, a different thing under the same name and number is a conflict
        left as it is. A schedule arrives paused (the old store's supervisor may still fire it)."""
