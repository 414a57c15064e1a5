"""An ended run keeps each metric point once (sealed.series), and sealing never loses a point."""

from __future__ import annotations

import json
import marshal
import time
from pathlib import Path

import pytest

import launchbay
from conftest import CLI, write
from launchbay.ingest import ingest_run
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunRecord, RunStore, open_store, sealed
from launchbay.tracking.journalfmt import encode as journal_record

TRAIN = """
    from launchbay import Run
    run = Run.get_context()
    for i in range(3000):
        run.log("loss", 1.0 / (i + 1), step=i)
    run.log_row("pr", p=0.5, r=0.25)
    run.tag("stage", "done")
"""


def journal_files(record: RunRecord) -> list[str]:
    return sorted(p.name for p in (record.run_dir / "journal").iterdir() if p.suffix in (".jnl", ".bin"))


def test_an_ended_run_keeps_its_points_once_and_reads_them_back(project: Path) -> None:
    write(project, "train.py", TRAIN)
    handle = launchbay.submit("train.py")
    assert handle.wait(timeout=120) == "Completed"
    series = handle.get_metric_series("loss")
    assert series.steps.tolist() == list(range(3000))
    assert series.values.tolist() == [1.0 / (i + 1) for i in range(3000)]
    record = handle.record()
    sealed_file = record.run_dir / "journal" / sealed.SERIES

    def is_sealed() -> bool:
        return sealed_file.is_file() and not journal_files(record)

    deadline = time.time() + 60  # the runner seals right after the run's end
    while not is_sealed() and time.time() < deadline:
        time.sleep(0.1)
    assert is_sealed()
    assert sealed_file.stat().st_size < 3000 * 10
    store = handle._session.store
    chunks = store.db.execute("SELECT codec, length(vals) FROM chunks").fetchall()
    assert chunks and all(codec == 2 and size == 0 for codec, size in chunks)  # the index points into the file
    assert handle.get_metric_series("loss").values.tolist() == series.values.tolist()
    assert handle.get_metrics("pr")["pr"] == {"p": [0.5], "r": [0.25]}
    assert handle.tags["stage"] == "done"


def test_store_repair_rebuilds_a_sealed_run(cli: CLI, project: Path, tmp_path: Path) -> None:
    write(project, "train.py", TRAIN)
    run_id = cli.json("submit", "train.py")["run_id"]  # type: ignore[index]
    store = open_store(tmp_path / "store")
    ingest_run(store, store.get_run(run_id))  # sealed by now (whoever got there first)
    assert (store.get_run(run_id).run_dir / "journal" / sealed.SERIES).is_file()
    before = store.read_series(store.get_run(run_id), "loss")
    store.close()
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (tmp_path / "store" / name).unlink(missing_ok=True)

    report = json.loads(cli("store", "repair", "--json", check=True).stdout)
    assert report["runs"] == 1 and report["points"] == 3000
    shown = cli.json("show", run_id)
    assert shown["status"] == "Completed" and shown["tags"]["stage"] == "done"  # type: ignore[index]
    after = open_store(tmp_path / "store")
    series = after.read_series(after.get_run(run_id), "loss")
    assert series.steps.tolist() == before.steps.tolist() and series.values.tolist() == before.values.tolist()
    assert series.timestamps.tolist() == before.timestamps.tolist()
    metrics = cli.json("metrics", run_id)
    assert metrics["pr"]["columns"] == {"p": [0.5], "r": [0.25]}  # type: ignore[index]


# -- never drop a point that is not in the index ------------------------------------------------------------
def ended_run(tmp_path: Path, points: list[tuple[str, float, int, float]]) -> tuple[RunStore, RunRecord]:
    """A run whose journal holds ``points`` and whose status is already terminal."""
    store = open_store(tmp_path / "store")
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    (journal / "p1-1.jnl").write_bytes(journal_record(marshal.dumps(("m", points))))
    store.end_run(record.pk, RunStatus.COMPLETED)
    return store, store.get_run(record.run_id)


def test_a_journal_with_bytes_not_yet_in_the_index_is_not_sealed(tmp_path: Path) -> None:
    store, record = ended_run(tmp_path, [("loss", 0.5, i, 1.0 + i) for i in range(10)])
    assert not sealed.seal(store, record)  # nothing ingested yet
    assert journal_files(record) == ["p1-1.jnl"] and not (record.run_dir / "journal" / sealed.SERIES).exists()
    ingest_run(store, record)  # ingests, then seals
    assert journal_files(record) == []
    assert store.read_series(record, "loss").steps.tolist() == list(range(10))


def test_bytes_a_mirror_appends_after_sealing_are_still_read(tmp_path: Path) -> None:
    first = [("loss", 0.5, i, 1.0 + i) for i in range(10)]
    store, record = ended_run(tmp_path, first)
    original = (record.run_dir / "journal" / "p1-1.jnl").read_bytes()
    ingest_run(store, record)
    assert journal_files(record) == []
    # a remote target's mirror copies the whole file again, with more at its end
    later = journal_record(marshal.dumps(("m", [("loss", 0.25, 10, 11.0)])))
    (record.run_dir / "journal" / "p1-1.jnl").write_bytes(original + later)
    ingest_run(store, record)
    series = store.read_series(record, "loss")
    assert series.steps.tolist() == list(range(11)) and series.values.tolist() == [0.5] * 10 + [0.25]


def test_a_crash_between_writing_the_sealed_file_and_the_index_switch_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, record = ended_run(tmp_path, [("loss", 0.5, i, 1.0 + i) for i in range(100)])

    def crash(*_: object, **__: object) -> bool:
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(sealed, "adopt", crash)
        with pytest.raises(KeyboardInterrupt):
            ingest_run(store, record)
    assert (record.run_dir / "journal" / sealed.SERIES).is_file() and journal_files(record) == ["p1-1.jnl"]
    assert store.read_series(record, "loss").steps.tolist() == list(range(100))  # the index's own chunks
    ingest_run(store, record)  # the next ingest finishes sealing, reading nothing twice
    assert journal_files(record) == []
    assert store.read_series(record, "loss").steps.tolist() == list(range(100))
    assert {c for (c,) in store.db.execute("SELECT codec FROM chunks")} == {2}


def test_a_long_series_is_sealed_in_a_few_big_chunks(tmp_path: Path) -> None:
    points = [("loss", 1.0 / (i + 1), i, 1e9 + i * 0.05) for i in range(400_000)]
    store, record = ended_run(tmp_path, points[:1])
    journal = record.run_dir / "journal" / "p1-1.jnl"
    with open(journal, "wb") as fh:
        for at in range(0, len(points), 50_000):
            fh.write(journal_record(marshal.dumps(("m", points[at : at + 50_000]))))
            if at == 350_000:  # past the first window of journal bytes the sealer reads
                fh.write(journal_record(marshal.dumps(("tag", ("stage", "late", 2e9)))))
    ingest_run(store, record)
    assert journal_files(record) == []
    kept = (record.run_dir / "journal" / sealed.RECORDS).read_bytes()
    assert b"stage" in kept and b"late" in kept and len(kept) < 100  # the tag, not the points
    series = store.read_series(record, "loss")
    assert series.steps.tolist() == [p[2] for p in points] and series.values.tolist() == [p[1] for p in points]
    assert series.timestamps.tolist() == [p[3] for p in points]
    sizes = [n for (n,) in store.db.execute("SELECT n FROM chunks ORDER BY id")]
    assert sum(sizes) == 400_000 and len(sizes) == 1  # the ingest's chunks of ~100,000 points, packed together
