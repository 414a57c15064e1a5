"""A damaged sealed series is never read as good data, and `store repair` keeps every chunk it can verify."""

from __future__ import annotations

import json
import marshal
from pathlib import Path

import numpy as np
import pytest

from conftest import CLI
from launchbay.errors import StoreDamagedError
from launchbay.ingest import ingest_run
from launchbay.models import RunSpec, RunStatus
from launchbay.store import RunRecord, RunStore, codec, open_store, sealed
from launchbay.tracking.journalfmt import encode as journal_record

POINTS = 10_000


def loss(i: int) -> float:
    return 1.0 / (i + 1) + 1e-7 * (i % 13)


def sealed_run(store: RunStore, series: dict[str, int]) -> RunRecord:
    """An ended run that logged ``series`` (name -> points) and was sealed."""
    record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    with open(journal / "p1-1.jnl", "wb") as fh:
        for name, count in series.items():
            for at in range(0, count, 2_500):
                points = [(name, loss(i), i, 1.7e9 + i * 0.01) for i in range(at, min(count, at + 2_500))]
                fh.write(journal_record(marshal.dumps(("m", points))))
        fh.write(journal_record(marshal.dumps(("tag", ("stage", "done", 1.8e9)))))
    store.end_run(record.pk, RunStatus.COMPLETED)
    record = store.get_run(record.run_id)
    ingest_run(store, record)
    assert (journal / sealed.SERIES).is_file() and not (journal / "p1-1.jnl").exists()
    return record


@pytest.fixture
def two_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    """A store with two sealed runs; the first's "loss" is sealed in chunks of 2,000 points."""
    monkeypatch.setattr(sealed, "CHUNK_POINTS", 2_000)
    monkeypatch.setattr(sealed, "COPY_FROM", 1 << 40)
    with open_store(tmp_path / "store") as store:
        damaged = sealed_run(store, {"loss": POINTS, "acc": 500}).run_id
        healthy = sealed_run(store, {"loss": 300}).run_id
    return tmp_path / "store", damaged, healthy


def series_file(store_dir: Path, run_id: str) -> Path:
    return store_dir / "runs" / run_id / "journal" / sealed.SERIES


def read_all(store: RunStore, run_id: str) -> dict[str, list[float]]:
    record = store.get_run(run_id)
    return {s["name"]: store.read_series(record, s["name"]).values.tolist() for s in store.metric_summaries(record)}


def test_a_flipped_bit_anywhere_in_a_sealed_series_is_an_error_never_wrong_numbers(two_runs) -> None:  # type: ignore[no-untyped-def]
    store_dir, damaged, healthy = two_runs
    path = series_file(store_dir, damaged)
    original = path.read_bytes()
    store = open_store(store_dir)
    expected = read_all(store, damaged)
    assert expected["loss"] == [loss(i) for i in range(POINTS)]
    errors = wrong = 0
    offsets = range(len(sealed.MAGIC), len(original), 7)  # every frame, chunk header and stream, and the trailer
    for offset in offsets:
        flipped = bytearray(original)
        flipped[offset] ^= 1 << (offset % 8)
        path.write_bytes(bytes(flipped))
        try:
            got = read_all(store, damaged)
        except StoreDamagedError as exc:
            errors += 1
            message = str(exc)
            assert damaged in message and "steps" in message and "\n" not in message
            assert "'loss'" in message or "'acc'" in message
            continue
        wrong += got != expected
        assert read_all(store, healthy)["loss"] == [loss(i) for i in range(300)]  # another run never suffers
    path.write_bytes(original)
    assert wrong == 0  # not one read gave a wrong number
    assert errors > 0.9 * len(offsets) * (sum(len(c) for c in _chunk_spans(store, damaged)) / len(original))
    assert read_all(store, damaged) == expected
    store.close()


def _chunk_spans(store: RunStore, run_id: str) -> list[range]:
    query = "SELECT file_at, file_size FROM chunks c JOIN series s ON s.id=c.series_id JOIN runs r ON r.pk=s.run_pk"
    return [range(at, at + size) for at, size in store.db.execute(query + " WHERE r.run_id=?", (run_id,))]


