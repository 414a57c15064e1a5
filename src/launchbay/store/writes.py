"""Writing runs in the SQLite index: ``batch`` (the one write primitive) and the writer's hooks.

Every change to a run is a batch: one write transaction (``store.write`` for one run, ``store.batch``
for many), in which the named operations of ``RunWriter`` (batch.py, where the terminal-status rule
lives) run and each run's row is updated once at the end. Here are the SQL halves: the writer's
hooks, creating a run's rows, removing a run, snapshots.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import RunNotFoundError
from ..models import RunStatus
from .batch import Batch, RunWriter
from .dialect import Db
from .runs import RunQueries
from .series import append_series, mark_rounded

_ROW_COLUMNS = "run_id, status, heartbeat, target_state, properties"
_KEY_VALUE = ("run_pk", "key", "value")
_KEY = ("run_pk", "key")
_OFFSET = ("run_pk", "file", "pos")


class SqliteRunWriter(RunWriter):
    """A ``RunWriter`` over the index's tables (the status rule is the base class's)."""

    def __init__(self, db: Db, pk: int, runs_dir: Path | None = None) -> None:
        self._db = db
        row = db.execute(f"SELECT {_ROW_COLUMNS} FROM runs WHERE pk=?{db.dialect.for_update}", (pk,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with key {pk} in the store (was it removed?).")
        super().__init__(pk, row[0], RunStatus(row[1]), row[2], row[3], row[4])
        self._journal = None if runs_dir is None else runs_dir / self.run_id / rf.JOURNAL

    def append_points(self, name: str, points: list[Any]) -> int:
        self._wrote = True
        return append_series(self._db, self.pk, name, points, self._journal)

    def mark_rounded(self, names: Sequence[str]) -> None:
        mark_rounded(self._db, self.pk, names)

    def add_record(self, kind: str, name: str, payload: str | None, ts: float | None) -> None:
        self._db.execute(
            "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
            (self.pk, kind, name, payload, ts),
        )
        self._wrote = True

    def set_tag(self, key: str, value: str) -> None:
        self._db.execute(self._db.dialect.upsert("tags", _KEY_VALUE, _KEY), (self.pk, key, value))
        self._wrote = True

    def claim_offsets(self, read: dict[str, tuple[int, int]]) -> bool:
        known = dict(self._db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (self.pk,)).fetchall())
        if any(known.get(name, 0) != start for name, (start, _) in read.items()):
            return False
        self._db.executemany(
            self._db.dialect.upsert("offsets", _OFFSET, ("run_pk", "file")),
            [(self.pk, name, end) for name, (_, end) in read.items()],
        )
        self._wrote = True
        return True

    def _write_row(self, fields: dict[str, Any]) -> None:
        cols = ", ".join(f"{k}=?" for k in fields)
        values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
        self._db.execute(f"UPDATE runs SET {cols} WHERE pk=?", (*values, self.pk))


class SqliteBatch(Batch):
    """Writes to several runs in one index transaction."""

    def __init__(self, db: Db, runs_dir: Path | None = None) -> None:
        super().__init__()
        self._db, self._runs_dir = db, runs_dir

    def _writer(self, pk: int) -> RunWriter:
        return SqliteRunWriter(self._db, pk, self._runs_dir)


class RunWrites(RunQueries):
    """Creating, changing and removing runs; every change goes through ``batch`` (mostly via ``write``)."""

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """The batch write primitive: one transaction, committed (every run's row updated once) when the
        block ends, nothing written when it raises."""
        with self.transaction() as db:
            batch = SqliteBatch(db, self.runs_dir)
            yield batch
            batch.flush()

    def _insert_run(self, described: dict[str, Any]) -> bool:
        """Insert the rows of a run that ``run.json`` describes; False when the index has that run id already."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id=?", (described["run_id"],)).fetchone():
                return False
            pk = insert_run_row(db, described, RunStatus.QUEUED.value)
            db.executemany(
                db.dialect.upsert("tags", _KEY_VALUE, _KEY), [(pk, k, v) for k, v in described["tags"].items()]
            )
            db.executemany(
                db.dialect.upsert("params", _KEY_VALUE, _KEY),
                [
                    (pk, k, db.dialect.param_value(v if isinstance(v, (int, float, str)) else json.dumps(v)))
                    for k, v in described["params"].items()
                ],
            )
        return True

    def delete_run(self, run_id: str) -> None:
        """Remove a run that never started (used to undo a failed launch)."""
        record = self.get_run(run_id)
        with self.transaction() as db:
            db.execute(f"SELECT 1 FROM runs WHERE pk=?{db.dialect.for_update}", (record.pk,))  # its writers first
            _delete_rows(db, record.pk)
        shutil.rmtree(record.run_dir, ignore_errors=True)

    def remove_finished_run(self, pk: int) -> bool:
        """Delete a finished run's rows and folder; False if it was gone or is not finished."""
        with self.transaction() as db:
            row = db.execute(f"SELECT status, run_id FROM runs WHERE pk=?{db.dialect.for_update}", (pk,)).fetchone()
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
                db.dialect.insert_new("snapshots", ("id", "files", "bytes", "created", "source_dir")),
                (snapshot_id, files, size, time.time(), source_dir),
            )
            return cur.rowcount > 0

    def forget_unused_snapshots(self) -> None:
        """Drop the index rows of snapshots no run refers to (after their blobs were collected)."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM snapshots WHERE id NOT IN (SELECT snapshot_id FROM runs WHERE snapshot_id IS NOT NULL)"
            )


def experiment_id(db: Db, name: str) -> int:
    """The experiment's key, creating it on first use (inside the caller's transaction)."""
    row = db.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
    if row:
        return int(row[0])
    return db.dialect.insert_id(db, "INSERT INTO experiments(name, created) VALUES (?, ?)", (name, time.time()))


def insert_run_row(db: Db, run: dict[str, Any], status: str) -> int:
    """Insert one run's row (a new run, or one ``store repair`` rebuilds); its key."""
    created = float(run["created"])
    return db.dialect.insert_id(
        db,
        "INSERT INTO runs(run_id, experiment_id, name, status, target, target_type, script, arguments,"
        " snapshot_id, environment, created, updated, heartbeat, properties, spec, target_state,"
        " parent_run_id, created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
            run.get("created_by"),
        ),
    )


def _delete_rows(db: Db, pk: int) -> None:
    for table in ("tags", "params", "records", "offsets", "run_inputs"):
        db.execute(f"DELETE FROM {table} WHERE run_pk=?", (pk,))
    db.execute("DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE run_pk=?)", (pk,))
    db.execute("DELETE FROM series WHERE run_pk=?", (pk,))
    db.execute("DELETE FROM runs WHERE pk=?", (pk,))
