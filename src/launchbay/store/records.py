"""What the store hands out, whatever its backend: ``RunRecord`` (a run, and its JSON form for
``show --json``), ``ChildRow``, ``Series`` (one metric as NumPy arrays), ``ModelVersion``,
``DatasetVersion``, ``RunInput`` and ``QueueEntry``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..journal_problems import not_written, refused_count, status_detail
from ..models import RunStatus, iso


@dataclass
class RunRecord:
    pk: int
    run_id: str
    experiment: str
    name: str | None
    status: RunStatus
    target: str
    target_type: str | None
    script: str | None
    arguments: list[str]
    snapshot_id: str | None
    environment: str | None
    created: float
    started: float | None
    ended: float | None
    updated: float
    exit_code: int | None
    error: dict[str, Any] | None
    heartbeat: float | None
    properties: dict[str, Any]
    spec: dict[str, Any]
    target_state: dict[str, Any]
    parent_run_id: str | None
    run_dir: Path
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None
    primary_metric: dict[str, Any] | None = None
    #: who made the run (``[user] name``, else the login name); None for runs made before launchbay kept it
    created_by: str | None = None

    @property
    def status_detail(self) -> str | None:
        """What the status line says after the status: "5,000 points not written: disk full", or None."""
        return status_detail(self.properties)

    @property
    def duration_s(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "status": self.status.value,
            "status_detail": self.status_detail,  # what could not be written (a full disk), or None
            "not_written": not_written(self.properties),  # {points, output_lines, reason}, or None
            "points_refused": refused_count(self.properties),  # logged values that were no number
            "experiment": self.experiment,
            "created_by": self.created_by,
            "target": self.target,
            "target_type": self.target_type,
            "script": self.script,
            "arguments": self.arguments,
            "command": bool((self.spec or {}).get("command")),  # script + arguments are a command, run as it is
            "environment": self.environment,
            "exit_code": self.exit_code,
            "error": self.error,
            "created": iso(self.created),
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "tags": self.tags,
            "params": self.params,
            "properties": self.properties,
            "snapshot": self.snapshot or {"id": self.snapshot_id, "files": None, "bytes": None},
            "primary_metric": self.primary_metric,
            "parent_run_id": self.parent_run_id,
            "rerun_of": self.properties.get("launchbay.rerun_of"),
            "distributed": (self.spec or {}).get("distributed"),
            "target_state": self.target_state,
        }


def loads(text: str | None, default: Any) -> Any:
    return default if not text else json.loads(text)


@dataclass
class ChildRow:
    """What a sweep's table shows of one child, read without building its whole record."""

    pk: int
    run_id: str
    status: RunStatus
    params: dict[str, Any]  # the values the trial was given, as the sampler gave them
    tags: dict[str, str]


class Series:
    """One scalar metric: parallel NumPy arrays of steps, values and timestamps.

    ``integer``: the values are int64 (every value logged was an int); ``rounded``: some value
    is the nearest float64 to what was logged, not that value itself."""

    def __init__(
        self, name: str, steps: Any, values: Any, timestamps: Any, integer: bool = False, rounded: bool = False
    ) -> None:
        self.name, self.steps, self.values, self.timestamps = name, steps, values, timestamps
        self.integer, self.rounded = integer, rounded

    def __len__(self) -> int:
        return len(self.values)

    def to_points(self) -> list[dict[str, Any]]:
        return [
            {"step": s, "value": v, "ts": t}
            for s, v, t in zip(self.steps.tolist(), self.values.tolist(), self.timestamps.tolist())
        ]


@dataclass
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    experiment: str | None
    path: str
    kind: str  # "file" or "folder"
    manifest: str
    files: int
    bytes: int
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    environment_hash: str | None = None
    snapshot_id: str | None = None
    created: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "path": self.path,
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
            "tags": self.tags,
            "description": self.description,
            "metrics": self.metrics,
            "environment_hash": self.environment_hash,
            "snapshot_id": self.snapshot_id,
            "manifest": self.manifest,
            "created": iso(self.created),
        }