def test_a_damaged_chunk_names_its_run_series_and_steps_and_leaves_the_rest_readable(cli: CLI, two_runs) -> None:  # type: ignore[no-untyped-def]
    store_dir, damaged, healthy = two_runs
    store = open_store(store_dir)
    at, size = store.db.execute(
        "SELECT file_at, file_size FROM chunks c JOIN series s ON s.id=c.series_id WHERE s.name='loss' AND"
        " c.first_step=4000 AND s.run_pk=(SELECT pk FROM runs WHERE run_id=?)",
        (damaged,),
    ).fetchone()
    store.close()
    path = series_file(store_dir, damaged)
    data = bytearray(path.read_bytes())
    data[at + size // 2] ^= 0x10
    path.write_bytes(bytes(data))

    shown = cli("metrics", damaged, "loss", "--json")
    assert shown.returncode != 0 and shown.stdout == ""
    line = shown.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert damaged in line and "'loss'" in line and "2,000 points (steps 4000..5999)" in line
    text = cli("metrics", damaged)
    assert text.returncode != 0 and "'loss'" in text.stderr
    assert "acc (scalar): 500 points" in text.stdout  # the run's other metric is shown
    assert "loss (scalar)" not in text.stdout  # no summary for points that cannot be read
    other = cli("metrics", healthy, "loss", "--json")
    assert other.returncode == 0 and len(json.loads(other.stdout)["loss"]["points"]) == 300


def test_repair_of_a_sealed_file_cut_in_its_trailer_keeps_every_point(cli: CLI, two_runs) -> None:  # type: ignore[no-untyped-def]
    store_dir, damaged, _ = two_runs
    path = series_file(store_dir, damaged)
    cut = path.read_bytes()[:-30]
    path.write_bytes(cut)
    _drop_index(store_dir)

    repaired = cli("store", "repair", "--json")
    report = json.loads(repaired.stdout)
    assert repaired.returncode == 0 and report["points_lost"] == 0
    assert report["points"] == POINTS + 500 + 300
    (kept,) = report["kept_aside"]
    assert Path(kept).read_bytes() == cut  # the damaged file is still there, byte for byte
    assert any("trailer" in p and damaged in p for p in report["problems"])
    with open_store(store_dir) as store:
        assert read_all(store, damaged)["loss"] == [loss(i) for i in range(POINTS)]
        assert store.get_run(damaged).tags["stage"] == "done"  # the records beside the series too
    assert len(json.loads(cli("metrics", damaged, "loss", "--json", check=True).stdout)["loss"]["points"]) == POINTS


def test_repair_keeps_every_chunk_that_verifies_and_names_what_it_could_not_recover(cli: CLI, two_runs) -> None:  # type: ignore[no-untyped-def]
    store_dir, damaged, healthy = two_runs
    store = open_store(store_dir)
    (at,) = store.db.execute(
        "SELECT file_at FROM chunks c JOIN series s ON s.id=c.series_id WHERE s.name='loss' AND c.first_step=2000"
        " AND s.run_pk=(SELECT pk FROM runs WHERE run_id=?)",
        (damaged,),
    ).fetchone()
    store.close()
    path = series_file(store_dir, damaged)
    data = bytearray(path.read_bytes())
    data[at + 40] ^= 0x01
    path.write_bytes(bytes(data))
    old_index = (store_dir / "index.sqlite").read_bytes()
    (store_dir / "index.sqlite").write_bytes(b"not a database" + old_index[14:])  # and the index is damaged too

    repaired = cli("store", "repair")
    assert repaired.returncode != 0  # rebuilt, but not everything came back
    assert "2,000 could not be recovered" in repaired.stdout
    assert f"run {damaged}: metric 'loss': 2,000 points (steps 2000..3999) failed their checksum" in repaired.stdout
    assert "kept as" in repaired.stdout and sealed.DAMAGED in repaired.stdout
    assert list(store_dir.glob("index.sqlite.damaged-*"))  # the old index is kept too
    with open_store(store_dir) as store:
        values = read_all(store, damaged)
        assert values["loss"] == [loss(i) for i in range(POINTS) if not 2000 <= i < 4000]
        assert values["acc"] == [loss(i) for i in range(500)]
        assert read_all(store, healthy)["loss"] == [loss(i) for i in range(300)]
        assert "2,000 metric points lost" in store.get_run(damaged).properties["launchbay.repaired"]
    assert list((path.parent).glob(sealed.SERIES + sealed.DAMAGED + "*"))[0].read_bytes() == bytes(data)
    again = cli("store", "repair")  # a second repair finds a whole file: nothing more is set aside
    assert again.returncode == 0 and len(list(path.parent.glob("*" + sealed.DAMAGED + "*"))) == 1


def test_a_sealed_file_cut_in_the_middle_keeps_the_chunks_before_the_cut(cli: CLI, two_runs) -> None:  # type: ignore[no-untyped-def]
    store_dir, damaged, _ = two_runs
    path = series_file(store_dir, damaged)
    with open_store(store_dir) as store:
        (at,) = store.db.execute(
            "SELECT file_at FROM chunks c JOIN series s ON s.id=c.series_id WHERE s.name='loss' AND"
            " c.first_step=6000 AND s.run_pk=(SELECT pk FROM runs WHERE run_id=?)",
            (damaged,),
        ).fetchone()
    path.write_bytes(path.read_bytes()[: at + 100])
    cut_read = cli("metrics", damaged, "loss", "--json")  # before repair: one line, no traceback
    assert cut_read.returncode != 0 and "Traceback" not in cut_read.stderr and damaged in cut_read.stderr
    _drop_index(store_dir)
    report = json.loads(cli("store", "repair", "--json").stdout)
    with open_store(store_dir) as store:
        assert read_all(store, damaged)["loss"] == [loss(i) for i in range(6000)]
    assert report["points_lost"] == 2_000  # the chunk cut in two; what followed it is gone with the trailer
    assert any("cut off" in p for p in report["problems"])


def test_chunks_written_before_checksums_still_read(tmp_path: Path) -> None:
    steps, values, stamps = np.arange(500), np.linspace(0, 1, 500), np.full(500, 1.7e9)
    current = codec.encode(steps, values, stamps)
    old = bytes([1, 0, 0, 0]) + current[4:8] + current[16:]  # the version 1 layout: no checksum
    assert codec.decode(old)[1].tolist() == values.tolist()
    assert codec.with_checksum(old) == current
    damaged = bytearray(current)
    damaged[100] ^= 4
    with pytest.raises(codec.CodecError, match="checksum"):
        codec.decode(bytes(damaged))


def _drop_index(store_dir: Path) -> None:
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (store_dir / name).unlink(missing_ok=True)


def test_an_integer_series_found_again_by_its_frames_is_still_exact(cli: CLI, tmp_path: Path) -> None:
    counters = [2**60 + 7 * i for i in range(1_000)]
    with open_store(tmp_path / "store") as store:
        record = store.create_run(RunSpec(script="x.py"), target_type="local", snapshot_id=None, properties={})
        journal = record.run_dir / "journal"
        journal.mkdir(parents=True, exist_ok=True)
        points = [("tokens", value, i, 1.7e9 + i) for i, value in enumerate(counters)]
        (journal / "p1-1.jnl").write_bytes(journal_record(marshal.dumps(("m", points))))
        store.end_run(record.pk, RunStatus.COMPLETED)
        ingest_run(store, store.get_run(record.run_id))
    path = journal / sealed.SERIES
    path.write_bytes(path.read_bytes()[:-10])  # the trailer, which says the series is of integers, is cut
    _drop_index(tmp_path / "store")
    assert json.loads(cli("store", "repair", "--json").stdout)["points_lost"] == 0
    shown = json.loads(cli("metrics", record.run_id, "tokens", "--json", check=True).stdout)["tokens"]
    assert shown["integer"] is True and [p["value"] for p in shown["points"]] == counters


def test_store_verify_finds_a_damaged_chunk_before_a_reader_does_and_aside_lists_what_repair_kept(  # type: ignore[no-untyped-def]
    cli: CLI, two_runs
) -> None:
    store_dir, damaged, _ = two_runs
    whole = cli("store", "verify")
    assert whole.returncode == 0 and "2 runs, 3 series, 10800 points" in whole.stdout
    path = series_file(store_dir, damaged)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x20
    path.write_bytes(bytes(data))

    report = json.loads(cli("store", "verify", "--json").stdout)
    (line,) = report["damaged"]
    assert damaged in line and "'loss'" in line
    assert path.read_bytes() == bytes(data)  # verify writes nothing
    assert cli("store", "aside").stdout.strip() == "store repair kept nothing aside"
    cli("store", "repair")
    assert cli("store", "verify").returncode == 0
    kept = json.loads(cli("store", "aside", "--json").stdout)["files"]
    assert any(sealed.DAMAGED in name for name in kept) and any("index.sqlite.old-" in name for name in kept)
    cli("store", "aside", "--delete", check=True)
    assert all(not Path(name).exists() for name in kept) and path.is_file()
