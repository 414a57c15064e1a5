"""The series codec is lossless, and stores written before it (schema 2) read back unchanged."""

from __future__ import annotations

import marshal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from launchbay.ingest import ingest_run
from launchbay.models import RunSpec
from launchbay.store import RunStore, codec, open_store
from launchbay.store.migrations import MIGRATIONS, SCHEMA_VERSION
from launchbay.tracking.journalfmt import encode as journal_record

I64 = np.iinfo(np.int64)


def roundtrip(steps: object, values: object, stamps: object) -> None:
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    stamps = np.asarray(stamps, dtype=np.float64)
    got_steps, got_values, got_stamps = codec.decode(codec.encode(steps, values, stamps))
    assert got_steps.dtype == np.int64 and got_values.dtype == got_stamps.dtype == np.float64
    assert got_steps.tolist() == steps.tolist()
    assert got_values.view(np.uint64).tolist() == values.view(np.uint64).tolist()  # bit for bit
    assert got_stamps.view(np.uint64).tolist() == stamps.view(np.uint64).tolist()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 1000, 70_001])
def test_every_length_round_trips(n: int) -> None:
    rng = np.random.default_rng(n)
    steps = np.cumsum(rng.integers(0, 5, n))
    values = 2.0 * np.exp(-np.arange(n) / 500) + rng.normal(0, 0.05, n)
    stamps = 1.7e9 + np.cumsum(rng.normal(0.05, 0.002, n))
    roundtrip(steps, values, stamps)
    roundtrip(steps, values.astype(np.float32), stamps)  # float32-made values (shared zero bits)


def test_special_floats_keep_their_bits() -> None:
    nan_payload = np.array([0x7FF8_0000_0000_0BAD], dtype=np.uint64).view(np.float64)[0]
    specials = [np.nan, -np.nan, nan_payload, np.inf, -np.inf, -0.0, 0.0, 5e-324, -5e-324, 1.7976931348623157e308]
    values = np.array(specials * 20)
    roundtrip(np.arange(len(values)), values, np.full(len(values), np.nan))
    roundtrip(np.arange(len(values)), np.full(len(values), -0.0), np.zeros(len(values)))


def test_huge_negative_and_unordered_steps_round_trip() -> None:
    extremes = [I64.min, I64.max, 0, -1, I64.max, I64.min, 1, I64.max - 1, I64.min + 1]
    roundtrip(extremes * 30, np.zeros(len(extremes) * 30), np.arange(len(extremes) * 30))
    rng = np.random.default_rng(7)
    roundtrip(rng.integers(I64.min, I64.max, 5000), rng.normal(size=5000), rng.normal(size=5000) * 1e300)
    roundtrip(np.arange(I64.max - 300, I64.max), np.ones(300), np.arange(300) * 0.5)  # up to 2**63 - 1


def test_random_bit_patterns_round_trip() -> None:
    rng = np.random.default_rng(11)
    for n in (5, 500, 5000):
        bits = rng.integers(0, 2**64, size=(3, n), dtype=np.uint64)
        roundtrip(bits[0].view(np.int64), bits[1].view(np.float64), bits[2].view(np.float64))


def test_a_damaged_chunk_is_refused_not_misread() -> None:
    blob = codec.encode(np.arange(1000), np.linspace(0, 1, 1000), np.arange(1000) * 0.1)
    for damaged in (blob[:-8], blob + b"\0" * 8, bytes([9]) + blob[1:], blob[:12]):
        with pytest.raises(codec.CodecError):
            codec.decode(damaged)


def test_a_training_curve_packs_small() -> None:
    """Monotone steps, a regular clock and a float32 loss: a few bytes a point, not 24."""
    rng = np.random.default_rng(3)
    n = 100_000
    steps = np.arange(n)
    loss = (2.5 * np.exp(-steps / 20_000) + rng.normal(0, 0.05, n)).astype(np.float32)
    stamps = 1.7e9 + np.cumsum(rng.normal(0.05, 0.001, n))
    size = len(codec.encode(steps, loss, stamps))
    assert size / n < 6


