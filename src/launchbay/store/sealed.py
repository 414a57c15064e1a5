"""Sealing an ended run: its points leave the journal for one packed file, kept once.

While a run goes on, its journal (``journal/*.jnl``) is the truth and the index holds packed
chunks of what was ingested so far. Once the run has ended and every journal byte is in the
index, ``seal`` keeps each point once:

1. the journal's other records (tags, tables, images, ...) are copied verbatim to
   ``journal/sealed.records``, then the run's series, packed (store/codec.py), to
   ``journal/sealed.series`` (each written aside, flushed to disk, then renamed). The rename of
   ``sealed.series``, whose trailer names the journal files it replaces and their sizes, is the
   commit point: from then on readers skip those bytes (bytes a mirror appends later are read);
2. one index transaction turns the run's chunks into pointers into ``sealed.series`` (codec 2);
3. the replaced journal files are deleted.

A crash after any step leaves a store that reads the same points; the next ``seal`` finishes the
job. ``launchbay store repair`` reads ``sealed.series`` back as pointers (``adopt``), after
``mend`` has checked it.

Layout (``LBSEAL02``; files of ``LBSEAL01``, without frames or a trailer checksum, are still read)::

    MAGIC | frame, chunk | frame, chunk | ... | trailer JSON | length, CRC-32 of the JSON, MAGIC

Each chunk carries its own checksum (store/codec.py); the frame in front of it (``LBCK``, the
series' name, the chunk's size, a CRC-32 of both) lets ``mend`` find every chunk again when the
trailer is cut or damaged, so a truncated file loses only what was cut off.
"""

from __future__ import annotations

import json
import marshal
import mmap
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..tracking.journalfmt import decode as decode_record
from ..tracking.journalfmt import encode as encode_record
from .dialect import Db

SERIES = rf.SEALED_SERIES
RECORDS = rf.SEALED_RECORDS
MAGIC_V1 = b"LBSEAL01"
MAGIC = b"LBSEAL02"
_TRAILER_V1 = struct.Struct("<Q8s")  # trailer length, MAGIC_V1
_TRAILER = struct.Struct("<QI4x8s")  # trailer length, its CRC-32, MAGIC
_FRAME = struct.Struct("<4sIQII")  # b"LBCK", name length, chunk size, CRC-32 of the rest and the name, flags
INTS, ROUNDED = 1, 2  # frame flags: the series' kind, so that chunks found without the trailer read right
_FRAME_MAGIC = b"LBCK"
DAMAGED = ".damaged-"  # sealed.series.damaged-<time>: a file repair set aside (never deleted by launchbay)
COPY_FROM = 1 << 19  # a packed chunk this long is sealed as it is; shorter ones (an ingest piece is
# ~100,000 points) are packed again into chunks of CHUNK_POINTS, which read ~25% faster
WINDOW = 4 << 20  # journal bytes read at a time while sealing
CHUNK_POINTS = 1 << 20  # points per sealed chunk: big enough to pack well, small enough to decode in parallel


def replaced(journal: Path) -> dict[str, int] | None:
    """The journal files a complete ``sealed.series`` replaces, with their sealed sizes; None when unsealed."""
    trailer = _trailer(journal / SERIES)
    return None if trailer is None else {str(k): int(v) for k, v in trailer["replaces"].items()}


