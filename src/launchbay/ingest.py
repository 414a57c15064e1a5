"""Journal → store: read what a run appended since last time and index it.

Readers parse outside the write lock and commit only if nobody ingested the same
bytes meanwhile (offsets are compared inside the transaction), so the runner, a
notebook and the CLI can all catch up on one run at once without duplicates.
"""

from __future__ import annotations

import fcntl
import json
import marshal
import operator
import os
import sqlite3
import struct
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .models import RunStatus
from .store import RunRecord, RunStore, open_store

_HEADER = struct.Struct("<I")
_first, _second, _third, _fourth = (operator.itemgetter(i) for i in range(4))
MERGE_BELOW = 4096  # a last chunk smaller than this is merged with new points


def _read_from(path: Path, pos: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(pos)
            return fh.read()
    except FileNotFoundError:
        return b""


def _parse_records(data: bytes) -> tuple[list[tuple[str, Any]], int]:
    """Complete length-prefixed records in ``data`` and how many bytes they used."""
    out, pos, size = [], 0, len(data)
    while pos + 4 <= size:
        (length,) = _HEADER.unpack_from(data, pos)
        if pos + 4 + length > size:
            break
        out.append(marshal.loads(data[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return out, pos


def _parse_events(data: bytes) -> tuple[list[dict[str, Any]], int]:
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return events, end


class _Pending:
    """Everything read from the journal in one pass, applied in one transaction."""

    def __init__(self) -> None:
        self.offsets: dict[str, tuple[int, int]] = {}
        self.points: dict[str, list[tuple[Any, Any, Any, float]]] = defaultdict(list)
        self.records: list[tuple[str, str, Any, float]] = []
        self.events: list[dict[str, Any]] = []
        self.heartbeat: float | None = None

    def empty(self) -> bool:
        return not (self.offsets or self.heartbeat)


def _collect(record: RunRecord, known: dict[str, int]) -> _Pending:
    journal = record.run_dir / "journal"
    pending = _Pending()
    if not journal.is_dir():
        return pending
    for path in sorted(journal.iterdir()):
        name = path.name
        if name.endswith(".bin"):
            start = known.get(name, 0)
            data = _read_from(path, start)
            items, used = _parse_records(data)
            if used:
                pending.offsets[name] = (start, start + used)
            for kind, payload in items:
                if kind == "m":
                    _group_points(payload, pending.points)
                else:
                    pending.records.append((kind, *payload))
        elif name == "events.jsonl":
            start = known.get(name, 0)
            events, used = _parse_events(_read_from(path, start))
            if used:
                pending.offsets[name] = (start, start + used)
            pending.events.extend(events)
        elif name == "heartbeat":
            try:
                pending.heartbeat = float(path.read_text() or 0)
            except (OSError, ValueError):
                pass
    return pending


def _group_points(batch: list[tuple[Any, Any, Any, float]], out: dict[str, list[Any]]) -> None:
    names = set(map(_first, batch))  # C speed; almost always one name per batch
    if len(names) == 1:
        out[batch[0][0]].extend(batch)
        return
    for point in batch:
        out[point[0]].append(point)


@contextmanager
def _ingest_lock(record: RunRecord, wait: bool) -> Iterator[bool]:
    """One ingester per run at a time, so two processes never parse the same bytes.

    Yields False when ``wait`` is off and another process is ingesting right now."""
    journal = record.run_dir / "journal"
    try:
        fd = os.open(journal / ".ingest.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # no journal folder yet (or read-only): nothing to serialise
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def ingest_run(store: RunStore, record: RunRecord, wait: bool = True) -> bool:
    """Index whatever the run's journal gained; True when anything changed.

    With ``wait=False`` a reader that finds another process ingesting this run skips
    (the other one is doing the work); the runner's final ingest always waits."""
    with _ingest_lock(record, wait) as locked:
        if not locked:
            return False
        changed = _ingest_locked(store, record)
    if changed:
        _register_models(store, record.run_id)
    return changed


def _register_models(store: RunStore, run_id: str) -> None:
    """Models the run registered from inside (``Run.register_model``), once it has ended."""
    if not store.db.execute(
        "SELECT 1 FROM records WHERE run_pk=(SELECT pk FROM runs WHERE run_id=?) AND kind='model' LIMIT 1", (run_id,)
    ).fetchone():
        return
    from .registry import ModelRegistry

    ModelRegistry(store).register_pending(store.get_run(run_id))


def _ingest_locked(store: RunStore, record: RunRecord) -> bool:
    for _attempt in range(20):
        known = dict(store.db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (record.pk,)).fetchall())
        pending = _collect(record, known)
        if pending.empty() or (not pending.offsets and pending.heartbeat == record.heartbeat):
            return False
        with store.transaction() as db:
            now_known = dict(db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (record.pk,)).fetchall())
            if any(now_known.get(f, 0) != start for f, (start, _) in pending.offsets.items()):
                continue  # someone else ingested these bytes first: read again
            _apply(store, db, record, pending)
        return True
    return False


def _apply(store: RunStore, db: sqlite3.Connection, record: RunRecord, pending: _Pending) -> None:
    for name, points in pending.points.items():
        _append_series(db, record.pk, name, points)
    for kind, name, payload, ts in pending.records:
        if kind == "tag":
            store.set_tag(record.pk, name, payload, db=db)
        else:
            db.execute(
                "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
                (record.pk, kind, name, json.dumps(payload), ts),
            )
    fields: dict[str, Any] = {}
    if pending.heartbeat:
        fields["heartbeat"] = pending.heartbeat
    current, state_json = db.execute("SELECT status, target_state FROM runs WHERE pk=?", (record.pk,)).fetchone()
    status, state = RunStatus(current), json.loads(state_json or "{}")
    for event in pending.events:
        event_type = event.get("type")
        if event_type == "runner":
            state.update(runner_pid=event.get("pid"), runner_pgid=event.get("pgid"), host=event.get("host"))
            fields["target_state"] = state
        elif event_type == "host":  # the runner's host facts (sysmon): shown by `launchbay show`
            props = json.loads(db.execute("SELECT properties FROM runs WHERE pk=?", (record.pk,)).fetchone()[0] or "{}")
            props.update({f"launchbay.host.{k}": v for k, v in (event.get("facts") or {}).items()})
            fields["properties"] = props
        elif event_type == "snapshot_modified":
            # the run wrote into snapshot files in place: their blobs were set aside, so the
            # snapshot indexes (which trust known blobs) must be rebuilt
            for index in (store.root / "cache").glob("snapshot-index-*"):
                index.unlink(missing_ok=True)
            store.blobs.forget_modified()
            db.execute(
                "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
                (record.pk, "warning", "snapshot_modified", json.dumps(event.get("files")), event.get("ts")),
            )
        elif event_type == "status" and not status.is_terminal():
            status = RunStatus(event["status"])
            fields["status"] = status.value
            if status is RunStatus.RUNNING:
                fields["started"] = event["ts"]
                if event.get("child_pgid"):
                    state["child_pgid"] = event["child_pgid"]
                    fields["target_state"] = state
            if status.is_terminal():
                fields["ended"] = event["ts"]
                fields["exit_code"] = event.get("exit_code")
                if event.get("error"):
                    fields["error"] = event["error"]
    for name, (_, end) in pending.offsets.items():
        db.execute("INSERT OR REPLACE INTO offsets(run_pk, file, pos) VALUES (?,?,?)", (record.pk, name, end))
    store.update_run(record.pk, db=db, **fields)


def _append_series(db: sqlite3.Connection, run_pk: int, name: str, points: list[Any]) -> None:
    """Pack one series' new points into a chunk (merging with a small last chunk)."""
    import numpy as np

    row = db.execute(
        "SELECT id, count, last_step, min, max FROM series WHERE run_pk=? AND name=?", (run_pk, name)
    ).fetchone()
    if row is None:
        series_id = db.execute("INSERT INTO series(run_pk, name) VALUES (?,?)", (run_pk, name)).lastrowid
        count, last_step, lo, hi = 0, None, None, None
    else:
        series_id, count, last_step, lo, hi = row
    n = len(points)
    values = np.fromiter(map(_second, points), dtype=np.float64, count=n)
    stamps = np.fromiter(map(_fourth, points), dtype=np.float64, count=n)
    raw_steps = list(map(_third, points))
    if None in raw_steps:
        next_step = 0 if last_step is None else last_step + 1
        for i, step in enumerate(raw_steps):
            if step is None:
                raw_steps[i] = step = next_step
            next_step = step + 1
    steps = np.array(raw_steps, dtype=np.int64)
    last_chunk = db.execute(
        "SELECT id, n, first_step, steps, vals, ts FROM chunks WHERE series_id=? ORDER BY id DESC LIMIT 1",
        (series_id,),
    ).fetchone()
    if last_chunk is not None and last_chunk[1] < MERGE_BELOW:
        cid, old_n, old_first, old_steps, old_vals, old_ts = last_chunk
        previous = (
            np.arange(old_first, old_first + old_n, dtype=np.int64)
            if old_steps is None
            else np.frombuffer(old_steps, dtype=np.int64)
        )
        steps = np.concatenate([previous, steps])
        values = np.concatenate([np.frombuffer(old_vals, dtype=np.float64), values])
        stamps = np.concatenate([np.frombuffer(old_ts, dtype=np.float64), stamps])
        db.execute("DELETE FROM chunks WHERE id=?", (cid,))  # its points go into the new chunk
    first = int(steps[0])
    consecutive = len(steps) == 1 or bool(np.all(np.diff(steps) == 1))
    db.execute(
        "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts) VALUES (?,?,?,?,?,?,?)",
        (
            series_id,
            len(steps),
            first,
            int(steps.max()),
            None if consecutive else steps.tobytes(),
            values.tobytes(),
            stamps.tobytes(),
        ),
    )
    new_values = values[-n:]
    batch_lo, batch_hi = float(np.nanmin(new_values)), float(np.nanmax(new_values))
    batch_last_step = int(steps[-n:].max())
    db.execute(
        "UPDATE series SET count=?, last_step=?, last=?, min=?, max=? WHERE id=?",
        (
            count + n,
            batch_last_step if last_step is None else max(last_step, batch_last_step),
            float(values[-1]),
            batch_lo if lo is None else min(lo, batch_lo),
            batch_hi if hi is None else max(hi, batch_hi),
            series_id,
        ),
    )


def ingest_after_runner(store_path: str, run_id: str) -> None:
    """The local runner's last act: index the finished run's journal."""
    store = open_store(store_path)
    ingest_run(store, store.get_run(run_id))
