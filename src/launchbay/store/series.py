"""Metric series: points → chunk rows (``append_series``) and chunk rows → NumPy arrays (``read_series``).

A series is kept as chunks packed by the series codec (store/codec.py, its bytes) in the
index, or, once its run has ended, in the run's ``journal/sealed.series`` (store/sealed.py)
with the index pointing into it. The store's batch write calls ``append_series``.

A series whose every value is an int (within int64) is an integer series (``series.ints``): its
chunks hold the int64 values exactly, as their bit patterns in the codec's float64 value stream
(the codec is lossless on 64-bit patterns), and it reads back as int64. Its first value that is not
an int makes it a float series: its points so far are packed again as float64. A series any value
of which was stored as a float64 that differs from what was logged is marked ``series.rounded``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import compress
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import StoreDamagedError
from .dialect import Db
from .records import ChildRow, RunRecord, Series
from .sqlindex import SqlIndex

_second, _third, _fourth = (operator.itemgetter(i) for i in range(1, 4))
_STEP_LIMIT = 1 << 63
_EXACT_FLOAT = 1 << 53  # every int up to this size is exactly a float64
_INTS = frozenset({int, bool})
REPACK_POINTS = 1 << 20  # points per chunk when an integer series is packed again as float64
MERGE_BELOW = 1 << 16  # a last chunk smaller than this is merged with new points (few chunks read fast)


class SeriesStore(SqlIndex):
    """Reading a run's metric series (writing goes through ``RunStore.write``)."""

    def metric_summaries(self, run: RunRecord) -> list[dict[str, Any]]:
        return [
            {
                "name": n, "count": c, "last": last, "last_step": s, "min": lo, "max": hi,
                "integer": bool(ints), "rounded": bool(rounded),
            }
            for n, c, last, s, lo, hi, ints, rounded in self.db.execute(
                "SELECT name, count, last, last_step, min, max, ints, rounded FROM series WHERE run_pk=? ORDER BY id",
                (run.pk,),
            )
        ]  # fmt: skip

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

    def verify_series(self, run: RunRecord, name: str) -> None:
        """Raise ``StoreDamagedError`` (naming the steps) when a chunk of the series fails its checksum."""
        from . import codec

        series_id = self.series_id(run, name)
        rows = [] if series_id is None else chunk_rows(self.db, series_id)
        journal = run.run_dir / rf.JOURNAL
        try:
            codec.rows_verify(rows, journal / rf.SEALED_SERIES)
        except codec.CodecError as exc:
            raise damaged_series(exc, name, journal, rows) from exc


def read_series(
    db: Db, series_id: int | None, name: str, after_step: int | None = None, journal: Path | None = None
) -> Series:
    """The decoder: a series' chunks (or those after ``after_step``) as NumPy arrays; ``journal``
    is the run's journal folder, where an ended run's chunks lie (``sealed.series``)."""
    from . import codec

    rows = [] if series_id is None else chunk_rows(db, series_id, after_step)
    try:
        steps, values, stamps = codec.rows_arrays(rows, None if journal is None else journal / rf.SEALED_SERIES)
    except codec.CodecError as exc:
        raise damaged_series(exc, name, journal, rows) from exc
    if after_step is not None:
        keep = steps > after_step
        steps, values, stamps = steps[keep], values[keep], stamps[keep]
    flags = None if series_id is None else db.execute("SELECT ints, rounded FROM series WHERE id=?", (series_id,))
    integer, rounded = (flags.fetchone() if flags is not None else None) or (0, 0)
    if integer:
        values = values.view("<i8")  # the bit patterns the chunks hold
    return Series(name, steps, values, stamps, bool(integer), bool(rounded))


def damaged_series(exc: Exception, name: str, journal: Path | None, rows: list[tuple[Any, ...]]) -> StoreDamagedError:
    """One line naming the run, the series and the steps that cannot be read (never wrong numbers)."""
    from .codec import ChunkDamagedError

    run = f"Run {journal.parent.name}" if journal is not None else "A run"
    if isinstance(exc, ChunkDamagedError):
        steps = f"steps {exc.first}..{exc.last}" if exc.last is not None else f"from step {exc.first}"
        where = f"{exc.points:,} points ({steps})"
    else:
        where = f"its {sum(int(row[0]) for row in rows):,} points"
    reason = str(exc).removeprefix("a damaged series chunk ").strip("()")
    return StoreDamagedError(
        f"{run}: metric {name!r} is damaged on disk, {where} cannot be read ({reason}); its other metrics"
        " and other runs read as usual. Restore the run folder from a backup, or run `launchbay store repair`:"
        " it keeps every chunk it can verify and sets the damaged file aside."
    )


