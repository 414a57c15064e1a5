"""``launchbay store repair``: rebuild the index from the run folders (the journals are the truth).

The old index, whatever state it is in, is moved aside (``index.sqlite.damaged-<time>``)
after whatever rows can still be read from it are salvaged. A new index is built
next to it under a temporary name, then renamed into place in one step:

* each run folder gives its run: ``run.json`` (written when the run was created),
  else the salvaged row, else ``runner.json`` (what the runner was told);
* its journal is ingested again from the first byte: statuses, metrics, tags,
  tables, images, files; an ended run's ``sealed.series`` is checked chunk by chunk first
  (``sealed.mend``): every chunk that verifies is kept, what could not be recovered is named
  (run, metric, points), and a damaged file is kept beside the new one, never deleted;
* each run's snapshot is recorded when its manifest blob is still there; blobs
  that are gone are counted, and stored again from the source folder when its file
  there still has the same content.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import LaunchbayError, StoreError
from ..models import RunStatus
from . import runfile
from .guard import store_error
from .records import RunRecord
from .sqlite import RunStore
from .writes import insert_run_row

#: reads one run's journal into a store (``ingest.ingest_run``)
Replay = Callable[[RunStore, RunRecord], Any]

INDEX = "index.sqlite"


@dataclass
class RepairReport:
    old_index: str  # what happened to the old index ("missing", "empty", "damaged: ...", "healthy")
    moved_to: str | None = None
    runs: int = 0
    points: int = 0
    snapshots: int = 0
    blobs_missing: int = 0
    blobs_restored: int = 0
    points_lost: int = 0  # metric points in damaged sealed files that no chunk could give back
    kept_aside: list[str] = field(default_factory=list)  # damaged files kept for the user to check and delete
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check_old(path: Path) -> str:
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        return "empty (0 bytes)"
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        return f"damaged: {exc}"
    if result != "ok":
        return f"damaged: {result}"
    return "healthy" if version else "empty (no tables)"


def _salvage(path: Path) -> dict[str, dict[str, Any]]:
    """Run rows still readable in the old index, by run id (best effort, row by row)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists() or path.stat().st_size == 0:
        return rows
    columns = (
        "run_id, (SELECT name FROM experiments e WHERE e.id=r.experiment_id), name, status, target, target_type,"
        " script, arguments, snapshot_id, environment, created, properties, spec, target_state, parent_run_id"
    )
    names = [
        "run_id", "experiment", "name", "status", "target", "target_type", "script", "arguments",
        "snapshot_id", "environment", "created", "properties", "spec", "target_state", "parent_run_id",
    ]  # fmt: skip
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return rows
    try:
        cursor = conn.execute(f"SELECT {columns} FROM runs r")
        while True:
            try:
                row = cursor.fetchone()
            except sqlite3.Error:
                break  # a bad page: keep what was read before it
            if row is None:
                break
            data = dict(zip(names, row))
            for key in ("arguments", "properties", "spec", "target_state"):
                try:
                    data[key] = json.loads(data[key]) if data[key] else None
                except ValueError:
                    data[key] = None
            rows[str(data["run_id"])] = data
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    return rows


def _from_runner_json(run_dir: Path) -> dict[str, Any] | None:
    """What an old run folder (no run.json) still says about its run."""
    try:
        config = json.loads((run_dir / rf.RUNNER_CONFIG).read_text())
    except (OSError, ValueError):
        return None
    manifest = (config.get("snapshot") or {}).get("manifest") or ""
    parts = Path(manifest).parts
    snapshot_id = parts[-2] + parts[-1] if len(parts) >= 2 and len(parts[-2]) == 2 else None
    command = list(config.get("command") or [])
    script = command[1] if len(command) > 1 and command[1] != "-m" else "<cell>"
    return {
        "run_id": run_dir.name,
        "experiment": config.get("experiment") or "default",
        "target": "local",
        "target_type": None,
        "script": script,
        "arguments": command[2:] if script != "<cell>" else [],
        "snapshot_id": snapshot_id,
        "created": config.get("created") or run_dir.stat().st_mtime,
        "properties": {"launchbay.repaired": "from runner.json"},
        "spec": {},
    }


def _insert(store: RunStore, data: dict[str, Any], status: str) -> int:
    with store.transaction() as db:
        row = {
            **data,
            "experiment": str(data.get("experiment") or "default"),
            "created": float(data.get("created") or time.time()),
            "target": data.get("target") or "local",
            "script": data.get("script") or "<cell>",
        }
        pk = insert_run_row(db, row, status)
        assert pk is not None
        db.executemany(
            db.dialect.upsert("tags", ("run_pk", "key", "value"), ("run_pk", "key")),
            [(pk, k, str(v)) for k, v in (data.get("tags") or {}).items()],
        )
        db.executemany(
            db.dialect.upsert("params", ("run_pk", "key", "value"), ("run_pk", "key")),
            [
                (pk, k, v if isinstance(v, (int, float, str)) else json.dumps(v))
                for k, v in (data.get("params") or {}).items()
            ],
        )
        return int(pk)


