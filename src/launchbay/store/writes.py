"""Writing runs: ``RunStore.batch`` is the one batch write primitive, ``RunWriter.transition`` the one
status change.

Every change to a run (ingest's journal pieces, a tag, target state, the failure check's end,
a cancel, a model registration's record) is a batch: one write transaction (``RunStore.write``
for one run, ``RunStore.batch`` for many), in which the named operations of ``RunWriter`` run
and each run's row is updated once at the end.
A status only changes through ``RunWriter.transition``, which never leaves a terminal status
(Completed, Failed, Canceled): a run canceled by the user stays Canceled whatever its runner
writes afterwards.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import RunNotFoundError
from ..models import RunSpec, RunStatus
from . import runfile
from .guard import store_error
from .runs import RunQueries
from .series import append_series, mark_rounded

_ROW_COLUMNS = "run_id, status, heartbeat, target_state, properties"


class RunWriter:
    """The writes of one transaction to one run (get one from ``RunStore.write`` or ``Batch.run``)."""

    def __init__(self, db: sqlite3.Connection, pk: int, runs_dir: Path | None = None) -> None:
        self._db, self.pk = db, pk
        row = db.execute(f"SELECT {_ROW_COLUMNS} FROM runs WHERE pk=?", (pk,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with key {pk} in the store (was it removed?).")
        self.run_id: str = row[0]
        self._journal = None if runs_dir is None else runs_dir / self.run_id / rf.JOURNAL
        self.status = RunStatus(row[1])  # as of this transaction, transitions included
        self.heartbeat: float | None = row[2]
        self._target_state: str | None = row[3]
        self._properties: str | None = row[4]
        self._fields: dict[str, Any] = {}
        self._wrote = False

    # -- the run's row ---------------------------------------------------------------------
    @property
    def target_state(self) -> dict[str, Any]:
        """A copy of the run's target state (as this batch has set it so far)."""
        return dict(self._fields["target_state"]) if "target_state" in self._fields else _dict(self._target_state)

    @property
    def properties(self) -> dict[str, Any]:
        """A copy of the run's properties (as this batch has set it so far)."""
        return dict(self._fields["properties"]) if "properties" in self._fields else _dict(self._properties)

    def set(self, **fields: Any) -> None:
        """Set columns of the run (not its status: that is ``transition``)."""
        if "status" in fields:
            raise ValueError("a run's status changes only through RunWriter.transition")
        self._fields.update(fields)
        self._wrote = True

    def transition(self, status: RunStatus, **fields: Any) -> bool:
        """Move the run to ``status`` and set ``fields`` with it, unless the run is terminal already.

        Returns whether it moved; a terminal status is never left (nor are its fields touched)."""
        if self.status.is_terminal():
            return False
        self.set(**fields)
        self._fields["status"] = status.value
        self.status = status
        return True

    def reopen(self, **fields: Any) -> bool:
        """Queue a Failed run again: the one way out of a terminal status (``sweep resume`` of a sweep whose
        controller died). Returns False, changing nothing, when the run did not fail."""
        if self.status is not RunStatus.FAILED:
            return False
        self.set(ended=None, error=None, exit_code=None, **fields)
        self._fields["status"] = RunStatus.QUEUED.value
        self.status = RunStatus.QUEUED
        return True

    # -- what the run logged ---------------------------------------------------------------
    def append_points(self, name: str, points: list[Any]) -> int:
        """Add metric points (``(name, value, step or None, ts)``, the value an int64 or a float); how many
        could not be kept."""
        self._wrote = True
        return append_series(self._db, self.pk, name, points, self._journal)

    def mark_rounded(self, names: Sequence[str]) -> None:
        """Mark metrics rounded: a value of theirs was stored as a float64 other than what was logged."""
        mark_rounded(self._db, self.pk, names)

    def add_record(self, kind: str, name: str, payload: str | None, ts: float | None) -> None:
        """Keep one record (a table, an image, a model, a warning...) with its JSON payload."""
        self._db.execute(
            "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
            (self.pk, kind, name, payload, ts),
        )
        self._wrote = True

    def set_tag(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO tags(run_pk, key, value) VALUES (?,?,?)", (self.pk, key, value))
        self._wrote = True

    # -- the journal's read positions ------------------------------------------------------
    def claim_offsets(self, read: dict[str, tuple[int, int]]) -> bool:
        """Move journal files' offsets from the start to the end of what was read, if nobody moved them
        meanwhile; False (nothing written) when another reader ingested those bytes first."""
        known = dict(self._db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (self.pk,)).fetchall())
        if any(known.get(name, 0) != start for name, (start, _) in read.items()):
            return False
        self._db.executemany(
            "INSERT OR REPLACE INTO offsets(run_pk, file, pos) VALUES (?,?,?)",
            [(self.pk, name, end) for name, (_, end) in read.items()],
        )
        self._wrote = True
        return True

    def _flush(self) -> None:
        if not self._wrote:
            return
        fields = {**self._fields, "updated": time.time()}
        cols = ", ".join(f"{k}=?" for k in fields)
        values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
        self._db.execute(f"UPDATE runs SET {cols} WHERE pk=?", (*values, self.pk))


