"""The store's write seams: every change is one batch (``RunStore.write``), a status changes only through
``RunWriter.transition`` (never out of a terminal status), and ``close()`` closes every connection.

A real store in a temporary folder; the runner's late events are appended to the journal as the runner does.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from launchbay.ingest import ingest_run
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunRecord, RunStore


def _new_run(store: RunStore, **spec: object) -> RunRecord:
    return store.create_run(RunSpec(script="train.py", **spec), target_type="local", snapshot_id=None, properties={})  # type: ignore[arg-type]


def _runner_says(record: RunRecord, **event: object) -> None:
    journal = record.run_dir / "journal"
    journal.mkdir(exist_ok=True)
    with open(journal / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"ts": time.time(), **event}) + "\n")


def test_a_canceled_run_stays_canceled_whatever_is_written_afterwards(tmp_path: Path) -> None:
    with RunStore(tmp_path / ".launchbay") as store:
        record = _new_run(store)
        assert store.update_run(record.pk, status="Running", started=time.time())
        assert store.end_run(record.pk, RunStatus.CANCELED, {"message": "canceled by the user", "traceback": ""})

        _runner_says(record, type="status", status="Completed", exit_code=0)  # the runner's late last word
        assert ingest_run(store, record)
        assert store.update_run(record.pk, status="Running") is False
        assert store.end_run(record.pk, RunStatus.FAILED, {"message": "no heartbeat", "traceback": ""}) is False
        assert store.reopen_run(record.pk) is False  # only a Failed run (a sweep whose controller died) reopens
        with store.write(record.pk) as run:
            assert run.transition(RunStatus.COMPLETED, exit_code=0) is False
            with pytest.raises(ValueError, match="transition"):
                run.set(status="Completed")

        after = store.get_run(record.run_id)
        assert after.status is RunStatus.CANCELED
        assert after.exit_code is None and after.error == {"message": "canceled by the user", "traceback": ""}


def test_a_journal_piece_is_one_batch_status_points_tags_and_records_together(tmp_path: Path) -> None:
    with RunStore(tmp_path / ".launchbay") as store:
        record = _new_run(store)
        _runner_says(record, type="runner", pid=123, pgid=123, host="box")
        _runner_says(record, type="status", status="Running", child_pgid=124)
        _runner_says(record, type="status", status="Completed", exit_code=0)
        assert ingest_run(store, record)
        assert not ingest_run(store, record)  # the offsets moved in the same batch: nothing read twice

        after = store.get_run(record.run_id)
        assert after.status is RunStatus.COMPLETED and after.exit_code == 0
        assert after.started is not None and after.ended is not None
        assert after.target_state == {"runner_pid": 123, "runner_pgid": 123, "host": "box", "child_pgid": 124}

        with store.write(record.pk) as run:  # what a registration or the failure check writes: one transaction
            run.add_record("warning", "late", json.dumps("a late note"), time.time())
            run.set_tag("checked", "yes")
            assert run.append_points("loss", [("loss", 0.5, None, 1.0), ("loss", 0.25, None, 2.0)]) == 0
        assert store.get_run(record.run_id).tags == {"checked": "yes"}
        assert store.read_series(after, "loss").values.tolist() == [0.5, 0.25]
        assert [r[1] for r in store.read_records(after, "warning")] == ["late"]


def test_a_batch_over_several_runs_is_all_or_nothing(tmp_path: Path) -> None:
    with RunStore(tmp_path / ".launchbay") as store:
        first, second = _new_run(store), _new_run(store)
        with pytest.raises(RuntimeError):
            with store.batch() as batch:
                batch.run(first.pk).transition(RunStatus.COMPLETED, exit_code=0)
                batch.run(second.pk).set_tag("half", "written")
                raise RuntimeError("the writer died half-way")
        assert store.get_run(first.run_id).status is RunStatus.QUEUED
        assert store.get_run(second.run_id).tags == {}

        with store.batch() as batch:  # a bulk import: many runs, one transaction
            for record in (first, second):
                batch.run(record.pk).transition(RunStatus.COMPLETED, exit_code=0)
        assert [store.get_run(r.run_id).status for r in (first, second)] == [RunStatus.COMPLETED] * 2


def test_children_are_a_sweeps_runs_oldest_first_newest_first_or_unfinished(tmp_path: Path) -> None:
    with RunStore(tmp_path / ".launchbay") as store:
        parent = _new_run(store)
        first, second = (_new_run(store, parent_run_id=parent.run_id) for _ in range(2))
        _new_run(store)  # not a child
        store.end_run(first.pk, RunStatus.COMPLETED)
        assert store.children(parent.run_id) == [first.run_id, second.run_id]
        assert store.children(parent.run_id, newest_first=True) == [second.run_id, first.run_id]
        assert store.children(parent.run_id, unfinished=True) == [second.run_id]


def test_close_closes_every_threads_connection_and_the_store_opens_again_on_use(tmp_path: Path) -> None:
    store = RunStore(tmp_path / ".launchbay")
    record = _new_run(store)
    seen: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: seen.append(store.db) or store.get_run(record.run_id))
    worker.start()
    worker.join()
    mine = store.db
    store.close()
    for conn in (mine, *seen):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            sqlite3.Connection.execute(conn, "SELECT 1")
    assert store.get_run(record.run_id).run_id == record.run_id  # a fresh connection
    store.close()