def _snapshot(store: RunStore, data: dict[str, Any], report: RepairReport, seen: set[str]) -> None:
    """Record the run's snapshot; count (and where possible restore) blobs that are gone."""
    snapshot_id = data.get("snapshot_id")
    if not snapshot_id or snapshot_id in seen:
        return
    seen.add(snapshot_id)
    try:
        manifest = json.loads(store.blobs.read_bytes(snapshot_id))
    except (OSError, ValueError):
        report.problems.append(f"snapshot {snapshot_id[:12]} of run {data['run_id']}: its manifest is gone")
        return
    files = manifest.get("files") or []
    source = (data.get("properties") or {}).get("launchbay.source_dir")
    for entry in files:
        if store.blobs.has(entry["sha256"]):
            continue
        report.blobs_missing += 1
        candidate = Path(source) / entry["path"] if source else None
        try:
            if candidate and hashlib.sha256(candidate.read_bytes()).hexdigest() == entry["sha256"]:
                store.blobs.put_file(candidate, entry["sha256"])
                report.blobs_restored += 1
        except OSError:
            pass
    store.add_snapshot(snapshot_id, len(files), sum(int(e.get("size", 0)) for e in files), str(source or ""))
    report.snapshots += 1


def repair(root: Path, replay: Replay) -> RepairReport:
    """Rebuild ``root``'s index from its run folders; see the module docstring. ``replay(store, record)``
    reads a run's journal into the new index (``ingest.ingest_run``: the store does not know the journal's
    events, the layer above it does)."""
    root = Path(root)
    team = root / "team-store.json"
    if team.exists():
        where = json.loads(team.read_text()).get("store", "a team store")
        raise StoreError(
            f"{root} is this machine's folder of the team store {where}, whose index is PostgreSQL's and is"
            " not rebuilt from run folders (those of other machines are elsewhere); nothing was changed."
            " Restore a damaged database from its PostgreSQL backups (pg_dump, pg_basebackup)."
        )
    if not (root / "runs").is_dir() and not (root / INDEX).exists():
        raise StoreError(f"{root} is not a launchbay store (no runs/ folder, no index); check --store.")
    with open(root / ".repair.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one repair at a time
        old = root / INDEX
        report = RepairReport(old_index=_check_old(old))
        salvaged = _salvage(old) if report.old_index != "missing" else {}
        tmp_name = f".{INDEX}.rebuild-{os.getpid()}"
        for suffix in ("", "-wal", "-shm", "-journal"):
            (root / (tmp_name + suffix)).unlink(missing_ok=True)
        try:
            with RunStore(root, index_name=tmp_name, rebuilding=True) as new:
                seen = _rebuild(new, root, salvaged, report, replay)
                new.checkpoint_into_one_file()  # before the rename
        except OSError as exc:
            raise store_error(exc, root) from exc
        if report.old_index != "missing":
            kind = "old" if report.old_index == "healthy" else "damaged"
            name = f"{INDEX}.{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
            while (root / name).exists():  # never over an earlier copy
                name += "x"
            report.moved_to = str(root / name)
            for suffix in ("", "-wal", "-shm"):
                if (root / (INDEX + suffix)).exists():
                    os.replace(root / (INDEX + suffix), root / (name + suffix))
        os.replace(root / tmp_name, old)
        late = _folders(root / "runs") - seen
        if late:  # created by another process while this ran: their rows went to the old index
            report.problems.append(
                f"{len(late)} run(s) started during the repair ({', '.join(sorted(late)[:3])}...): "
                "run `launchbay store repair` again once nothing else uses the store"
            )
        for index in (root / "cache").glob("snapshot-index-*"):
            index.unlink(missing_ok=True)  # the next snapshot checks every blob again
    return report


def _folders(runs: Path) -> set[str]:
    return {e.name for e in os.scandir(runs) if e.is_dir() and runfile.looks_like_run(Path(e.path))}


def _mend_sealed(run_dir: Path, data: dict[str, Any], report: RepairReport) -> None:
    """Keep every verifiable chunk of the run's sealed series; note what was lost on the run itself."""
    from .sealed import mend

    try:
        problems, lost, kept = mend(run_dir / rf.JOURNAL)
    except OSError as exc:
        report.problems.append(f"{run_dir.name}: its sealed series could not be checked ({exc}); left as it is")
        return
    report.problems += problems
    report.points_lost += lost
    if kept:
        report.kept_aside.append(kept)
        data["properties"] = {
            **(data.get("properties") or {}),
            "launchbay.repaired": f"store repair kept every chunk it could verify; {lost:,} metric points lost",
        }


def _lineage(store: RunStore, data: dict[str, Any]) -> None:
    """The run's data inputs and outputs, as run.json keeps them."""
    from .records import RunInput

    rows = [RunInput(**row) for row in data.get("data") or [] if isinstance(row, dict)]
    if rows:
        store.add_run_inputs(str(data["run_id"]), rows)


def _rebuild(
    store: RunStore, root: Path, salvaged: dict[str, dict[str, Any]], report: RepairReport, replay: Replay
) -> set[str]:
    """Index every run folder; returns the names of the folders it saw."""
    names = _folders(store.runs_dir)
    folders = [store.runs_dir / name for name in sorted(names)]
    seen_snapshots: set[str] = set()
    for run_dir in folders:
        data = runfile.read(run_dir) or salvaged.get(run_dir.name) or _from_runner_json(run_dir)
        if data is None:
            report.problems.append(f"{run_dir.name}: no run.json, runner.json or readable index row; left out")
            continue
        data["run_id"] = run_dir.name
        _mend_sealed(run_dir, data, report)
        has_events = (run_dir / rf.EVENTS_PATH).is_file()
        old_status = (salvaged.get(run_dir.name) or {}).get("status")
        status = RunStatus.QUEUED.value if has_events or not old_status else str(old_status)
        try:
            _insert(store, data, status)
            _lineage(store, data)
            _snapshot(store, data, report, seen_snapshots)
            record = store.get_run(run_dir.name)
            replay(store, record)
        except LaunchbayError as exc:
            report.problems.append(f"{run_dir.name}: {exc}")
            continue
        report.runs += 1
    report.points = store.point_count()
    return names