def chunk_rows(db: Db, series_id: int, after_step: int | None = None) -> list[tuple[Any, ...]]:
    """A series' chunk rows in order, as ``codec.rows_arrays`` reads them (those past ``after_step``)."""
    sql = (
        "SELECT n, first_step, steps, vals, ts, codec, file_at, file_size, last_step FROM chunks"
        " WHERE series_id=? AND last_step > ? ORDER BY id"
    )
    if after_step is None:  # every step, -2**63 included
        return db.execute(sql.replace(" AND last_step > ?", ""), (series_id,)).fetchall()
    return db.execute(sql, (series_id, after_step)).fetchall()


def append_series(db: Db, run_pk: int, name: str, points: list[Any], journal: Path | None = None) -> int:
    """The encoder: pack one series' new points into a chunk (merging with a small last chunk).
    Values are ints (within int64) or floats; ``journal`` is the run's journal folder (where an
    ended run's chunks lie, read when an integer series becomes a float series).

    Returns how many points could not be kept (steps counted on past 2**63 - 1)."""
    import numpy as np

    from . import codec

    all_ints = set(map(type, map(_second, points))) <= _INTS
    row = db.execute(
        "SELECT id, count, last_step, min, max, ints FROM series WHERE run_pk=? AND name=?", (run_pk, name)
    ).fetchone()
    if row is None:
        series_id = db.dialect.insert_id(
            db, "INSERT INTO series(run_pk, name, ints) VALUES (?,?,?)", (run_pk, name, int(all_ints))
        )
        count, last_step, lo, hi, integer = 0, None, None, None, all_ints
    else:
        series_id, count, last_step, lo, hi, integer = row
        if integer and not all_ints:
            _as_floats(db, series_id, name, journal)
            integer = False
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
    if integer:
        values = np.fromiter(map(_second, points), dtype=np.int64, count=n).view(np.float64)
    else:
        values, rounded = _float_values(list(map(_second, points)))
        if rounded:
            db.execute("UPDATE series SET rounded=1 WHERE id=?", (series_id,))
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
    batch_lo: float | int
    batch_hi: float | int
    last: float | int
    if integer:  # the summary columns are REAL: past 2**53 they hold the nearest float64
        new_ints = new_values.view(np.int64)
        batch_lo, batch_hi, last = int(new_ints.min()), int(new_ints.max()), int(new_ints[-1])
    else:  # NaN-blind, no warning
        batch_lo, batch_hi = float(np.fmin.reduce(new_values)), float(np.fmax.reduce(new_values))
        last = float(values[-1])
    batch_last_step = int(steps[-n:].max())
    db.execute(
        "UPDATE series SET count=?, last_step=?, last=?, min=?, max=? WHERE id=?",
        (
            count + n,
            batch_last_step if last_step is None else max(last_step, batch_last_step),
            last,
            batch_lo if lo is None else min(lo, batch_lo),
            batch_hi if hi is None else max(hi, batch_hi),
            series_id,
        ),
    )
    return dropped


def mark_rounded(db: Db, run_pk: int, names: Sequence[str]) -> None:
    """Mark series rounded: some value of theirs was stored as a float64 that is not what was logged."""
    db.executemany("UPDATE series SET rounded=1 WHERE run_pk=? AND name=?", [(run_pk, name) for name in names])


def _float_values(values: list[Any]) -> tuple[Any, bool]:
    """Ints and floats as float64, and whether an int had no exact float64 (it is rounded then)."""
    import numpy as np

    out = np.fromiter(values, dtype=np.float64, count=len(values))
    ints = list(compress(values, map(_INTS.__contains__, map(type, values))))
    return out, bool(ints) and max(map(abs, ints)) > _EXACT_FLOAT and any(float(v) != v for v in ints)


def _as_floats(db: Db, series_id: int, name: str, journal: Path | None) -> None:
    """An integer series becomes a float series: its points so far packed again as float64 (rounded
    where an int has no exact float64), in the index."""
    import numpy as np

    from . import codec

    series = read_series(db, series_id, name, None, journal)
    ints = series.values
    floats = ints.astype(np.float64)
    big = ints[(ints > _EXACT_FLOAT) | (ints < -_EXACT_FLOAT)].tolist()
    rounded = any(float(v) != v for v in big)
    db.execute("DELETE FROM chunks WHERE series_id=?", (series_id,))
    for at in range(0, len(floats), REPACK_POINTS):
        part = slice(at, at + REPACK_POINTS)
        db.execute(
            "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts, codec) VALUES (?,?,?,?,?,?,?,?)",
            (series_id, *codec.chunk_row(series.steps[part], floats[part], series.timestamps[part])),
        )
    db.execute(
        f"UPDATE series SET ints=0, rounded={db.dialect.greatest('rounded', '?')} WHERE id=?", (int(rounded), series_id)
    )
