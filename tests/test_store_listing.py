"""Listing runs: newest first, filtered by a parameter and a metric, in pages, and a sweep's trials.

The listing reads run pks from indexes first and then only the rows of the page (bench/bench_scale.py
measures it on 100,000 runs); these tests pin what it returns, including on a store written before
those indexes existed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import launchbay.store.runs as runs
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunStore, open_store
from launchbay.store.migrations import MIGRATIONS


def fill(store: RunStore, count: int) -> list[str]:
    """``count`` finished runs, oldest first: lr cycles 0.1/0.01, loss ends at i/count, every third
    one is a trial of the first run."""
    ids = []
    for i in range(count):
        spec = RunSpec(
            script="train.py",
            experiment="a" if i % 2 else "b",
            params={"lr": (0.1, 0.01)[i % 2], "seed": i},
            tags={"n": str(i)},
            parent_run_id=ids[0] if ids and i % 3 == 0 else None,
        )
        record = store.create_run(spec, target_type="local", snapshot_id=None, properties={})
        with store.write(record.pk) as run:
            run.append_points("loss", [("loss", 1.0, 0, 0.0), ("loss", i / count, 1, 1.0)])
            run.transition(RunStatus.COMPLETED, started=1.0, ended=2.0)
        ids.append(record.run_id)
    return ids


def new_store(path: Path) -> RunStore:
    path.mkdir(parents=True)
    (path / "index.sqlite").touch()
    return open_store(path)


def check_listing(store: RunStore, ids: list[str]) -> None:
    newest = [r.run_id for r in store.list_runs(limit=None)]
    assert newest == ids[::-1]
    assert [r.run_id for r in store.list_runs(limit=5, offset=5)] == ids[::-1][5:10]
    assert store.count_runs() == len(ids) and store.count_runs(experiment="a") == len(ids) // 2

    found = store.list_runs(param=("lr", 0.1), metric_below=("loss", 0.5), limit=None)
    expected = [i for i in range(len(ids)) if i % 2 == 0 and i / len(ids) < 0.5][::-1]
    assert [r.run_id for r in found] == [ids[i] for i in expected]
    assert all(r.params["lr"] == 0.1 and r.tags["n"] == str(i) for r, i in zip(found, expected))
    assert found[0].primary_metric == {"name": "loss", "value": expected[0] / len(ids), "step": 1}
    page = store.list_runs(param=("lr", 0.1), metric_above=("loss", 0.2), limit=3, offset=1)
    assert [r.run_id for r in page] == [ids[i] for i in range(len(ids)) if i % 2 == 0 and i / len(ids) > 0.2][::-1][1:4]

    trials = store.list_runs(parent=ids[0], limit=None)
    assert [r.run_id for r in trials] == [ids[i] for i in range(3, len(ids), 3)][::-1]
    assert store.last_values(trials, "loss") == {r.pk: int(r.tags["n"]) / len(ids) for r in trials}
    assert store.statuses([ids[0], ids[1], "nope"]) == {ids[0]: RunStatus.COMPLETED, ids[1]: RunStatus.COMPLETED}


@pytest.mark.parametrize("lookup_below", [2_000, 0], ids=["rare-filters-looked-up", "common-filters-probed"])
def test_runs_list_newest_first_filter_by_param_and_metric_page_and_find_a_sweeps_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lookup_below: int
) -> None:
    monkeypatch.setattr(runs, "_LOOKUP_BELOW", lookup_below)  # both plans of a filter give the same runs
    store = new_store(tmp_path / "store")
    check_listing(store, fill(store, 40))


def test_a_store_written_before_the_listing_indexes_is_migrated_and_lists_the_same(tmp_path: Path) -> None:
    number = next(i for i, m in enumerate(MIGRATIONS) if "runs_newest" in m)
    store = new_store(tmp_path / "store")
    ids = fill(store, 40)
    store.close()
    # the store as the launchbay before those indexes left it: schema `number`, its indexes, no later columns
    db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    db.executescript(
        """
        DROP INDEX runs_newest; DROP INDEX runs_parent; DROP INDEX series_name_last_run;
        DROP INDEX series_run_name_last; DROP INDEX runs_status;
        CREATE INDEX series_name_last ON series(name, last);
        CREATE INDEX runs_created ON runs(created DESC);
        CREATE INDEX runs_status ON runs(status);
        ALTER TABLE series DROP COLUMN ints;
        ALTER TABLE series DROP COLUMN rounded;
        DROP INDEX runs_created_by;
        ALTER TABLE runs DROP COLUMN created_by;
        DROP TABLE run_inputs; DROP TABLE dataset_versions; DROP TABLE datasets;
        DROP TABLE queue; DROP TABLE queue_lock; DROP TABLE schedules; DROP TABLE schedule_fires;
        """
    )
    db.execute(f"PRAGMA user_version={number}")
    db.close()
    store = open_store(tmp_path / "store")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    check_listing(store, ids)
