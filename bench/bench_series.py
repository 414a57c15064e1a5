"""A 10,000,000-point series: bytes a point, reading it, downsampling it (issue 18, "Series").

Run: ``python bench/bench_series.py [--points N] [--mlflow]``. The series goes the real way:
a journal written as a run's flusher writes it (50,000-point records), ingested into a fresh
store, the run ended (which seals it), then read through the public API. The reference is the
previous codec, measured in the same run on the same points: raw chunks in the index plus the
journal left in the run folder; with ``--mlflow`` (and its venv, see mlflow_side/) MLflow's
``get_metric_history`` and bytes a point on 1,000,000 points (10M would take it hours).

The curve: monotone steps, a timestamp every ~50 ms with ~1 ms of jitter (``time.time()``), and
a noisy decaying loss computed in float32 (what ``loss.item()`` gives); a float64-noise loss
(every mantissa bit random) is measured for its bytes too.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_tracking import mlflow_side  # noqa: E402
from table import header, ms, row  # noqa: E402

BATCH = 50_000  # points a journal record holds (the in-run flusher's batches are of this order)


def curve(n: int, float32: bool, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.int64)
    stamps = 1_764_000_000.0 + np.cumsum(np.full(n, 0.05) + rng.normal(0, 0.001, n))
    loss = 2.5 * np.exp(-steps / (n / 5)) + 0.1 + rng.normal(0, 0.05, n)
    values = loss.astype(np.float32).astype(np.float64) if float32 else loss
    return steps, values, stamps


def used_bytes(index: Path) -> int:
    """The index's pages in use (free pages are reused by the next writes) plus its WAL."""
    db = sqlite3.connect(index)
    try:
        pages, free, size = (
            db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size")
        )
    finally:
        db.close()
    wal = Path(f"{index}-wal")
    return (pages - free) * size + (wal.stat().st_size if wal.exists() else 0)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(root: Path, steps: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> dict[str, Any]:
    """A store holding one ended run with the series "loss", written through journal and ingest."""
    from launchbay.ingest import ingest_run
    from launchbay.models import RunSpec, RunStatus
    from launchbay.store import open_store
    from launchbay.tracking.journalfmt import encode

    store = open_store(root)
    record = store.create_run(RunSpec(script="train.py"), target_type="local", snapshot_id=None, properties={})
    journal = record.run_dir / "journal"
    journal.mkdir(parents=True, exist_ok=True)
    with open(journal / "p1-1.jnl", "wb") as fh:
        for at in range(0, len(steps), BATCH):
            part = slice(at, at + BATCH)
            points = list(
                zip(["loss"] * len(steps[part]), values[part].tolist(), steps[part].tolist(), stamps[part].tolist())
            )
            fh.write(encode(marshal.dumps(("m", points))))
    journal_size = (journal / "p1-1.jnl").stat().st_size
    store.update_run(record.pk, status=RunStatus.RUNNING.value)
    t = time.perf_counter()
    ingest_run(store, store.get_run(record.run_id))
    ingest_s = time.perf_counter() - t
    live_index = used_bytes(store.index_path)
    store.end_run(record.pk, RunStatus.COMPLETED)
    t = time.perf_counter()
    ingest_run(store, store.get_run(record.run_id))  # the run has ended: its points are sealed
    seal_s = time.perf_counter() - t
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "store": store,
        "run_id": record.run_id,
        "journal_bytes": journal_size,
        "live_index_bytes": live_index,
        "ingest_s": ingest_s,
        "seal_s": seal_s,
        "index_bytes": used_bytes(store.index_path),
        "run_folder_bytes": folder_bytes(record.run_dir),
    }


