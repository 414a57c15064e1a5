"""The metric series codec: one chunk of (steps, values, timestamps) to bytes and back.

Codec 1 (``PACKED``), lossless and decoded with a few whole-array NumPy operations:

* steps (int64) and timestamps (float64 read as their int64 bit patterns, which grow
  with the value inside a binade) are stored as their first value, first delta and
  delta-of-deltas, zigzagged: a monotone step and a regular clock cost a few bits;
* values (float64 bits) are XORed with the previous value, as in Facebook's Gorilla:
  a curve that moves slowly, or was computed in float32, leaves many zero bits;
* each of those uint64 streams is bit-packed in blocks of 128, every block at the
  width of its widest number after dropping the trailing zero bits all of them share;
* a CRC-32 of the whole chunk (header and streams) sits in its header (chunk version 2) and is
  checked before every decode: one flipped bit is a ``CodecError``, never wrong numbers (the XOR
  and delta streams would carry it on to every later point). Version 1 chunks, written before
  checksums, are still read.

Codec 0 (``RAW``) is the layout of schema versions 1 and 2: raw little-endian arrays in
the ``steps`` (NULL when the steps count on by one), ``vals`` and ``ts`` columns. Old
chunks stay as they are and are read through ``decode_raw``. Codec 2 (``SEALED``) is a
codec 1 chunk kept in an ended run's ``journal/sealed.series`` (store/sealed.py), the index
row holding where (``file_at``, ``file_size``).
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

RAW = 0
PACKED = 1
SEALED = 2
PARALLEL_FROM = 1 << 20  # points: below this a series decodes in one thread
BLOCK = 128  # numbers per bit-packing block (its width costs 1 byte)
_VERSION = 2
_UNCHECKED = 1  # the chunk version before checksums: read, never written
_HEAD = struct.Struct("<BxxxI")  # version, points: the part of the header every version has
_HEAD2 = struct.Struct("<BxxxII4x")  # version 2: ..., CRC-32; 16 bytes, so what follows stays aligned
_U64 = np.dtype("<u8")
_I64 = np.dtype("<i8")
_F64 = np.dtype("<f8")
_POW2 = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))  # 1, 2, 4, ... 2**63


class CodecError(ValueError):
    """A chunk that cannot be decoded (damaged, or written by a newer launchbay)."""


# -- public ------------------------------------------------------------------------------------------
def encode(steps: Any, values: Any, stamps: Any) -> bytes:
    """One chunk: parallel arrays (int64 steps, float64 values and timestamps) to bytes."""
    steps = np.ascontiguousarray(steps, dtype=_I64)
    values = np.ascontiguousarray(values, dtype=_F64)
    stamps = np.ascontiguousarray(stamps, dtype=_F64)
    n = len(values)
    if not len(steps) == len(stamps) == n:
        raise ValueError("steps, values and timestamps differ in length")
    parts: list[bytes] = []
    pos = _HEAD2.size
    for stream, array in ((_encode_dod, steps), (_encode_xor, values), (_encode_dod, stamps)):
        if n:
            pieces = stream(array.view(_U64), pos)
            parts += pieces
            pos += sum(map(len, pieces))
    crc = zlib.crc32(_HEAD.pack(_VERSION, n))
    for part in parts:
        crc = zlib.crc32(part, crc)
    return b"".join([_HEAD2.pack(_VERSION, n, crc), *parts])


def verify(blob: bytes | memoryview) -> None:
    """Raise ``CodecError`` unless the chunk's checksum matches its bytes (version 1 chunks have
    none: they pass when their header is whole)."""
    try:
        version, n = _HEAD.unpack_from(blob, 0)
        if version == _UNCHECKED:
            return
        if version != _VERSION:
            raise CodecError(f"a series chunk of codec version {version} (this launchbay reads up to {_VERSION})")
        crc = _HEAD2.unpack_from(blob, 0)[2]
    except struct.error as exc:
        raise CodecError(f"a damaged series chunk ({exc})") from exc
    body = memoryview(blob)[_HEAD2.size :]
    if zlib.crc32(body, zlib.crc32(_HEAD.pack(version, n))) != crc:  # zlib lets go of the GIL
        raise CodecError("a damaged series chunk (its checksum does not match its bytes)")


def with_checksum(blob: bytes) -> bytes:
    """A chunk in the current version: a version 1 chunk gets its checksum (the streams stay as they
    are: their alignment is the same), after a decode has shown it whole."""
    if _HEAD.unpack_from(blob, 0)[0] != _UNCHECKED:
        return blob
    decode(blob)
    n = points(blob)
    body = memoryview(blob)[_HEAD.size :]
    return _HEAD2.pack(_VERSION, n, zlib.crc32(body, zlib.crc32(_HEAD.pack(_VERSION, n)))) + bytes(body)


def points(blob: bytes | memoryview) -> int:
    """How many points a chunk holds (from its header)."""
    return int(_HEAD.unpack_from(blob, 0)[1])


def decode(blob: bytes | memoryview) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays ``encode`` was given, bit for bit (NaN payloads and -0.0 included)."""
    n = points(blob)
    steps, values, stamps = np.empty(n, _I64), np.empty(n, _F64), np.empty(n, _F64)
    decode_into(blob, steps, values, stamps)
    return steps, values, stamps