# -- a store written by the previous format (schema 2, raw chunks) ----------------------------------------
def old_store(
    root: Path, series: dict[str, tuple[list[int], list[float], list[float]]], status: str = "Completed"
) -> str:
    """A store as launchbay wrote it with schema 2: raw little-endian arrays in steps/vals/ts, steps
    NULL when they count on by one. Returns the run id."""
    (root / "runs" / "old_1_abc").mkdir(parents=True)
    db = sqlite3.connect(root / "index.sqlite")
    for migration in MIGRATIONS[:2]:
        db.executescript(migration)
    db.execute("PRAGMA user_version=2")
    db.execute("INSERT INTO experiments(id, name, created) VALUES (1, 'old', 0)")
    db.execute(
        "INSERT INTO runs(pk, run_id, experiment_id, status, target, created, updated, spec, properties, target_state)"
        " VALUES (1, 'old_1_abc', 1, ?, 'local', 1, 1, '{}', '{}', '{}')",
        (status,),
    )
    for name, (steps, values, stamps) in series.items():
        sid = db.execute(
            "INSERT INTO series(run_pk, name, count, last_step, last) VALUES (1, ?, ?, ?, ?)",
            (name, len(steps), max(steps), values[-1]),
        ).lastrowid
        for at in range(0, len(steps), 3000):  # several chunks, the last one small
            s = np.array(steps[at : at + 3000], dtype=np.int64)
            consecutive = len(s) == 1 or bool(np.all(np.diff(s) == 1))
            db.execute(
                "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts) VALUES (?,?,?,?,?,?,?)",
                (
                    sid,
                    len(s),
                    int(s[0]),
                    int(s.max()),
                    None if consecutive else s.tobytes(),
                    np.array(values[at : at + 3000], dtype=np.float64).tobytes(),
                    np.array(stamps[at : at + 3000], dtype=np.float64).tobytes(),
                ),
            )
    db.commit()
    db.close()
    return "old_1_abc"


def test_a_store_written_by_the_previous_format_reads_its_series_unchanged(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    counted = (list(range(7000)), rng.normal(size=7000).tolist(), (1.7e9 + np.arange(7000) * 0.1).tolist())
    gaps = (list(range(0, 20_000, 4)), [float("nan"), -0.0, float("inf")] * 1666 + [1.0, 2.0], [0.5] * 5000)
    run_id = old_store(tmp_path / "store", {"loss": counted, "acc": gaps})

    store = RunStore(tmp_path / "store")  # migrates 2 -> 3 (the codec) and on
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    record = store.get_run(run_id)
    for name, (steps, values, stamps) in {"loss": counted, "acc": gaps}.items():
        series = store.read_series(record, name)
        assert series.steps.tolist() == steps
        assert np.array_equal(series.values, np.array(values), equal_nan=True)
        assert np.signbit(series.values).tolist() == np.signbit(values).tolist()
        assert series.timestamps.tolist() == stamps
    assert store.read_series(record, "loss", after_step=6990).steps.tolist() == list(range(6991, 7000))
    assert {codec for (codec,) in store.db.execute("SELECT codec FROM chunks")} == {codec.RAW}


def test_new_points_after_an_old_chunk_join_it_in_the_new_codec(tmp_path: Path) -> None:
    run_id = old_store(tmp_path / "store", {"loss": ([0, 1, 2], [0.5, 0.25, 0.125], [1.0, 2.0, 3.0])}, "Running")
    store = open_store(tmp_path / "store")
    record = store.get_run(run_id)
    journal = record.run_dir / "journal"
    journal.mkdir()
    later = [("loss", 0.0625, 3, 4.0), ("loss", 1e-9, None, 5.0)]
    (journal / "p1-1.jnl").write_bytes(journal_record(marshal.dumps(("m", later))))
    assert ingest_run(store, store.get_run(run_id))
    series = store.read_series(record, "loss")
    assert series.steps.tolist() == [0, 1, 2, 3, 4]
    assert series.values.tolist() == [0.5, 0.25, 0.125, 0.0625, 1e-9]
    assert series.timestamps.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [c for (c,) in store.db.execute("SELECT codec FROM chunks")] == [codec.PACKED]  # merged, re-packed


def test_a_logged_series_reads_back_exactly_through_the_api(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    now = time.time()
    points = [("loss", 1.0 / (i + 1), i * 10, now + i * 0.01) for i in range(10_000)]
    with open(journal / "p1-1.jnl", "wb") as fh:
        for at in range(0, len(points), 1000):
            fh.write(journal_record(marshal.dumps(("m", points[at : at + 1000]))))
    ingest_run(store, record)
    series = store.read_series(record, "loss")
    assert series.steps.tolist() == [p[2] for p in points]
    assert series.values.tolist() == [p[1] for p in points]
    assert series.timestamps.tolist() == [p[3] for p in points]
