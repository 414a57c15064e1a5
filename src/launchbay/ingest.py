"""Journal → store: read what a run appended since last time and index it.

Readers parse outside the write lock and commit only if nobody ingested the same
bytes meanwhile (offsets are compared inside the transaction), so the runner, a
notebook and the CLI can all catch up on one run at once without duplicates.
"""

from __future__ import annotations

import fcntl
import json
import operator
import os
import sqlite3
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .journal_problems import note_problems
from .journal_reader import Piece, read_piece
from .models import RunStatus
from .store import RunRecord, RunStore, open_store

_HEADER = struct.Struct("<I")
_first, _second, _third, _fourth = (operator.itemgetter(i) for i in range(4))
_STEP_LIMIT = 1 << 63
MERGE_BELOW = 4096  # a last chunk smaller than this is merged with new points


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
    """Apply the journal piece by piece (bounded memory), each piece in one transaction."""
    changed, conflicts = False, 0
    journal = record.run_dir / "journal"
    while conflicts < 20:
        known = dict(store.db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (record.pk,)).fetchall())
        heartbeat, status = store.db.execute("SELECT heartbeat, status FROM runs WHERE pk=?", (record.pk,)).fetchone()
        piece = read_piece(journal, known, final=RunStatus(status).is_terminal())
        if piece.empty() or (not piece.offsets and piece.heartbeat == heartbeat):
            return changed
        with store.transaction() as db:
            now_known = dict(db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (record.pk,)).fetchall())
            if any(now_known.get(f, 0) != start for f, (start, _) in piece.offsets.items()):
                conflicts += 1
                continue  # someone else ingested these bytes first: read again
            _apply(store, db, record, piece)
        changed = True
        if not piece.more:
            return changed
    return changed


def _apply(store: RunStore, db: sqlite3.Connection, record: RunRecord, pending: Piece) -> None:
    for name, points in pending.points.items():
        dropped = _append_series(db, record.pk, name, points)
        if dropped:
            pending.refuse(name, dropped, "a step without a number, counted on past 2**63 - 1")
    for kind, name, payload, ts in pending.records:
        if kind == "tag":
            store.set_tag(record.pk, name, payload, db=db)
        else:
            db.execute(
                "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
                (record.pk, kind, name, payload, ts),
            )
    fields: dict[str, Any] = {}
    if pending.heartbeat:
        fields["heartbeat"] = pending.heartbeat
    current, state_json, props_json = db.execute(
        "SELECT status, target_state, properties FROM runs WHERE pk=?", (record.pk,)
    ).fetchone()
    status, state = RunStatus(current), json.loads(state_json or "{}")
    for event in pending.events:
        try:
            status = _apply_event(store, db, record, event, status, state, fields)
        except (KeyError, TypeError, ValueError):  # a damaged or unknown event: counted, skipped
            pending.unreadable += 1
    properties = note_problems(fields.get("properties") or json.loads(props_json or "{}"), pending)
    if properties is not None:
        fields["properties"] = properties
    for name, (_, end) in pending.offsets.items():
        db.execute("INSERT OR REPLACE INTO offsets(run_pk, file, pos) VALUES (?,?,?)", (record.pk, name, end))
    store.update_run(record.pk, db=db, **fields)


def _apply_event(
    store: RunStore,
    db: sqlite3.Connection,
    record: RunRecord,
    event: dict[str, Any],
    status: RunStatus,
    state: dict[str, Any],
    fields: dict[str, Any],
) -> RunStatus:
    """One runner event onto the run's fields; the run's status after it."""
    event_type = event.get("type")
    if event_type == "runner":
        pid, pgid, host = int(event["pid"]), int(event["pgid"]), event.get("host")
        state.update(runner_pid=pid, runner_pgid=pgid, host=None if host is None else str(host))
        fields["target_state"] = state
    elif event_type == "host":  # the runner's host facts (sysmon): shown by `launchbay show`
        facts = event.get("facts") or {}
        if not isinstance(facts, dict):
            raise ValueError("host facts are not an object")
        props = fields.get("properties")
        if props is None:
            props = json.loads(db.execute("SELECT properties FROM runs WHERE pk=?", (record.pk,)).fetchone()[0] or "{}")
        props.update({f"launchbay.host.{k}": v for k, v in facts.items()})
        fields["properties"] = props
    elif event_type == "snapshot_modified":
        # the run wrote into snapshot files in place: their blobs were set aside, so the
        # snapshot indexes (which trust known blobs) must be rebuilt
        for index in (store.root / "cache").glob("snapshot-index-*"):
            index.unlink(missing_ok=True)
        store.blobs.forget_modified()
        db.execute(
            "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
            (record.pk, "warning", "snapshot_modified", json.dumps(event.get("files")), float(event["ts"])),
        )
    elif event_type == "status" and not status.is_terminal():
        new, ts = RunStatus(event["status"]), float(event["ts"])  # checked before anything changes
        child_pgid = int(event["child_pgid"]) if event.get("child_pgid") else None
        exit_code = None if event.get("exit_code") is None else int(event["exit_code"])
        fields["status"] = new.value
        if new is RunStatus.RUNNING:
            fields["started"] = ts
            if child_pgid:
                state["child_pgid"] = child_pgid
                fields["target_state"] = state
        if new.is_terminal():
            fields["ended"] = ts
            fields["exit_code"] = exit_code
            error = event.get("error")
            if error:
                fields["error"] = error if isinstance(error, dict) else {"message": str(error), "traceback": ""}
        return new
    return status


def _append_series(db: sqlite3.Connection, run_pk: int, name: str, points: list[Any]) -> int:
    """Pack one series' new points into a chunk (merging with a small last chunk).

    Returns how many points could not be kept (steps counted on past 2**63 - 1)."""
    import numpy as np

    row = db.execute(
        "SELECT id, count, last_step, min, max FROM series WHERE run_pk=? AND name=?", (run_pk, name)
    ).fetchone()
    if row is None:
        series_id = db.execute("INSERT INTO series(run_pk, name) VALUES (?,?)", (run_pk, name)).lastrowid
        count, last_step, lo, hi = 0, None, None, None
    else:
        series_id, count, last_step, lo, hi = row
    raw_steps = list(map(_third, points))
    dropped = 0
    if None in raw_steps:
        next_step = 0 if last_step is None else last_step + 1
        for i, step in enumerate(raw_steps):
            if step is None:
                raw_steps[i] = step = next_step
            next_step = step + 1
        if next_step > _STEP_LIMIT:  # counted on past the int64 range: those points cannot be kept
            kept = [i for i, step in enumerate(raw_steps) if step < _STEP_LIMIT]
            dropped = len(points) - len(kept)
            points, raw_steps = [points[i] for i in kept], [raw_steps[i] for i in kept]
            if not points:
                return dropped
    n = len(points)
    values = np.fromiter(map(_second, points), dtype=np.float64, count=n)
    stamps = np.fromiter(map(_fourth, points), dtype=np.float64, count=n)
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
    batch_lo, batch_hi = float(np.fmin.reduce(new_values)), float(np.fmax.reduce(new_values))  # NaN-blind, no warning
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
    return dropped


def ingest_after_runner(store_path: str, run_id: str) -> None:
    """The local runner's last act: index the finished run's journal."""
    store = open_store(store_path)
    ingest_run(store, store.get_run(run_id))
