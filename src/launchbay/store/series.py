"""Metric series: points → chunk rows (``append_series``) and chunk rows → NumPy arrays (``read_series``).

A series is kept as chunks packed by the series codec (store/codec.py, its bytes) in the
index, or, once its run has ended, in the run's ``journal/sealed.series`` (store/sealed.py)
with the index pointing into it. The store's batch write calls ``append_series``.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from .connection import StoreConnection
from .records import ChildRow, RunRecord

_second, _third, _fourth = (operator.itemgetter(i) for i in range(1, 4))
_STEP_LIMIT = 1 << 63
MERGE_BELOW = 1 << 16  # a last chunk smaller than this is merged with new points (few chunks read fast)


class Series:
    """One scalar metric: parallel NumPy arrays of steps, values and timestamps."""

    def __init__(self, name: str, steps: Any, values: Any, timestamps: Any) -> None:
        self.name, self.steps, self.values, self.timestamps = name, steps, values, timestamps

    def __len__(self) -> int:
        return len(self.values)

    def to_points(self) -> list[dict[str, Any]]:
        return [
            {"step": s, "value": v, "ts": t}
            for s, v, t in zip(self.steps.tolist(), self.values.tolist(), self.timestamps.tolist())
        ]


class SeriesStore(StoreConnection):
    """Reading a run's metric series (writing goes through ``RunStore.write``)."""

    def metric_summaries(self, run: RunRecord) -> list[dict[str, Any]]:
        return [
            {"name": n, "count": c, "last": last, "last_step": s, "min": lo, "max": hi}
            for n, c, last, s, lo, hi in self.db.execute(
                "SELECT name, count, last, last_step, min, max FROM series WHERE run_pk=? ORDER BY id", (run.pk,)
            )
        ]

    def last_values(self, runs: Sequence[RunRecord | ChildRow], name: str) -> dict[int, float | None]:
        """The last value of metric ``name`` of each run that has it, by run pk, in one query."""
        found: dict[int, float | None] = {}
        for first in range(0, len(runs), 900):  # well under SQLite's limit on bound parameters
            pks = [r.pk for r in runs[first : first + 900]]
            marks = ",".join("?" * len(pks))
            found.update(
                self.db.execute(f"SELECT run_pk, last FROM series WHERE name=? AND run_pk IN ({marks})", [name, *pks])
            )
        return found

    def series_id(self, run: RunRecord, name: str) -> int | None:
        row = self.db.execute("SELECT id FROM series WHERE run_pk=? AND name=?", (run.pk, name)).fetchone()
        return None if row is None else int(row[0])

    def series_count(self, run_id: str, name: str) -> int:
        """How many points a run's series holds (0 when it has none): one indexed query."""
        row = self.db.execute(
            "SELECT s.count FROM series s JOIN runs r ON r.pk=s.run_pk WHERE r.run_id=? AND s.name=?", (run_id, name)
        ).fetchone()
        return int(row[0]) if row else 0

    def point_count(self) -> int:
        """Every metric point in the store."""
        return int(self.db.execute("SELECT COALESCE(SUM(count), 0) FROM series").fetchone()[0])

    def read_series(self, run: RunRecord, name: str, after_step: int | None = None) -> Series:
        """A whole series (or the points after ``after_step``) from its packed chunks."""
        return read_series(self.db, self.series_id(run, name), name, after_step, run.run_dir / rf.JOURNAL)


def read_series(
    db: sqlite3.Connection, series_id: int | None, name: str, after_step: int | None = None, journal: Path | None = None
) -> Series:
    """The decoder: a series' chunks (or those after ``after_step``) as NumPy arrays; ``journal``
    is the run's journal folder, where an ended run's chunks lie (``sealed.series``)."""
    from . import codec

    rows = [] if series_id is None else chunk_rows(db, series_id, after_step)
    steps, values, stamps = codec.rows_arrays(rows, None if journal is None else journal / rf.SEALED_SERIES)
    if after_step is not None:
        keep = steps > after_step
        steps, values, stamps = steps[keep], values[keep], stamps[keep]
    return Series(name, steps, values, stamps)


def chunk_rows(db: sqlite3.Connection, series_id: int, after_step: int | None = None) -> list[tuple[Any, ...]]:
    """A series' chunk rows in order, as ``codec.rows_arrays`` reads them (those past ``after_step``)."""
    sql = (
        "SELECT n, first_step, steps, vals, ts, codec, file_at, file_size FROM chunks"
        " WHERE series_id=? AND last_step > ? ORDER BY id"
    )
    if after_step is None:  # every step, -2**63 included
        return db.execute(sql.replace(" AND last_step > ?", ""), (series_id,)).fetchall()
    return db.execute(sql, (series_id, after_step)).fetchall()


def append_series(db: sqlite3.Connection, run_pk: int, name: str, points: list[Any]) -> int:
    """The encoder: pack one series' new points into a chunk (merging with a small last chunk).

    Returns how many points could not be kept (steps counted on past 2**63 - 1)."""
    import numpy as np

    from . import codec

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
        "SELECT id, n, first_step, steps, vals, ts, codec FROM chunks WHERE series_id=? ORDER BY id DESC LIMIT 1",
        (series_id,),
    ).fetchone()
    if last_chunk is not None and last_chunk[1] < MERGE_BELOW and last_chunk[6] != codec.SEALED:
        old_steps, old_values, old_stamps = codec.row_arrays(last_chunk[1:])
        steps = np.concatenate([old_steps, steps])
        values = np.concatenate([old_values, values])
        stamps = np.concatenate([old_stamps, stamps])
        db.execute("DELETE FROM chunks WHERE id=?", (last_chunk[0],))  # its points go into the new chunk
    db.execute(
        "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts, codec) VALUES (?,?,?,?,?,?,?,?)",
        (series_id, *codec.chunk_row(steps, values, stamps)),
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