def _trailer(path: Path) -> dict[str, Any] | None:
    """The trailer of a complete sealed file whose trailer is whole; None otherwise."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            if size < len(MAGIC) + _TRAILER_V1.size:
                return None
            fh.seek(size - 8)
            magic = fh.read(8)
            crc = None
            if magic == MAGIC and size >= len(MAGIC) + _TRAILER.size:
                fh.seek(size - _TRAILER.size)
                length, crc, _ = _TRAILER.unpack(fh.read(_TRAILER.size))
                end = size - _TRAILER.size
            elif magic == MAGIC_V1:
                fh.seek(size - _TRAILER_V1.size)
                length, _ = _TRAILER_V1.unpack(fh.read(_TRAILER_V1.size))
                end = size - _TRAILER_V1.size
            else:
                return None
            if length > end - len(MAGIC):
                return None
            fh.seek(end - length)
            data = fh.read(length)
            if crc is not None and zlib.crc32(data) != crc:
                return None
            trailer = json.loads(data)
    except (OSError, ValueError):
        return None
    return trailer if isinstance(trailer, dict) and isinstance(trailer.get("replaces"), dict) else None


# -- sealing ---------------------------------------------------------------------------------------------
def seal(db_store: Any, record: Any) -> bool:
    """Seal an ended run whose journal is wholly in the index (the caller holds its ingest lock,
    and knows the run adds nothing more: its final event is in). ``db_store`` is the RunStore.

    Returns whether anything changed."""
    journal: Path = record.run_dir / rf.JOURNAL
    try:
        names = os.listdir(journal)
    except OSError:
        return False
    point_files = sorted(n for n in names if rf.is_record_file(n))
    known = db_store.journal_position(record.pk)[0]
    sealed = replaced(journal)
    if sealed is None:
        if not point_files:
            return False  # nothing logged (or sealed before and the index moved on)
        sizes = {name: _size(journal / name) for name in point_files}
        if any(known.get(name, 0) != size for name, size in sizes.items()):
            return False  # bytes not ingested (or cut short): keep the journal as it is
        _write_records(journal, point_files, sizes)
        from .codec import CodecError  # NumPy: only when sealing, never for a listing

        try:
            _write_series(db_store.db, record.pk, journal, sizes)
        except CodecError:  # a chunk in the index fails its checksum: the journal stays the truth
            return False
        sealed = sizes
    if known.get(SERIES) is None:
        if any(known.get(name, 0) != size for name, size in sealed.items()):
            return False  # the index does not hold exactly the sealed points: it keeps its own chunks
        with db_store.transaction() as db:
            adopt(db, record.pk, journal, replace_chunks=True)
    for name, size in sealed.items():
        if name in names and _size(journal / name) <= size and known.get(name, 0) >= size:
            (journal / name).unlink(missing_ok=True)  # every byte of it is in sealed.* now
    return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _write_records(journal: Path, point_files: list[str], sizes: dict[str, int]) -> None:
    """Every record but metric points, verbatim, in the journal's format (so repair reads them back)."""
    with _aside(journal / RECORDS) as out:
        for name in point_files:
            for payload in _payloads(journal / name, sizes[name], legacy=name.endswith(rf.LEGACY_RECORDS)):
                if not _is_points(payload):
                    out.write(encode_record(payload))


def _payloads(path: Path, size: int, legacy: bool) -> Iterator[bytes]:
    """The records of a journal file's first ``size`` bytes, read a window at a time (bounded memory,
    like ingest): damaged ones skipped as ingest skipped them."""
    window = WINDOW
    with open(path, "rb") as fh:
        start = 0
        while start < size:
            fh.seek(start)
            data = fh.read(min(window, size - start))
            final = start + len(data) >= size
            pos = 0
            for payload, end in _window(data, final, legacy):
                pos = end
                if payload is not None:
                    yield payload
            if pos == 0 and not final:
                window *= 2  # one record longer than the window
            start += pos
            if not data:
                return


def _window(data: bytes, final: bool, legacy: bool) -> Iterator[tuple[bytes | None, int]]:
    """(payload or None, the position after it) for the whole records in ``data``."""
    view, pos = memoryview(data), 0
    while pos < len(data):
        if legacy:
            end = pos + 4 + int.from_bytes(data[pos : pos + 4], "little") if len(data) - pos >= 4 else len(data) + 1
            if end > len(data):
                if final:  # cut short: ingest counted it and went on
                    yield None, len(data)
                return
            yield bytes(view[pos + 4 : end]), end
            pos = end
            continue
        outcome, end, payload = decode_record(view, pos, final)
        if outcome == "partial":
            return
        yield (payload if outcome == "ok" else None), end
        pos = end


_TUPLE2 = (b")\x02", b"\xa9\x02")  # marshal: a 2-tuple (with or without its reference flag)
_KIND_M = (b"\xda\x01m", b"Z\x01m")  # the short interned string "m"
_LIST = (ord("["), 0xDB)


def _is_points(payload: bytes) -> bool:
    """A record of metric points, ``("m", [...])`` (read by its first bytes when it can be)."""
    if payload[:2] in _TUPLE2 and payload[2:5] in _KIND_M and len(payload) > 5 and payload[5] in _LIST:
        return True
    try:
        kind, body = marshal.loads(payload)
    except Exception:  # garbage stays garbage: it was counted when ingested
        return True
    return bool(kind == "m" and type(body) is list)