def previous_codec_store(root: Path, steps: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> Any:
    """The same points as the previous codec kept them: raw arrays in the index (chunks of one
    journal piece, ~150,000 points), steps NULL as they count on by one."""
    from launchbay.models import RunSpec
    from launchbay.store import open_store

    store = open_store(root)
    record = store.create_run(RunSpec(script="train.py"), target_type="local", snapshot_id=None, properties={})
    with store.transaction() as db:
        sid = db.execute(
            "INSERT INTO series(run_pk, name, count) VALUES (?, 'loss', ?)", (record.pk, len(steps))
        ).lastrowid
        for at in range(0, len(steps), 150_000):
            part = slice(at, at + 150_000)
            db.execute(
                "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts, codec)"
                " VALUES (?,?,?,?,NULL,?,?,0)",
                (
                    sid,
                    len(steps[part]),
                    int(steps[part][0]),
                    int(steps[part][-1]),
                    values[part].tobytes(),
                    stamps[part].tobytes(),
                ),
            )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store, record.run_id


def best(fn: Any, times: int = 5) -> tuple[float, float]:
    """The best wall time and the best CPU time (all threads) of ``times`` calls: on a shared,
    loaded machine the CPU time is what the code costs, the wall time what a user waited."""
    walls, cpus = [], []
    for _ in range(times):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--mlflow", action="store_true", help="MLflow on 1,000,000 points beside it")
    parser.add_argument("--header", action="store_true", help="print the table's header first")
    args = parser.parse_args()
    n = args.points
    from launchbay.handle import RunHandle
    from launchbay.plots_data import downsample_minmax
    from launchbay.session import Session
    from launchbay.store import codec

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        steps, values, stamps = curve(n, float32=True)
        print(f"... building a {n:,}-point store (journal, ingest, seal)", file=sys.stderr, flush=True)
        built = build(work / "store", steps, values, stamps)
        store = built["store"]
        handle = RunHandle(built["run_id"], Session(store))
        series = handle.get_metric_series("loss")
        assert np.array_equal(series.values, values) and np.array_equal(series.steps, steps)
        assert np.array_equal(series.timestamps, stamps)
        read_s, read_cpu = best(lambda: handle.get_metric_series("loss"))
        down_s, down_cpu = best(lambda: downsample_minmax(series.steps, series.values, 2000))
        t = time.perf_counter()
        listed = handle.get_metrics("loss")["loss"]
        get_metrics_s = time.perf_counter() - t
        assert len(listed) == n
        del listed
        # the Azure v1 read (a list of floats) on 1M points, as MLflow's get_metric_history is read below
        m1 = 1_000_000
        if n == m1:
            handle_1m = handle
        else:
            built_1m = build(work / "store-1m", steps[:m1], values[:m1], stamps[:m1])
            handle_1m = RunHandle(built_1m["run_id"], Session(built_1m["store"]))
        assert handle_1m.get_metrics("loss")["loss"] == values[:m1].tolist()
        list_1m_s, list_1m_cpu = best(lambda: handle_1m.get_metrics("loss"))
        read_1m_s, read_1m_cpu = best(lambda: handle_1m.get_metric_series("loss"))

        old_store, old_id = previous_codec_store(work / "old", steps, values, stamps)
        old_record = old_store.get_run(old_id)
        old_read_s, old_read_cpu = best(lambda: old_store.read_series(old_record, "loss"))
        old_index = used_bytes(old_store.index_path)

        f64 = curve(n, float32=False)[1]
        f64_bytes = len(codec.encode(steps[:1_000_000], f64[:1_000_000], stamps[:1_000_000])) / 1_000_000
        packed_only = len(codec.encode(steps[:1_000_000], values[:1_000_000], stamps[:1_000_000])) / 1_000_000
        raw = np.concatenate(
            [steps[:1_000_000].view(np.uint8), values[:1_000_000].view(np.uint8), stamps[:1_000_000].view(np.uint8)]
        )
        import zlib

        t = time.perf_counter()
        zlib_bytes = len(zlib.compress(raw.tobytes(), 6)) / 1_000_000
        del raw
        zlib_s = time.perf_counter() - t
        copy_s, _ = best(lambda: values.copy())

    ours_bpp = (built["index_bytes"] + built["run_folder_bytes"]) / n
    before_bpp = (old_index + built["journal_bytes"]) / n
    theirs = mlflow_side(1_000_000, 10) if args.mlflow else None
    if args.header:
        print(header())
    row(
        f"series: bytes a point, ended run ({n / 1e6:,.0f}M, all)",
        "<= 8 B",
        f"{ours_bpp:,.2f} B",
        f"previous codec {before_bpp:,.1f} B",
        before_bpp / ours_bpp,
        ours_bpp <= 8,
    )
    row(
        "  index / run folder",
        "",
        f"{built['index_bytes'] / n:,.2f} B",
        f"{old_index / n:,.1f} B / {built['journal_bytes'] / n:,.1f} B",
    )
    row(
        "  packed chunk alone (float32 loss)",
        "",
        f"{packed_only:,.2f} B",
        f"zlib -6 of raw {zlib_bytes:,.2f} B",
        zlib_bytes / packed_only,
    )
    row("  packed chunk alone (float64-noise loss)", "", f"{f64_bytes:,.2f} B", "raw 24 B", 24 / f64_bytes)
    if theirs and theirs.get("bytes_per_point"):
        row(
            "  MLflow (1M points, SQLite)",
            "",
            "",
            f"{theirs['bytes_per_point']:,.1f} B",
            theirs["bytes_per_point"] / ours_bpp,
        )
    row(
        f"series: read {n / 1e6:,.0f}M points (get_metric_series)",
        "<= 200 ms",
        ms(read_s),
        f"previous codec {ms(old_read_s)}",
        old_read_s / read_s,
        read_s <= 0.2,
    )
    row("  the same, CPU time", "", ms(read_cpu), f"previous codec {ms(old_read_cpu)}", old_read_cpu / read_cpu)
    if theirs and theirs.get("history_read_s"):
        per_m = theirs["history_read_s"]
        row(
            "  MLflow get_metric_history, 1M points",
            "",
            ms(read_s / (n / 1e6)) + " /1M",
            ms(per_m),
            per_m / (read_s / (n / 1e6)),
        )
    row(f"  get_metrics() (a list of {n / 1e6:,.0f}M floats)", "", ms(get_metrics_s), "")
    history = theirs.get("history_read_s") if theirs else None
    row(
        "get_metrics() on 1M points (Azure v1 list)",
        "",
        ms(list_1m_s),
        f"MLflow get_metric_history {ms(history)}",
        history / list_1m_s if history else None,
    )
    row(
        "  the same, CPU time",
        "",
        ms(list_1m_cpu),
        f"get_metric_series {ms(read_1m_s)} (CPU {ms(read_1m_cpu)})",
    )
    row(f"  this machine: copying {n / 1e6:,.0f}M float64", "", ms(copy_s), "")
    row(
        "series: min/max downsample to 2,000 buckets",
        "<= 50 ms",
        ms(down_s),
        f"CPU {ms(down_cpu)}",
        None,
        down_s <= 0.05,
    )
    row("series: ingest (journal -> index)", "", f"{n / built['ingest_s']:,.0f}/s", f"seal {ms(built['seal_s'])}")
    print(
        json.dumps(
            {
                "points": n,
                "bytes_per_point": ours_bpp,
                "previous_bytes_per_point": before_bpp,
                "index_bytes": built["index_bytes"],
                "live_index_bytes": built["live_index_bytes"],
                "run_folder_bytes": built["run_folder_bytes"],
                "journal_bytes": built["journal_bytes"],
                "read_s": read_s,
                "read_cpu_s": read_cpu,
                "previous_read_s": old_read_s,
                "previous_read_cpu_s": old_read_cpu,
                "get_metrics_s": get_metrics_s,
                "get_metrics_1m_s": list_1m_s,
                "get_metrics_1m_cpu_s": list_1m_cpu,
                "read_1m_s": read_1m_s,
                "read_1m_cpu_s": read_1m_cpu,
                "downsample_s": down_s,
                "downsample_cpu_s": down_cpu,
                "ingest_s": built["ingest_s"],
                "seal_s": built["seal_s"],
                "zlib_s_1M": zlib_s,
                "copy_10M_s": copy_s,
                "load": os.getloadavg(),
                "mlflow": theirs,
            }
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