def decode_into(blob: bytes | memoryview, steps: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> None:
    """Decode a chunk into slices of bigger arrays (exactly ``points(blob)`` long each): no copy, and
    nothing is written outside them, so chunks can be decoded in parallel threads."""
    verify(blob)
    try:
        version, n = _HEAD.unpack_from(blob, 0)
        if not len(steps) == len(values) == len(stamps) == n:
            raise ValueError("the arrays to decode into are not the chunk's length")
        pos = _HEAD2.size if version == _VERSION else _HEAD.size
        if n:
            pos = _decode_dod(blob, pos, steps.view(_U64))
            pos = _decode_xor(blob, pos, values.view(_U64))
            pos = _decode_dod(blob, pos, stamps.view(_U64))
    except CodecError:
        raise
    except (struct.error, IndexError, ValueError) as exc:
        raise CodecError(f"a damaged series chunk ({exc})") from exc
    if pos != len(blob):
        raise CodecError("a damaged series chunk (its length does not match)")


def decode_raw(n: int, first_step: int, steps: bytes | None, values: bytes, stamps: bytes) -> tuple[Any, Any, Any]:
    """A chunk in the first layout (codec 0)."""
    step_arr = np.arange(first_step, first_step + n, dtype=np.int64) if steps is None else np.frombuffer(steps, _I64)
    return step_arr, np.frombuffer(values, _F64), np.frombuffer(stamps, _F64)


# -- chunk rows (n, first_step, steps, vals, ts, codec, file_at, file_size of the ``chunks`` table) -------
def chunk_row(steps: Any, values: Any, stamps: Any) -> tuple[int, int, int, None, bytes, bytes, int]:
    """The columns n .. codec of a new chunk: the packed chunk goes in ``vals`` (``steps`` NULL, ``ts`` empty)."""
    return len(steps), int(steps[0]), int(steps.max()), None, encode(steps, values, stamps), b"", PACKED


def row_arrays(row: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """One chunk row kept in the index (codec 0 or 1) as arrays."""
    n, first, steps, values, stamps, codec = row[:6]
    if codec == PACKED:
        return decode(values)
    if codec == RAW:
        return decode_raw(n, first, steps, values, stamps)
    raise CodecError(f"a series chunk of codec {codec} here (this launchbay reads {RAW} to {SEALED})")


def rows_arrays(rows: list[tuple[Any, ...]], sealed: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunk rows as one series, decoded straight into three arrays (``sealed``: the run's
    sealed.series, which codec 2 rows point into); many points are decoded by a few threads at
    once (NumPy lets go of the GIL). A chunk that fails its checksum raises ``ChunkDamagedError``
    naming its steps (a row's 9th column is its last step, when the query gave it)."""
    total = sum(int(row[0]) for row in rows)
    steps, values, stamps = np.empty(total, _I64), np.empty(total, _F64), np.empty(total, _F64)
    jobs: list[tuple[Any, ...]] = []
    at = 0
    with _SealedFile(sealed if any(row[5] == SEALED for row in rows) else None) as source:
        for row in rows:
            n = int(row[0])
            part = slice(at, at + n)
            with _naming(row):
                if row[5] == PACKED:
                    jobs.append((row, row[3], steps[part], values[part], stamps[part]))
                elif row[5] == SEALED:
                    blob = source.slice(int(row[6]), int(row[7]))
                    jobs.append((row, blob, steps[part], values[part], stamps[part]))
                else:
                    steps[part], values[part], stamps[part] = row_arrays(row)
            at += n
        if len(jobs) > 1 and total >= PARALLEL_FROM:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1, 8)) as pool:
                list(pool.map(_decode_job, jobs))
        else:
            for job in jobs:
                _decode_job(job)
        del jobs
    return steps, values, stamps


def rows_verify(rows: list[tuple[Any, ...]], sealed: Path | None = None) -> None:
    """Check every chunk's checksum without decoding (a look at a series' summary: ~20 ms for 10M
    points); raises ``ChunkDamagedError`` like ``rows_arrays``."""
    with _SealedFile(sealed if any(row[5] == SEALED for row in rows) else None) as source:
        for row in rows:
            with _naming(row):
                if row[5] == PACKED:
                    verify(row[3])
                elif row[5] == SEALED:
                    verify(source.slice(int(row[6]), int(row[7])))


class ChunkDamagedError(CodecError):
    """One chunk of a series failed to decode or its checksum: ``first``/``last`` are its steps."""

    def __init__(self, message: str, points: int, first: int, last: int | None) -> None:
        super().__init__(message)
        self.points, self.first, self.last = points, first, last


class _naming:
    """Turn a ``CodecError`` while handling one chunk row into a ``ChunkDamagedError`` naming it."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _: object) -> None:
        if exc is not None and isinstance(exc, CodecError) and not isinstance(exc, ChunkDamagedError):
            row = self.row
            last = int(row[8]) if len(row) > 8 and row[8] is not None else None
            raise ChunkDamagedError(str(exc), int(row[0]), int(row[1]), last) from exc


def _decode_job(job: tuple[Any, ...]) -> None:
    with _naming(job[0]):
        decode_into(*job[1:])


class _SealedFile:
    """A sealed.series mapped read-only for the time of one read (its chunks decode from the map)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.map: mmap.mmap | None = None

    def __enter__(self) -> _SealedFile:
        if self.path is not None:
            try:
                with open(self.path, "rb") as fh:
                    self.map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise CodecError(f"the sealed series file {self.path} cannot be read ({exc})") from exc
        return self

    def slice(self, at: int, size: int) -> memoryview:
        if self.map is None or at + size > len(self.map):
            raise CodecError(f"the sealed series file {self.path} is shorter than the index says")
        return memoryview(self.map)[at : at + size]

    def __exit__(self, *_: object) -> None:
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:  # a view is still alive somewhere: the map closes when it goes
                pass


# -- the three streams -------------------------------------------------------------------------------
def _encode_dod(x: np.ndarray, pos: int) -> list[bytes]:
    """First value, first delta, then zigzagged delta-of-deltas (uint64 arithmetic wraps: lossless)."""
    head = x[:2].tobytes() if len(x) < 2 else x[:1].tobytes() + (x[1:2] - x[:1]).tobytes()
    if len(x) < 3:
        return [head]
    dod = np.diff(x, n=2).view(_I64)  # wraps modulo 2**64
    zig = ((dod << 1) ^ (dod >> 63)).view(_U64)
    return [head, *_pack(zig, pos + len(head))]


def _decode_dod(data: bytes | memoryview, pos: int, x: np.ndarray) -> int:
    """In place: [x0, d1, dod...] -> [x0, d1, deltas...] -> [x0, x1, x2...] (two cumsums)."""
    n = len(x)
    count = min(n, 2)
    x[:count] = np.frombuffer(data, dtype=_U64, count=count, offset=pos)
    pos += 8 * count
    if n < 3:
        x[1:] += x[0]
        return pos
    pos, any_bits = _unpack(data, pos, x[2:], zigzag=True)
    if not any_bits:  # every delta-of-delta is 0: an arithmetic progression
        first, delta = x[0], x[1]
        np.multiply(np.arange(n, dtype=_U64), delta, out=x)
        x += first
        return pos
    np.cumsum(x[1:], out=x[1:])
    np.cumsum(x, out=x)
    return pos


def _encode_xor(x: np.ndarray, pos: int) -> list[bytes]:
    return [x[:1].tobytes(), *_pack(x[1:] ^ x[:-1], pos + 8)]


def _decode_xor(data: bytes | memoryview, pos: int, x: np.ndarray) -> int:
    x[0] = np.frombuffer(data, dtype=_U64, count=1, offset=pos)[0]
    pos, any_bits = _unpack(data, pos + 8, x[1:], zigzag=False)
    if any_bits:
        np.bitwise_xor.accumulate(x, out=x)
    else:
        x[1:] = x[0]
    return pos


# -- bit packing -------------------------------------------------------------------------------------
# m uint64 numbers, less the trailing zero bits all of them share (``shift``), are cut into rows of
# GROUP numbers (the last padded with zeros) and blocks of BLOCK numbers; each block has the width of
# its widest number. The numbers of all rows of one width w form that width's sequence, of G rows:
# number j*G + g of the sequence goes into word group g at bits j*w.. (a group of GROUP numbers at
# width w fills exactly w words), and word k of every group is stored together, so both directions
# are whole-row operations on aligned words and no transposition is needed:
#
#   shift: uint8 | widths: uint8[blocks] | zeros to 8-byte alignment | words of width 1 | of width 2 | ...
GROUP = 64
_ROWS_PER_BLOCK = BLOCK // GROUP


def _bit_length(v: np.ndarray) -> np.ndarray:
    return np.searchsorted(_POW2, v, side="right").astype(np.uint8)


def _padded(m: int) -> int:
    return -(-m // GROUP) * GROUP if m > 0 else 0


def _row_widths(widths: np.ndarray, rows: int) -> np.ndarray:
    return np.repeat(widths, _ROWS_PER_BLOCK)[:rows]


def _classes(row_widths: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(width, its rows in order) for every width present but 0."""
    order = np.argsort(row_widths, kind="stable")
    bounds = np.searchsorted(row_widths[order], np.arange(66), side="left")
    return [(w, order[bounds[w] : bounds[w + 1]]) for w in range(1, 65) if bounds[w] < bounds[w + 1]]


def _pack(u: np.ndarray, pos: int) -> list[bytes]:
    """``u`` packed; ``pos`` is where it starts in the chunk (for the alignment)."""
    m = len(u)
    if m == 0:
        return []
    rows = _padded(m) // GROUP
    grid = np.zeros((-(-rows // _ROWS_PER_BLOCK)) * BLOCK, dtype=_U64)
    grid[:m] = u
    ored = np.bitwise_or.reduce(grid.reshape(-1, BLOCK), axis=1)
    every = int(np.bitwise_or.reduce(ored))
    shift = (every & -every).bit_length() - 1 if every else 0
    if shift:
        grid >>= np.uint64(shift)
        ored >>= np.uint64(shift)
    widths = _bit_length(ored)
    head = bytes([shift]) + widths.tobytes()
    out = [head, bytes(-(pos + len(head)) % 8)]
    table = grid.reshape(-1, GROUP)
    for w, members in _classes(_row_widths(widths, rows)):
        seq = table[members].reshape(GROUP, -1)  # row j: number j of every word group
        words = np.zeros((w + 1, seq.shape[1]), dtype=_U64)
        for j in range(GROUP):
            bit = j * w
            at, sh = bit >> 6, bit & 63
            words[at] |= seq[j] << np.uint64(sh)
            if sh and sh + w > 64:
                words[at + 1] |= seq[j] >> np.uint64(64 - sh)
        out.append(words[:w].tobytes())
    return out


def _unpack(data: bytes | memoryview, pos: int, out: np.ndarray, zigzag: bool) -> tuple[int, bool]:
    """Unpack ``len(out)`` numbers into ``out``: the end, and whether any is not 0."""
    m = len(out)
    if m == 0:
        return pos, False
    rows = _padded(m) // GROUP
    blocks = -(-rows // _ROWS_PER_BLOCK)
    head = np.frombuffer(data, dtype=np.uint8, count=1 + blocks, offset=pos)
    shift, widths = int(head[0]), head[1:]
    if shift > 63 or int(widths.max()) > 64:
        raise CodecError("a damaged series chunk (block header)")
    pos += 1 + blocks
    pos += -pos % 8
    full = m // GROUP  # whole rows go straight into ``out``; a last partial row through ``tail``
    table = out[: full * GROUP].reshape(full, GROUP)
    tail = np.zeros(GROUP, dtype=_U64)
    row_widths = _row_widths(widths, rows)
    if not row_widths.any():
        out[:] = 0
        return pos, False
    table[row_widths[:full] == 0] = 0
    for w, members in _classes(row_widths):
        count = len(members)
        words = np.frombuffer(data, dtype=_U64, count=w * count, offset=pos).reshape(w, count)
        pos += 8 * w * count
        rows_out = _unpack_width(words, w, shift, zigzag).reshape(count, GROUP)
        if members[-1] == full:  # the partial row (rows are in order: it is the last one)
            tail = rows_out[-1]
            members, rows_out = members[:-1], rows_out[:-1]
        table[members] = rows_out
    if m > full * GROUP:
        out[full * GROUP :] = tail[: m - full * GROUP]
    return pos, True


_SLOTS: dict[int, tuple[np.ndarray, ...]] = {}


def _slots(w: int) -> tuple[np.ndarray, ...]:
    """For each of the GROUP numbers at width ``w``: its word, the next word, shift, spill shift, spill mask."""
    if w not in _SLOTS:
        bits = np.arange(GROUP) * w
        at, sh = bits >> 6, (bits & 63).astype(_U64)
        spill = (sh > 0) & (sh + np.uint64(w) > 64)
        back = np.where(spill, np.uint64(64) - sh, np.uint64(0))
        keep = np.where(spill, ~np.uint64(0), np.uint64(0))
        _SLOTS[w] = (at, np.minimum(at + 1, w - 1), sh[:, None], back[:, None], keep[:, None])
    return _SLOTS[w]


def _unpack_width(words: np.ndarray, w: int, shift: int, zigzag: bool) -> np.ndarray:
    """(GROUP, groups) numbers from (w, groups) words, shifted back and unzigzagged. Few groups: one
    gather for all GROUP slots (calls cost more than the work); many: slot by slot, in cache."""
    mask = np.uint64((1 << w) - 1)
    groups = words.shape[1]
    one, back_shift = np.uint64(1), np.uint64(shift)
    if groups < 1024:
        at, nxt, sh, back, keep = _slots(w)
        values = words[at] >> sh
        values |= (words[nxt] << back) & keep
        values &= mask
        if shift:
            values <<= back_shift
        if zigzag:
            sign = values & one
            np.negative(sign, out=sign)
            values >>= one
            values ^= sign
        return values
    values = np.empty((GROUP, groups), dtype=_U64)
    sign = np.empty(groups, dtype=_U64)
    for j in range(GROUP):
        bit = j * w
        word, offset = bit >> 6, bit & 63
        v = values[j]
        np.right_shift(words[word], np.uint64(offset), out=v)
        if offset and offset + w > 64:
            v |= words[word + 1] << np.uint64(64 - offset)
        v &= mask
        if shift:
            v <<= back_shift
        if zigzag:
            np.bitwise_and(v, one, out=sign)
            np.negative(sign, out=sign)
            v >>= one
            v ^= sign
    return values