def _write_series(db: Db, run_pk: int, journal: Path, sizes: dict[str, int]) -> None:
    """Every series of the run, then the trailer (which commits the file)."""
    entries = []
    with _aside(journal / SERIES) as out:
        writer = _ChunkWriter(out)
        for series_id, name, count, last_step, last, lo, hi, ints, rounded in db.execute(
            "SELECT id, name, count, last_step, last, min, max, ints, rounded FROM series WHERE run_pk=? ORDER BY id",
            (run_pk,),
        ).fetchall():
            rows = db.execute(
                "SELECT n, first_step, last_step, steps, vals, ts, codec FROM chunks WHERE series_id=? ORDER BY id",
                (series_id,),
            )
            summary = {"count": count, "last_step": last_step, "last": last, "min": lo, "max": hi}
            summary |= {"ints": ints, "rounded": rounded}  # an integer series' chunks hold int64 bit patterns
            entries.append({"name": name, **summary, "chunks": writer.series(name, rows, kind_flags(summary))})
        writer.finish({"replaces": sizes, "series": entries})


class _ChunkWriter:
    """A series' chunks into sealed.series: a packed chunk of COPY_FROM points or more is copied as it
    is; small ones (a live run's ingests) and raw ones are packed again together, up to CHUNK_POINTS."""

    def __init__(self, out: Any) -> None:
        self.out, self.at = out, 0
        self._write(MAGIC)

    def _write(self, blob: bytes | memoryview) -> int:
        pad = -self.at % 8  # frames and chunks start 8-byte aligned: chunks decode without copies
        self.out.write(bytes(pad))
        self.out.write(blob)
        self.at += pad + len(blob)
        return self.at - len(blob)

    def put(self, name: str, blob: bytes | memoryview, flags: int = 0) -> int:
        """A chunk of series ``name``, behind its frame; returns where the chunk starts."""
        self._write(frame(name, len(blob), flags))
        return self._write(blob)

    def series(self, name: str, rows: Any, flags: int = 0) -> list[list[int]]:
        """[n, first step, last step, offset, size] of each chunk written for these chunk rows."""
        from . import codec  # NumPy: only when sealing

        chunks: list[list[int]] = []
        pending: list[tuple[Any, Any, Any]] = []
        for n, first, last, steps, vals, stamps, kind in rows:
            if kind == codec.PACKED and n >= COPY_FROM:
                chunks += self._pack(name, pending, flags)
                blob = codec.with_checksum(vals)
                chunks.append([n, first, last, self.put(name, blob, flags), len(blob)])
                continue
            pending.append(codec.row_arrays((n, first, steps, vals, stamps, kind)))
            if sum(len(part[0]) for part in pending) >= CHUNK_POINTS:
                chunks += self._pack(name, pending, flags)
        return chunks + self._pack(name, pending, flags)

    def _pack(self, name: str, pending: list[tuple[Any, Any, Any]], flags: int) -> list[list[int]]:
        import numpy as np

        from . import codec

        if not pending:
            return []
        steps, values, stamps = (np.concatenate(part) for part in zip(*pending))
        pending.clear()
        chunks = []
        for at in range(0, len(steps), CHUNK_POINTS):  # a damaged chunk costs at most CHUNK_POINTS points
            part = slice(at, at + CHUNK_POINTS)
            blob = codec.encode(steps[part], values[part], stamps[part])
            first, last = int(steps[at]), int(steps[part].max())
            chunks.append([len(steps[part]), first, last, self.put(name, blob, flags), len(blob)])
        return chunks

    def finish(self, trailer: dict[str, Any]) -> None:
        """The trailer, which makes the file complete."""
        data = json.dumps(trailer).encode()
        self.out.write(data + _TRAILER.pack(len(data), zlib.crc32(data), MAGIC))


def kind_flags(summary: dict[str, Any]) -> int:
    return (INTS if summary.get("ints") else 0) | (ROUNDED if summary.get("rounded") else 0)


def _frame_crc(raw: bytes, size: int, flags: int) -> int:
    return zlib.crc32(raw, zlib.crc32(struct.pack("<IQI", len(raw), size, flags)))


def frame(name: str, size: int, flags: int = 0) -> bytes:
    """The frame in front of a chunk: enough to find the chunk and its series without the trailer."""
    raw = name.encode()
    head = _FRAME.pack(_FRAME_MAGIC, len(raw), size, _frame_crc(raw, size, flags), flags) + raw
    return head + bytes(-len(head) % 8)