def _dict(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


class Batch:
    """Writes to several runs in one transaction (a bulk import); ``RunStore.write`` is the one-run case."""

    def __init__(self, db: sqlite3.Connection, runs_dir: Path | None = None) -> None:
        self._db, self._runs_dir = db, runs_dir
        self._runs: dict[int, RunWriter] = {}

    def run(self, pk: int) -> RunWriter:
        """The writer of run ``pk`` in this batch."""
        if pk not in self._runs:
            self._runs[pk] = RunWriter(self._db, pk, self._runs_dir)
        return self._runs[pk]

    def _flush(self) -> None:
        for writer in self._runs.values():
            writer._flush()


class RunWrites(RunQueries):
    """Creating, changing and removing runs; every change goes through ``batch`` (mostly via ``write``)."""

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """The batch write primitive: one transaction, committed (every run's row updated once) when the
        block ends, nothing written when it raises."""
        with self.transaction() as db:
            batch = Batch(db, self.runs_dir)
            yield batch
            batch._flush()

    @contextmanager
    def write(self, pk: int) -> Iterator[RunWriter]:
        """One run's batch: what every change to a run (ingest, tags, target state, its end) goes through."""
        with self.batch() as batch:
            yield batch.run(pk)

    def update_run(self, pk: int, **fields: Any) -> bool:
        """Set columns of a run (JSON-encodes dict/list values).

        A ``status`` goes through the terminal guard: on a run that has ended, nothing changes
        (returns False)."""
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

    # -- creating and removing runs ----------------------------------------------------------
    def create_run(
        self,
        spec: RunSpec,
        *,
        target_type: str,
        snapshot_id: str | None,
        properties: dict[str, Any],
        run_id: str | None = None,
        target_state: dict[str, Any] | None = None,
    ) -> Any:
        """Make the run's folder (with ``run.json``, what ``store repair`` rebuilds it from), then record it Queued.

        A generated id claims its folder with an exclusive mkdir (6 hex digits can repeat within
        a second), and is drawn again if the index has it already."""
        given = run_id
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
                raise store_error(exc, self.root) from exc
            try:
                state = target_state or {}
                described = runfile.describe(spec, run_id, target_type, snapshot_id, properties, state, now)
                runfile.write(run_dir, described)
                if self._insert_run(described):
                    return self.get_run(run_id)
            except BaseException as exc:
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written (e.g. the disk is full)
                if isinstance(exc, OSError):
                    raise store_error(exc, self.root) from exc
                raise
            shutil.rmtree(run_dir, ignore_errors=True)  # the index had that id (its folder was gone)

    def _insert_run(self, described: dict[str, Any]) -> bool:
        """Insert the rows of a run that ``run.json`` describes; False when the index has that run id already."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id=?", (described["run_id"],)).fetchone():
                return False
            pk = insert_run_row(db, described, RunStatus.QUEUED.value)
            db.executemany(
                "INSERT OR REPLACE INTO tags(run_pk, key, value) VALUES (?,?,?)",
                [(pk, k, v) for k, v in described["tags"].items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO params(run_pk, key, value) VALUES (?,?,?)",
                [
                    (pk, k, v if isinstance(v, (int, float, str)) else json.dumps(v))
                    for k, v in described["params"].items()
                ],
            )
        return True

    def delete_run(self, run_id: str) -> None:
        """Remove a run that never started (used to undo a failed launch)."""
        record = self.get_run(run_id)
        with self.transaction() as db:
            _delete_rows(db, record.pk)
        shutil.rmtree(record.run_dir, ignore_errors=True)

    def remove_finished_run(self, pk: int) -> bool:
        """Delete a finished run's rows and folder; False if it was gone or is not finished."""
        with self.transaction() as db:
            row = db.execute("SELECT status, run_id FROM runs WHERE pk=?", (pk,)).fetchone()
            if row is None or not RunStatus(row[0]).is_terminal():
                return False
            _delete_rows(db, pk)
        shutil.rmtree(self.runs_dir / row[1], ignore_errors=True)
        return True

    # -- snapshots ---------------------------------------------------------------------------
    def add_snapshot(self, snapshot_id: str, files: int, size: int, source_dir: str) -> bool:
        """Record a snapshot; False when the same content was recorded before."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO snapshots(id, files, bytes, created, source_dir) VALUES (?,?,?,?,?)",
                (snapshot_id, files, size, time.time(), source_dir),
            )
            return cur.rowcount > 0

    def forget_unused_snapshots(self) -> None:
        """Drop the index rows of snapshots no run refers to (after their blobs were collected)."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM snapshots WHERE id NOT IN (SELECT snapshot_id FROM runs WHERE snapshot_id IS NOT NULL)"
            )


