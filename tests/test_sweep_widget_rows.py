"""The sweep widget's rows: a poll after the first reads only the trials that changed, and shows
exactly what a full read shows (a trial that ended, a new one, one run again in place of a cut-off one)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from launchbay.ipython.sweep_widget import RowCache, sweep_rows
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunStore, open_store
from launchbay.sweeps import get_sweep
from launchbay.sweeps.names import INDEX_TAG, RETRY_TAG, SWEEP_FILE, SWEEP_TAG


def trial(store: RunStore, sweep_id: str, index: int, loss: float | None, **tags: str) -> str:
    spec = RunSpec(
        script="trial.py",
        parent_run_id=sweep_id,
        params={"x": index / 10},
        tags={SWEEP_TAG: sweep_id, INDEX_TAG: str(index), **tags},
    )
    record = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
    if loss is not None:
        finish(store, record.run_id, loss)
    return record.run_id


def finish(store: RunStore, run_id: str, loss: float, status: RunStatus = RunStatus.COMPLETED) -> None:
    with store.write(store.get_run(run_id).pk) as run:
        run.append_points("loss", [("loss", loss, 0, time.time())])
        run.transition(status, started=time.time(), ended=time.time())


def test_a_widget_poll_reads_what_changed_and_shows_what_a_full_read_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RowCache, "OVERLAP_S", 0.0)  # a poll re-reads only what changed after the last
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "index.sqlite").touch()
    store = open_store(tmp_path / "store")
    spec = RunSpec(script="trial.py", target="sweep", tags={"launchbay.type": "sweep"})
    sweep_record = store.create_run(spec, target_type="sweep", snapshot_id=None, properties={})
    space = {"x": {"kind": "choice", "args": [i / 10 for i in range(10)]}}
    config = {
        "primary_metric": "loss",
        "goal": "minimize",
        "max_total_runs": 10,
        "sampling": {"type": "grid", "space": space},
    }
    (sweep_record.run_dir / SWEEP_FILE).write_text(json.dumps(config))
    handle = get_sweep(sweep_record.run_id, store=tmp_path / "store")
    done = trial(store, sweep_record.run_id, 0, 0.5)
    running = trial(store, sweep_record.run_id, 1, None)
    cut_off = trial(store, sweep_record.run_id, 2, None)
    finish(store, cut_off, 0.9, RunStatus.CANCELED)

    cache = RowCache()
    rows, params, metric, _ = sweep_rows(handle, cache)
    assert [r["run_id"] for r in rows] == [done, running, cut_off] and params == ["x"] and metric == "loss"
    assert rows[1]["loss"] is None and rows[1]["status"] == "Queued"

    time.sleep(0.01)
    finish(store, running, 0.25)
    again = trial(store, sweep_record.run_id, 2, 0.75, **{RETRY_TAG: cut_off})
    later = trial(store, sweep_record.run_id, 3, None)
    polled = sweep_rows(handle, cache)
    assert polled == sweep_rows(handle)  # what a fresh widget shows
    assert [r["run_id"] for r in polled[0]] == [done, running, again, later]
    assert [r["loss"] for r in polled[0]] == [0.5, 0.25, 0.75, None]