class _aside:
    """Write ``path`` under a temporary name; flushed to disk and renamed into place on success."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(f".{path.name}.{os.getpid()}{rf.TMP}")

    def __enter__(self) -> Any:
        self.fh = open(self.tmp, "wb")
        return self.fh

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
        finally:
            self.fh.close()
        if kind is not None:
            self.tmp.unlink(missing_ok=True)
            return
        os.replace(self.tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- the index side ---------------------------------------------------------------------------------------
def adopt_rebuilt(db_store: Any, record: Any) -> bool:
    """A rebuilt index (``store repair``) takes a sealed run's points from its sealed.series."""
    journal: Path = record.run_dir / rf.JOURNAL
    if not (journal / SERIES).is_file():
        return False
    query = "SELECT file, pos FROM offsets WHERE run_pk=?"
    if any(name == SERIES or pos for name, pos in db_store.db.execute(query, (record.pk,))):
        return False  # adopted already, or the index holds journal bytes itself (sealing finishes that)
    with db_store.transaction() as db:
        if any(name == SERIES or pos for name, pos in db.execute(query, (record.pk,))):
            return False
        return adopt(db, record.pk, journal, replace_chunks=False)


def adopt(db: Db, run_pk: int, journal: Path, replace_chunks: bool) -> bool:
    """Point the run's series at ``sealed.series`` (inside the caller's transaction).

    ``replace_chunks``: the index holds exactly the sealed points (sealing): its chunks go. Otherwise
    (a rebuilt index) the series are created from the trailer. False when there is no sealed file."""
    from .codec import SEALED

    trailer = _trailer(journal / SERIES)
    if trailer is None:
        return False
    for entry in trailer["series"]:
        row = db.execute("SELECT id FROM series WHERE run_pk=? AND name=?", (run_pk, entry["name"])).fetchone()
        if row is None:
            series_id = db.dialect.insert_id(
                db, "INSERT INTO series(run_pk, name) VALUES (?,?)", (run_pk, entry["name"])
            )
        else:
            series_id = row[0]
        if replace_chunks:
            db.execute("DELETE FROM chunks WHERE series_id=?", (series_id,))
        db.executemany(
            "INSERT INTO chunks(series_id, n, first_step, last_step, steps, vals, ts, codec, file_at, file_size)"
            " VALUES (?,?,?,?,NULL,x'',x'',?,?,?)",
            [(series_id, n, first, last, SEALED, at, size) for n, first, last, at, size in entry["chunks"]],
        )
        db.execute(
            "UPDATE series SET count=?, last_step=?, last=?, min=?, max=?, ints=?, rounded=? WHERE id=?",
            (
                *(entry["count"], entry["last_step"], entry["last"], entry["min"], entry["max"]),
                *(int(entry.get("ints") or 0), int(entry.get("rounded") or 0), series_id),  # none in older files
            ),
        )
    size = _size(journal / SERIES)
    set_offset = db.dialect.upsert("offsets", ("run_pk", "file", "pos"), ("run_pk", "file"))
    db.execute(set_offset, (run_pk, SERIES, size))
    records = _size(journal / RECORDS)
    if replace_chunks:  # those records are in the index already
        db.execute(set_offset, (run_pk, RECORDS, records))
    for name, sealed_size in trailer["replaces"].items():  # what those bytes held is in the index now
        db.execute(
            f"UPDATE offsets SET pos={db.dialect.greatest('pos', '?')} WHERE run_pk=? AND file=?",
            (int(sealed_size), run_pk, str(name)),
        )
    return True


# -- repair: keep every chunk that verifies, set a damaged file aside ----------------------------------------
def mend(journal: Path) -> tuple[list[str], int, str | None]:
    """Check a run's ``sealed.series`` before ``store repair`` adopts it. A whole file is left as it
    is. Otherwise a new one is written with every chunk whose checksum holds (found through the
    trailer, or through the frames when the trailer is cut or damaged), and the damaged file is kept
    beside it as ``sealed.series.damaged-<time>`` (a hard link: never the only copy deleted).

    Returns one line per series not fully recovered, the points known lost, and the kept file."""
    path = journal / SERIES
    try:
        with open(path, "rb") as fh:
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return [], 0, None  # no sealed file (or an empty one: nothing to keep)
    try:
        trailer = _trailer(path)
        found, kinds, lost, notes = _verified_chunks(data, trailer)
        if trailer is not None and not lost:
            return [], 0, None
        if trailer is not None:
            replaces = {str(k): int(v) for k, v in trailer["replaces"].items()}
        else:  # point files still here were sealed before the trailer went: their bytes are in the chunks
            replaces = {n: _size(journal / n) for n in os.listdir(journal) if rf.is_record_file(n)}
            notes.append("its trailer was cut or damaged, so the chunks were found by their frames")
        kept = f"{SERIES}{DAMAGED}{time.strftime('%Y%m%d-%H%M%S')}"
        while (journal / kept).exists():
            kept += "x"
        _keep(path, journal / kept)
        _rewrite(path, found, kinds, replaces)
    finally:
        data.close()
    lines = [f"run {journal.parent.name}: {note}" for note in notes]
    lines.append(f"run {journal.parent.name}: the damaged file is kept as {journal / kept} (delete it once checked)")
    return lines, sum(lost.values()), str(journal / kept)


