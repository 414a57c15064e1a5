"""Journal → store: read what a run appended since last time and index it.

Readers parse outside the write lock and commit only if nobody ingested the same
bytes meanwhile (offsets are compared inside the transaction), so the runner, a
notebook and the CLI can all catch up on one run at once without duplicates.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import runfolder as rf
from .journal_problems import note_output_lost, note_problems
from .journal_reader import Piece, read_piece
from .models import RunStatus
from .store import RunRecord, RunWriter, Store, open_store


@contextmanager
def _ingest_lock(record: RunRecord, wait: bool) -> Iterator[bool]:
    """One ingester per run at a time, so two processes never parse the same bytes.

    Yields False when ``wait`` is off and another process is ingesting right now."""
    journal = record.run_dir / rf.JOURNAL
    try:
        fd = os.open(journal / rf.INGEST_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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


READER_BUDGET_S = 0.25  # what one look by a reader (widget, sidebar, CLI) spends catching a run up


@contextmanager
def live_ingester(journal: str) -> Iterator[None]:
    """Say, for as long as this lasts, that this process keeps the run's index caught up: readers'
    looks then skip ingesting (``ingest_run(wait=False)``). The kernel drops the lock with the
    process, so a killed runner never leaves readers waiting for it."""
    fd = os.open(os.path.join(journal, rf.LIVE_INGEST_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


LIVE_SKIP_BYTES = 1 << 20  # a reader leaves a backlog larger than this to the live ingester


def _left_to_the_runner(store: Store, record: RunRecord) -> bool:
    """A reader's look leaves this run to its runner: the runner ingests it live and the journal has
    more than ``LIVE_SKIP_BYTES`` unread (a script logging fast). A smaller backlog the reader reads
    itself, so a look right after a status change or a few points still shows them."""
    if not _live_ingester_on(record):
        return False
    known = store.journal_position(record.pk)[0]
    journal = record.run_dir / rf.JOURNAL
    unread = 0
    try:
        with os.scandir(journal) as entries:
            for entry in entries:
                if rf.is_record_file(entry.name):
                    unread += max(0, entry.stat().st_size - known.get(entry.name, 0))
    except OSError:
        return False
    return unread > LIVE_SKIP_BYTES


def _live_ingester_on(record: RunRecord) -> bool:
    try:
        fd = os.open(record.run_dir / rf.JOURNAL / rf.LIVE_INGEST_LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def ingest_run(store: Store, record: RunRecord, wait: bool = True, live: bool = False) -> bool:
    """Index whatever the run's journal gained; True when anything changed.

    With ``wait=False`` (a reader: a widget's poll, the sidebar, the CLI) a reader that finds
    another process ingesting this run skips (the other one is doing the work), and one that
    ingests stops after ``READER_BUDGET_S`` of pieces: a script logging as fast as ingest goes
    would otherwise keep that one look chasing it to the run's end. Its next look goes on.
    A reader also leaves a large backlog to the run's local runner when that one keeps its
    index caught up itself (``live_ingester``; ``live`` is that runner's own look). The runner's
    final ingest always waits and reads everything."""
    if not wait and not live and _left_to_the_runner(store, record):
        return False
    with _ingest_lock(record, wait) as locked:
        if not locked:
            return False
        changed = _ingest_locked(store, record, None if wait else time.monotonic() + READER_BUDGET_S)
        if store.journal_position(record.pk)[2].is_terminal():
            store.seal(record)  # ended by a cancel or the failure check: kept once all the same
    if changed:
        _register_models(store, record.run_id)
        _register_outputs(store, record.run_id)
    return changed


def _register_outputs(store: Store, run_id: str, ending: bool = False) -> None:
    """The dataset versions a completed run made (``--output``, ``Run.register_dataset``), once
    (``ending``: its final event says Completed and is about to be applied, every file is in)."""
    from dataclasses import replace

    from .models import RunStatus

    record = store.get_run(run_id)
    if not (record.status.is_terminal() or ending):
        return
    if record.spec.get("outputs") or store.has_records(run_id, "dataset_output"):
        from .data.outputs import register_outputs

        register_outputs(store, replace(record, status=RunStatus.COMPLETED) if ending else record)


def _register_models(store: Store, run_id: str, ending: bool = False) -> None:
    """Models the run registered from inside (``Run.register_model``), once it has ended
    (``ending``: its final event is read and about to be applied, every file is in)."""
    from .registry import MODEL_RECORD, ModelRegistry

    if not store.has_records(run_id, MODEL_RECORD):
        return

    ModelRegistry(store).register_pending(store.get_run(run_id), ending=ending)


def _ingest_locked(store: Store, record: RunRecord, deadline: float | None = None) -> bool:
    """Apply the journal piece by piece (bounded memory), each piece in one transaction, until
    it is all in (or ``deadline``, a monotonic time, has passed)."""
    changed, conflicts = store.adopt_rebuilt(record), 0
    journal = record.run_dir / rf.JOURNAL
    while conflicts < 20:
        known, heartbeat, status = store.journal_position(record.pk)
        piece = read_piece(journal, known, final=status.is_terminal())
        if piece.empty() or (not piece.offsets and piece.heartbeat == heartbeat):
            return changed
        if piece.ends and piece.events and not status.is_terminal():
            store.seal(record)  # every record is in: kept once before anyone sees the run ended
            _register_models(store, record.run_id, ending=True)  # a waiter that sees the end finds them
            if any(e.get("final") and e.get("status") == "Completed" for e in piece.events):
                _register_outputs(store, record.run_id, ending=True)
        with store.write(record.pk) as run:
            if not run.claim_offsets(piece.offsets):
                conflicts += 1
                continue  # someone else ingested these bytes first: read again
            _apply(store, run, piece)
        changed = True
        if not piece.more or (deadline is not None and time.monotonic() > deadline):
            return changed
    return changed


def _apply(store: Store, run: RunWriter, pending: Piece) -> None:
    """One journal piece onto the run, inside the batch ``run`` (one transaction)."""
    for name, points in pending.points.items():
        dropped = run.append_points(name, points)
        if dropped:
            pending.refuse(name, dropped, "a step without a number, counted on past 2**63 - 1")
    if pending.rounded:  # after the points: their series exist
        run.mark_rounded(sorted(pending.rounded))
    for kind, name, payload, ts in pending.records:
        if kind == "tag":
            run.set_tag(name, payload)
        else:
            run.add_record(kind, name, payload, ts)
    if pending.heartbeat:
        run.set(heartbeat=pending.heartbeat)
    for event in pending.events:
        try:
            _apply_event(store, run, event)
        except (KeyError, TypeError, ValueError):  # a damaged or unknown event: counted, skipped
            pending.unreadable += 1
    properties = note_problems(run.properties, pending)
    if properties is not None:
        run.set(properties=properties)


def _apply_event(store: Store, run: RunWriter, event: dict[str, Any]) -> None:
    """One runner event onto the run (a status event is ignored once the run is terminal)."""
    event_type = event.get("type")
    if event_type == "runner":
        pid, pgid, host, start = int(event["pid"]), int(event["pgid"]), event.get("host"), event.get("start")
        state = {**run.target_state, "runner_pid": pid, "runner_pgid": pgid}
        state["host"] = None if host is None else str(host)
        if start is not None:  # identifies the runner with its pid (a reused pid never passes for it)
            state["runner_start"] = int(start)
        run.set(target_state=state)
    elif event_type == "host":  # the runner's host facts (sysmon): shown by `launchbay show`
        facts = event.get("facts") or {}
        if not isinstance(facts, dict):
            raise ValueError("host facts are not an object")
        run.set(properties={**run.properties, **{f"launchbay.host.{k}": v for k, v in facts.items()}})
    elif event_type == "output_not_written":  # the runner could not write all of the run's output (disk full)
        run.set(properties=note_output_lost(run.properties, event))
    elif event_type == "snapshot_modified":
        # the run wrote into snapshot files in place: their blobs were set aside, so the
        # snapshot indexes (which trust known blobs) must be rebuilt
        from .snapshot import forget_snapshot_indexes

        forget_snapshot_indexes(store)
        store.blobs.forget_modified()
        run.add_record("warning", "snapshot_modified", json.dumps(event.get("files")), float(event["ts"]))
    elif event_type == "status" and not run.status.is_terminal():
        new, ts = RunStatus(event["status"]), float(event["ts"])  # checked before anything changes
        child_pgid = int(event["child_pgid"]) if event.get("child_pgid") else None
        exit_code = None if event.get("exit_code") is None else int(event["exit_code"])
        fields: dict[str, Any] = {}
        if new is RunStatus.RUNNING:
            fields["started"] = ts
            if child_pgid:
                fields["target_state"] = {**run.target_state, "child_pgid": child_pgid}
        if new.is_terminal():
            fields["ended"] = ts
            fields["exit_code"] = exit_code
            error = event.get("error")
            if error:
                fields["error"] = error if isinstance(error, dict) else {"message": str(error), "traceback": ""}
        run.transition(new, **fields)


def ingest_after_runner(store_path: str, run_id: str) -> None:
    """The local runner's last act: index the finished run's journal."""
    with open_store(store_path) as store:
        ingest_run(store, store.get_run(run_id))
