"""The embedded store: an SQLite index (WAL) next to a blob folder and run folders.

Layout of ``.launchbay/``::

    index.sqlite          runs, experiments, tags, params, metric series, chunks
    blobs/ab/cdef...      content-addressed files (snapshot files and manifests)
    runs/<run_id>/        runner.json, journal/, files/ (outputs, logs, user_logs)

Metric points are stored as packed chunks (steps, values, timestamps) so that a
million-point series reads back in a few milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import LaunchbayError, RunNotFoundError, StoreDamagedError, StoreError
from ..models import RunSpec, RunStatus
from . import runfile
from .blobs import BlobStore
from .guard import REPAIR_HINT, connect, store_error
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .records import RunRecord, loads

BUSY_TIMEOUT_MS = 60_000
_RUN_COLUMNS = (
    "r.pk, r.run_id, e.name, r.name, r.status, r.target, r.target_type, r.script, r.arguments, "
    "r.snapshot_id, r.environment, r.created, r.started, r.ended, r.updated, r.exit_code, r.error, "
    "r.heartbeat, r.properties, r.spec, r.target_state, r.parent_run_id"
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


class Series:
    """One scalar metric: parallel NumPy arrays of steps, values and timestamps."""

    def __init__(self, name: str, steps: Any, values: Any, timestamps: Any) -> None:
        self.name, self.steps, self.values, self.timestamps = name, steps, values, timestamps

    def __len__(self) -> int:
        return len(self.values)

    def to_points(self) -> list[dict[str, Any]]:
        return [
            {"step": s, "value": v, "ts": t}
            for s, v, t in zip(self.steps.tolist(), self.values.tolist(), self.timestamps.tolist())
        ]


class RunStore:
    """All reads and writes of run history go through here (CLI, API, server, ingest)."""

    def __init__(self, root: Path, *, index_name: str = "index.sqlite", rebuilding: bool = False) -> None:
        """``rebuilding`` (``launchbay store repair`` only): an empty index next to run folders is expected."""
        self.root = root
        self.index_path = root / index_name
        self.blobs = BlobStore(root / "blobs")
        self.runs_dir = root / "runs"
        self._local = threading.local()
        self._rebuilding = rebuilding
        self._migrate()

    # -- connection and transactions -------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.root, self.index_path, BUSY_TIMEOUT_MS / 1000)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's store is dropped)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing)."""
        db = self.db
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                sqlite3.Connection.execute(db, "BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                # SQLite can answer "locked" at once (WAL recovery by another process) instead of waiting
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise store_error(exc, self.root) from exc
                time.sleep(0.02)
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except LaunchbayError:
                    pass  # SQLite rolled back by itself (disk full, I/O error)
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise store_error(exc, self.root) from exc
            raise

    def _migrate(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.runs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise store_error(exc, self.root) from exc
        if not self._rebuilding and (not self.index_path.exists() or self.index_path.stat().st_size == 0):
            self._refuse_empty_index()  # before SQLite writes a header into it
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The store at {self.root} has schema version {version}, newer than this launchbay "
                f"understands ({SCHEMA_VERSION}). Upgrade launchbay (pip install -U launchbay)."
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0 and not self._rebuilding:
                self._refuse_empty_index()
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _refuse_empty_index(self) -> None:
        """An empty (0-byte, new or lost) index next to run folders must not look like "no runs yet"."""
        try:
            folders = sum(1 for e in os.scandir(self.runs_dir) if e.is_dir() and runfile.looks_like_run(Path(e.path)))
        except OSError:
            folders = 0
        if folders:
            raise StoreDamagedError(
                f"The store's index {self.index_path} is empty or missing, but {self.runs_dir} holds "
                f"{folders} run folder(s); nothing was written. {REPAIR_HINT}"
            )

    # -- runs -------------------------------------------------------------------------
    def _experiment_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT id FROM experiments WHERE name=?", (name,)).fetchone()
        if row:
            return int(row[0])
        return int(
            db.execute("INSERT INTO experiments(name, created) VALUES (?, ?)", (name, time.time())).lastrowid or 0
        )

    def new_run_id(self, experiment: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", experiment).strip("-")[:24] or "run"
        return f"{slug}_{int(time.time())}_{secrets.token_hex(3)}"

    def create_run(
        self,
        spec: RunSpec,
        *,
        target_type: str,
        snapshot_id: str | None,
        properties: dict[str, Any],
        run_id: str | None = None,
        target_state: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Make the run's folder (with ``run.json``, what ``store repair`` rebuilds it from), then record it Queued.

        A generated id claims its folder with an exclusive mkdir (6 hex digits can repeat within
        a second), and is drawn again if the index has it already."""
        given = run_id
        import shutil

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
                runfile.write(
                    run_dir,
                    runfile.describe(spec, run_id, target_type, snapshot_id, properties, target_state or {}, now),
                )
                if self._insert_run(spec, run_id, target_type, snapshot_id, properties, target_state or {}, now):
                    return self.get_run(run_id)
            except BaseException as exc:
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written (e.g. the disk is full)
                if isinstance(exc, OSError):
                    raise store_error(exc, self.root) from exc
                raise
            shutil.rmtree(run_dir, ignore_errors=True)  # the index had that id (its folder was gone)

    def _insert_run(
        self,
        spec: RunSpec,
        run_id: str,
        target_type: str,
        snapshot_id: str | None,
        properties: dict[str, Any],
        target_state: dict[str, Any],
        now: float,
    ) -> bool:
        """Insert the run's rows; False when the index has that run id already."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone():
                return False
            exp = self._experiment_id(db, spec.experiment)
            pk = db.execute(
                "INSERT INTO runs(run_id, experiment_id, name, status, target, target_type, script, arguments,"
                " snapshot_id, environment, created, updated, heartbeat, properties, spec, target_state,"
                " parent_run_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    exp,
                    spec.name,
                    RunStatus.QUEUED.value,
                    spec.target,
                    target_type,
                    spec.script or "<cell>",
                    json.dumps(list(spec.arguments)),
                    snapshot_id,
                    spec.environment,
                    now,
                    now,
                    now,
                    json.dumps(properties),
                    json.dumps(spec.to_json()),
                    json.dumps(target_state),
                    spec.parent_run_id,
                ),
            ).lastrowid
            db.executemany(
                "INSERT OR REPLACE INTO tags(run_pk, key, value) VALUES (?,?,?)",
                [(pk, k, str(v)) for k, v in spec.tags.items()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO params(run_pk, key, value) VALUES (?,?,?)",
                [(pk, k, v if isinstance(v, (int, float, str)) else json.dumps(v)) for k, v in spec.params.items()],
            )
        return True

    def delete_run(self, run_id: str) -> None:
        """Remove a run that never started (used to undo a failed launch)."""
        import shutil

        record = self.get_run(run_id)
        with self.transaction() as db:
            for table in ("tags", "params", "records", "offsets"):
                db.execute(f"DELETE FROM {table} WHERE run_pk=?", (record.pk,))
            db.execute("DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE run_pk=?)", (record.pk,))
            db.execute("DELETE FROM series WHERE run_pk=?", (record.pk,))
            db.execute("DELETE FROM runs WHERE pk=?", (record.pk,))
        shutil.rmtree(record.run_dir, ignore_errors=True)

    def run_dir(self, run_id: str) -> Path:
        if not _SAFE_ID.match(run_id):
            raise RunNotFoundError(f"{run_id!r} is not a valid run id.")
        return self.runs_dir / run_id

    def resolve_run_id(self, ref: str) -> str:
        """An exact run id, or a unique prefix of one."""
        ref = ref.strip()
        row = self.db.execute("SELECT run_id FROM runs WHERE run_id=?", (ref,)).fetchone()
        if row:
            return str(row[0])
        if ref and _SAFE_ID.match(ref):
            rows = self.db.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT 2", (ref, ref + "\U0010ffff")
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0][0])
            if len(rows) > 1:
                raise RunNotFoundError(f"{ref!r} matches several runs; give more of the run id.")
        raise RunNotFoundError(
            f"No run {ref!r} in the store at {self.root}. List runs with `launchbay runs`"
            " (or pass --store / LAUNCHBAY_STORE for another store)."
        )

    def get_run(self, ref: str) -> RunRecord:
        run_id = self.resolve_run_id(ref)
        row = self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id=r.experiment_id WHERE r.run_id=?", (run_id,)
        ).fetchone()
        record = self._record(row)
        self._attach_details([record])
        return record

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        return RunRecord(
            pk=row[0],
            run_id=row[1],
            experiment=row[2],
            name=row[3],
            status=RunStatus(row[4]),
            target=row[5],
            target_type=row[6],
            script=row[7],
            arguments=loads(row[8], []),
            snapshot_id=row[9],
            environment=row[10],
            created=row[11],
            started=row[12],
            ended=row[13],
            updated=row[14],
            exit_code=row[15],
            error=loads(row[16], None),
            heartbeat=row[17],
            properties=loads(row[18], {}),
            spec=loads(row[19], {}),
            target_state=loads(row[20], {}),
            parent_run_id=row[21],
            run_dir=self.runs_dir / row[1],
        )

    def _attach_details(self, records: list[RunRecord]) -> None:
        if not records:
            return
        by_pk = {r.pk: r for r in records}
        marks = ",".join("?" * len(by_pk))
        keys = list(by_pk)
        for pk, key, value in self.db.execute(f"SELECT run_pk, key, value FROM tags WHERE run_pk IN ({marks})", keys):
            by_pk[pk].tags[key] = value
        for pk, key, value in self.db.execute(f"SELECT run_pk, key, value FROM params WHERE run_pk IN ({marks})", keys):
            by_pk[pk].params[key] = value
        snaps = {r.snapshot_id for r in records if r.snapshot_id}
        if snaps:
            smarks = ",".join("?" * len(snaps))
            info = {
                sid: {"id": sid, "files": files, "bytes": size}
                for sid, files, size in self.db.execute(
                    f"SELECT id, files, bytes FROM snapshots WHERE id IN ({smarks})", list(snaps)
                )
            }
            for r in records:
                r.snapshot = info.get(r.snapshot_id or "")
        for pk, name, last, step in self.db.execute(
            f"SELECT run_pk, name, last, last_step FROM series WHERE run_pk IN ({marks})"
            " AND name NOT LIKE 'system/%' ORDER BY id",  # the runner's samples are never a run's headline
            keys,
        ):
            if by_pk[pk].primary_metric is None:
                by_pk[pk].primary_metric = {"name": name, "value": last, "step": step}

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
        limit: int | None = 100,
        offset: int = 0,
        details: bool = True,
    ) -> list[RunRecord]:
        """Runs newest first, filtered in SQL (indexes make 10,000 runs cheap)."""
        where, args = self._filters(experiment, status, text, param, metric_below, metric_above, updated_since)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id=r.experiment_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created DESC, r.pk DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        records = [self._record(row) for row in self.db.execute(sql, args)]
        if details:
            self._attach_details(records)
        return records

    def count_runs(self, **filters: Any) -> int:
        where, args = self._filters(**filters)
        sql = "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id=r.experiment_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return int(self.db.execute(sql, args).fetchone()[0])

    @staticmethod
    def _filters(
        experiment: str | None = None,
        status: str | None = None,
        text: str | None = None,
        param: tuple[str, Any] | None = None,
        metric_below: tuple[str, float] | None = None,
        metric_above: tuple[str, float] | None = None,
        updated_since: float | None = None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if experiment:
            where.append("e.name = ?")
            args.append(experiment)
        if status:
            where.append("r.status = ?")
            args.append(RunStatus.parse(status).value)
        if text:
            where.append(
                "(r.run_id LIKE ? OR r.name LIKE ? OR r.script LIKE ? OR e.name LIKE ? OR r.target LIKE ?"
                " OR r.pk IN (SELECT run_pk FROM tags WHERE key LIKE ? OR value LIKE ?)"
                " OR r.pk IN (SELECT run_pk FROM params WHERE key LIKE ? OR value LIKE ?))"
            )
            args.extend([f"%{text}%"] * 9)
        if param:
            where.append("r.pk IN (SELECT run_pk FROM params WHERE key = ? AND value = ?)")
            args.extend(param)
        if metric_below:
            where.append("r.pk IN (SELECT run_pk FROM series WHERE name = ? AND last < ?)")
            args.extend(metric_below)
        if metric_above:
            where.append("r.pk IN (SELECT run_pk FROM series WHERE name = ? AND last > ?)")
            args.extend(metric_above)
        if updated_since is not None:
            where.append("r.updated > ?")
            args.append(updated_since)
        return where, args

    def experiments(self) -> list[tuple[str, int]]:
        return [
            (name, count)
            for name, count in self.db.execute(
                "SELECT e.name, COUNT(r.pk) FROM experiments e LEFT JOIN runs r ON r.experiment_id=e.id"
                " GROUP BY e.id ORDER BY MAX(r.created) DESC"
            )
        ]

    def end_run(self, pk: int, status: RunStatus, error: dict[str, Any] | None = None) -> bool:
        """Make a run terminal, unless it already is (a terminal status is never overwritten).

        Returns whether this call ended it."""
        assert status.is_terminal(), status
        with self.transaction() as db:
            current = db.execute("SELECT status FROM runs WHERE pk=?", (pk,)).fetchone()
            if current is None or RunStatus(current[0]).is_terminal():
                return False
            self.update_run(pk, db=db, status=status.value, ended=time.time(), error=error)
            return True

    def update_run(self, pk: int, db: sqlite3.Connection | None = None, **fields: Any) -> None:
        """Set columns of a run (JSON-encodes dict/list values)."""
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
        if db is not None:
            db.execute(f"UPDATE runs SET {cols} WHERE pk=?", (*values, pk))
            return
        with self.transaction() as tx:
            tx.execute(f"UPDATE runs SET {cols} WHERE pk=?", (*values, pk))

    def merge_target_state(self, pk: int, **fields: Any) -> dict[str, Any]:
        """Add keys to a run's ``target_state`` (container id, job id, ...) without losing others.

        ``run.json`` gets them too (under the same write lock), so a repaired index still
        knows which container or job to sync and cancel."""
        with self.transaction() as db:
            row = db.execute("SELECT target_state, run_id FROM runs WHERE pk=?", (pk,)).fetchone()
            state = json.loads(row[0] or "{}")
            state.update(fields)
            self.update_run(pk, db=db, target_state=state)
            runfile.update(self.runs_dir / row[1], target_state=state)
        return state

    def set_tag(self, pk: int, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        sql = "INSERT OR REPLACE INTO tags(run_pk, key, value) VALUES (?,?,?)"
        if db is not None:
            db.execute(sql, (pk, key, value))
        else:
            with self.transaction() as tx:
                tx.execute(sql, (pk, key, value))

    # -- snapshots ----------------------------------------------------------------------
    def add_snapshot(self, snapshot_id: str, files: int, size: int, source_dir: str) -> bool:
        """Record a snapshot; False when the same content was recorded before."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO snapshots(id, files, bytes, created, source_dir) VALUES (?,?,?,?,?)",
                (snapshot_id, files, size, time.time(), source_dir),
            )
            return cur.rowcount > 0

    def snapshot_manifest(self, snapshot_id: str) -> dict[str, Any]:
        return json.loads(self.blobs.read_bytes(snapshot_id))

    # -- metrics ------------------------------------------------------------------------
    def metric_summaries(self, run: RunRecord) -> list[dict[str, Any]]:
        return [
            {"name": n, "count": c, "last": last, "last_step": s, "min": lo, "max": hi}
            for n, c, last, s, lo, hi in self.db.execute(
                "SELECT name, count, last, last_step, min, max FROM series WHERE run_pk=? ORDER BY id", (run.pk,)
            )
        ]

    def series_id(self, run: RunRecord, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM series WHERE run_pk=? AND name=?", (run.pk, name)).fetchone()
        return None if row is None else int(row[0])

    def read_series(self, run: RunRecord, name: str, after_step: int | None = None) -> Series:
        """A whole series (or the points after ``after_step``) from its packed chunks."""
        import numpy as np

        series_id = self.series_id(run, name)
        steps: list[Any] = []
        values: list[bytes] = []
        stamps: list[bytes] = []
        if series_id is not None:
            sql = "SELECT n, first_step, steps, vals, ts FROM chunks WHERE series_id=? AND last_step > ? ORDER BY id"
            args: tuple[Any, ...] = (series_id, after_step)
            if after_step is None:  # every step, -2**63 included
                sql, args = sql.replace(" AND last_step > ?", ""), (series_id,)
            for n, first, s_blob, v_blob, t_blob in self.db.execute(sql, args):
                steps.append(
                    np.arange(first, first + n, dtype=np.int64)
                    if s_blob is None
                    else np.frombuffer(s_blob, dtype=np.int64)
                )
                values.append(v_blob)
                stamps.append(t_blob)
        step_arr = np.concatenate(steps) if steps else np.zeros(0, dtype=np.int64)
        value_arr = np.frombuffer(b"".join(values), dtype=np.float64)
        stamp_arr = np.frombuffer(b"".join(stamps), dtype=np.float64)
        if after_step is not None:
            keep = step_arr > after_step
            step_arr, value_arr, stamp_arr = step_arr[keep], value_arr[keep], stamp_arr[keep]
        return Series(name, step_arr, value_arr, stamp_arr)

    def read_records(self, run: RunRecord, kind: str | None = None) -> list[tuple[str, str, Any, float]]:
        sql = "SELECT kind, name, payload, ts FROM records WHERE run_pk=?"
        args: list[Any] = [run.pk]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        return [(k, n, json.loads(p), ts) for k, n, p, ts in self.db.execute(sql + " ORDER BY id", args)]

    # -- files and logs -------------------------------------------------------------------
    def files_dir(self, run: RunRecord) -> Path:
        return run.run_dir / "files"

    def file_names(self, run: RunRecord) -> list[str]:
        """The run's files; a symlink is listed only when it stays inside the run's files."""
        root = self.files_dir(run)
        if not root.is_dir() or root.is_symlink():
            return []
        names = []
        for folder, _dirs, files in os.walk(root):  # never descends into linked folders
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink() or inside(self.files_dir(run), path.relative_to(root)) is not None:
                    names.append(str(path.relative_to(root)))
        return sorted(names)

    def file_path(self, run: RunRecord, name: str) -> Path:
        """The file of a run named ``name``, refusing anything outside the run's files."""
        candidate = None if name.startswith("/") or "\x00" in name else inside(self.files_dir(run), Path(name))
        if candidate is None or not candidate.is_file():
            raise RunNotFoundError(
                f"Run {run.run_id} has no file {name!r}; list its files with `launchbay files {run.run_id}`."
            )
        return candidate

    def log_path(self, run: RunRecord) -> Path:
        return self.files_dir(run) / "user_logs" / "std_log.txt"

    def read_log(self, run: RunRecord, offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Bytes of the run's output after ``offset`` (up to ``max_bytes``) and the next offset.

        A log that is (or lies under) a symlink leading out of the run's files is refused."""
        path = inside(self.files_dir(run), Path("user_logs") / "std_log.txt")
        if path is None:
            raise RunNotFoundError(
                f"Run {run.run_id}'s log is a link to outside its folder; launchbay serves only files inside it."
            )
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(max_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return b"", offset
        return data, offset + len(data)


def inside(root: Path, rel: Path) -> Path | None:
    """``root / rel`` with every link resolved, or None when that leaves ``root`` (a planted symlink)."""
    real_root = root.resolve()
    candidate = (real_root / rel).resolve()
    return candidate if candidate == real_root or candidate.is_relative_to(real_root) else None