def _keep(path: Path, kept: Path) -> None:
    """A second name for the damaged file before a new one takes its place."""
    try:
        os.link(path, kept)
    except OSError:  # a file system without hard links
        import shutil

        shutil.copy2(path, kept)


_Found = dict[str, list[tuple[int, int, int, bytes]]]


def _verified_chunks(
    data: mmap.mmap, trailer: dict[str, Any] | None
) -> tuple[_Found, dict[str, int], dict[str, int], list[str]]:
    """(series -> [(n, first, last, chunk bytes)] that verify, series -> kind flags, series -> points
    lost, notes)."""
    from . import codec

    found: _Found = {}
    kinds: dict[str, int] = {}
    lost: dict[str, int] = {}
    notes: list[str] = []
    if trailer is not None:
        for entry in trailer["series"]:
            name = str(entry["name"])
            found.setdefault(name, [])
            kinds[name] = kind_flags(entry)
            for n, first, last, at, size in entry["chunks"]:
                blob = data[at : at + size]
                try:
                    if len(blob) != size:
                        raise codec.CodecError("cut off")
                    codec.verify(blob)
                    if codec.points(blob) != n:
                        raise codec.CodecError("its point count is not the trailer's")
                except (codec.CodecError, struct.error):
                    lost[name] = lost.get(name, 0) + int(n)
                    notes.append(f"metric {name!r}: {int(n):,} points (steps {first}..{last}) failed their checksum")
                    continue
                found[name].append((int(n), int(first), int(last), blob))
        return found, kinds, lost, notes
    if data[: len(MAGIC)] != MAGIC:
        notes.append("its file is of the first sealed layout, without frames: no chunk could be found again")
        return found, kinds, lost, notes
    pos = len(MAGIC)
    while True:
        at = data.find(_FRAME_MAGIC, pos)
        if at < 0 or at + _FRAME.size > len(data):
            break
        pos = at + len(_FRAME_MAGIC)
        if at % 8:
            continue
        _, name_len, size, crc, flags = _FRAME.unpack_from(data, at)
        raw = data[at + _FRAME.size : at + _FRAME.size + name_len]
        if len(raw) != name_len or _frame_crc(raw, size, flags) != crc:
            continue
        name = raw.decode(errors="replace")
        start = at + _FRAME.size + name_len
        start += -start % 8
        blob = data[start : start + size]
        try:
            if len(blob) != size:
                raise codec.CodecError("cut off")
            codec.verify(blob)
            steps = codec.decode(blob)[0]
        except (codec.CodecError, struct.error):
            n = codec.points(blob) if len(blob) >= 8 else 0
            lost[name] = lost.get(name, 0) + n
            notes.append(f"metric {name!r}: a chunk of about {n:,} points failed its checksum or was cut off")
            continue
        found.setdefault(name, []).append((len(steps), int(steps[0]), int(steps.max()), blob))
        kinds[name] = flags
        pos = start + size
    return found, kinds, lost, notes


def _rewrite(path: Path, found: _Found, kinds: dict[str, int], replaces: dict[str, int]) -> None:
    """A new sealed file of the chunks that verified, with their summaries computed again."""
    import numpy as np

    from . import codec

    entries = []
    with _aside(path) as out:
        writer = _ChunkWriter(out)
        for name, chunks in found.items():
            if not chunks:
                continue
            flags = kinds.get(name, 0)
            number = int if flags & INTS else float
            count, last_step, last, lo, hi = 0, None, None, None, None
            placed = []
            for n, first, last_of_chunk, blob in chunks:
                steps, values, _ = codec.decode(blob)
                values = values.view(np.int64) if flags & INTS else values  # int64 bit patterns
                count += n
                if last_step is None or int(steps.max()) >= last_step:
                    last_step, last = int(steps.max()), number(values[-1])
                chunk_lo, chunk_hi = number(np.fmin.reduce(values)), number(np.fmax.reduce(values))
                lo = chunk_lo if lo is None else min(lo, chunk_lo)
                hi = chunk_hi if hi is None else max(hi, chunk_hi)
                placed.append([n, first, last_of_chunk, writer.put(name, blob, flags), len(blob)])
            entries.append(
                {"name": name, "count": count, "last_step": last_step, "last": last, "min": lo, "max": hi,
                 "ints": bool(flags & INTS), "rounded": bool(flags & ROUNDED), "chunks": placed}
            )  # fmt: skip
        writer.finish({"replaces": replaces, "series": entries})