def experiment_id(db: sqlite3.Connection, name: str) -> int:
    """The experiment's key, creating it on first use (inside the caller's transaction)."""
    row = db.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
    if row:
        return int(row[0])
    return int(db.execute("INSERT INTO experiments(name, created) VALUES (?, ?)", (name, time.time())).lastrowid or 0)


def insert_run_row(db: sqlite3.Connection, run: dict[str, Any], status: str) -> int:
    """Insert one run's row (a new run, or one ``store repair`` rebuilds); its key."""
    created = float(run["created"])
    return int(
        db.execute(
            "INSERT INTO runs(run_id, experiment_id, name, status, target, target_type, script, arguments,"
            " snapshot_id, environment, created, updated, heartbeat, properties, spec, target_state,"
            " parent_run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run["run_id"],
                experiment_id(db, run["experiment"]),
                run.get("name"),
                status,
                run["target"],
                run.get("target_type"),
                run["script"],
                json.dumps(run.get("arguments") or []),
                run.get("snapshot_id"),
                run.get("environment"),
                created,
                created,
                created,
                json.dumps(run.get("properties") or {}),
                json.dumps(run.get("spec") or {}),
                json.dumps(run.get("target_state") or {}),
                run.get("parent_run_id"),
            ),
        ).lastrowid
        or 0
    )


def _delete_rows(db: sqlite3.Connection, pk: int) -> None:
    for table in ("tags", "params", "records", "offsets"):
        db.execute(f"DELETE FROM {table} WHERE run_pk=?", (pk,))
    db.execute("DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE run_pk=?)", (pk,))
    db.execute("DELETE FROM series WHERE run_pk=?", (pk,))
    db.execute("DELETE FROM runs WHERE pk=?", (pk,))