@dataclass
class DatasetVersion:
    """One version of a named dataset: ``hash`` is its manifest's SHA-256 (the manifest's blob)."""

    name: str
    version: int
    hash: str
    kind: str  # "file" or "folder"
    source: str  # where it came from, credentials masked
    location: str | None  # where its files are on this machine (a folder, a file, a download cache)
    files: int
    bytes: int
    description: str | None = None
    run_id: str | None = None  # the run whose output it is (``--output``), else None
    created: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "hash": self.hash,
            "kind": self.kind,
            "source": self.source,
            "location": self.location,
            "files": self.files,
            "bytes": self.bytes,
            "description": self.description,
            "run_id": self.run_id,
            "created": iso(self.created),
        }


@dataclass
class RunInput:
    """One data input of a run (``direction`` "input"), or a dataset version it made ("output")."""

    name: str
    source: str  # as the user gave it, credentials masked
    hash: str  # the version: its manifest's SHA-256
    kind: str
    mode: str  # "mount" or "download" ("output" for an output)
    files: int
    bytes: int
    bytes_sent: int = 0  # data bytes this run moved to its target
    location: str | None = None
    dataset: str | None = None
    dataset_version: int | None = None
    direction: str = "input"

    def to_dict(self) -> dict[str, Any]:
        """What ``show --json`` lists under ``inputs`` (and ``outputs``)."""
        return {
            "name": self.name,
            "source": self.source,
            "version": self.hash,
            "files": self.files,
            "bytes": self.bytes,
            "bytes_sent": self.bytes_sent,
            "mode": self.mode,
            "kind": self.kind,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
        }


@dataclass(frozen=True)
class QueueEntry:
    """One run in a queue: its place (``position``, 1 = next; 0 once it holds a slot) and its limits."""

    run_id: str
    target: str
    experiment: str
    target_limit: int | None
    experiment_limit: int | None
    priority: int
    seq: int
    submitted: float
    state: str
    position: int = 0

    @property
    def pool(self) -> str:
        """What the run waits for: its target when the target has a limit, else its experiment."""
        return self.target if self.target_limit is not None else f"experiment {self.experiment}"


@dataclass(frozen=True)
class Schedule:
    """A named launchbay command line run by rule: ``every 15m``, ``cron 0 3 * * *`` or ``on-change
    dataset:NAME`` (scheduling.py)."""

    name: str
    rule: str
    command: list[str]
    cwd: str
    paused: bool = False
    catch_up: bool = True
    next_fire: float | None = None
    created: float = 0.0
    #: ``on-change dataset:NAME``: the version it last fired for (0: none yet)
    seen: int | None = None


@dataclass(frozen=True)
class ScheduleFire:
    """One due time of a schedule: ``outcome`` is fired, caught-up (missed while nothing ran, run once
    late), skipped (missed, with --no-catch-up) or failed (the command did not start a run)."""

    id: int
    name: str
    due: float
    fired: float
    outcome: str
    run_id: str | None
    message: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "due": iso(self.due),
            "fired": iso(self.fired),
            "outcome": self.outcome,
            "run_id": self.run_id,
            "message": self.message,
        }


@dataclass
class RunExport:
    """One run's rows as plain values, free of either index's keys (``Store.export_runs``), so another
    store inserts them as they are (``Store.import_runs``): ``launchbay store copy``.

    ``row``: the runs table's columns (``experiment`` by name); ``series``: each series' columns with
    ``chunks``, its packed chunks in order (a sealed chunk read out of its run folder); ``records`` in the
    order they were kept (their ids in the source first).
    """

    run_id: str
    row: dict[str, Any]
    tags: list[tuple[str, Any]] = field(default_factory=list)
    params: list[tuple[str, Any]] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    records: list[tuple[int, str, str, Any, Any]] = field(default_factory=list)
    offsets: list[tuple[str, int]] = field(default_factory=list)
    inputs: list[RunInput] = field(default_factory=list)

    @property
    def status(self) -> RunStatus:
        return RunStatus(self.row["status"])


@dataclass
class Catalog:
    """What a store keeps beside its runs (``Store.export_catalog``): every model version, dataset version
    and schedule (with its fires). A model version comes with its ``source`` and, when that names a
    journal record of its run, the record's place among the run's records (its id differs in another store)."""

    models: list[tuple[ModelVersion, str | None, int | None]] = field(default_factory=list)
    datasets: list[DatasetVersion] = field(default_factory=list)
    schedules: list[tuple[Schedule, list[ScheduleFire]]] = field(default_factory=list)


@dataclass
class CatalogReport:
    """What ``Store.import_catalog`` added, and what it left because this store has something else there."""

    added: int = 0
    present: int = 0
    conflicts: list[str] = field(default_factory=list)
