"""The journal's record format and what a metric point may hold.

Standard library only, shipped next to the in-run API (``inrun.py`` imports it) and
read by the store's ingest, so both sides agree on one definition.

A journal file (``*.jnl``) is a sequence of records, each written by one ``write``:

    magic b"\\xa7L" | version (1 byte) | payload length (4 bytes LE) | crc32 (4 bytes LE) | payload

The payload is ``marshal.dumps((kind, body))``. The crc covers version, length and payload,
so a reader can tell a damaged or half-written record from a good one and find the next
record by its magic. Files named ``*.bin`` hold the first format (a 4-byte length, then
marshal) and are still read.

A metric value is stored as a float64 and a step as an int64, exactly: anything else is
refused with a reason (``point_problem``), never rounded silently.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

MAGIC = b"\xa7L"
VERSION = 2
HEADER = struct.Struct("<2sBII")
_CRC_PART = struct.Struct("<BI")
MAX_RECORD = 64 << 20  # a longer "record" is damage, not data (the writer splits batches well below)
MAX_POINTS_PER_RECORD = 50_000
INT64 = 1 << 63
POINT_KINDS = frozenset({"m"})
RECORD_KINDS = frozenset({"list", "row", "table", "image", "tag", "file"})


def encode(payload: bytes) -> bytes:
    """One framed record around an already-marshalled payload."""
    crc = zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(VERSION, len(payload))))
    return HEADER.pack(MAGIC, VERSION, len(payload), crc) + payload


def decode(data: bytes | memoryview, pos: int, final: bool) -> tuple[str, int, bytes | None]:
    """Read the record at ``pos``: (outcome, next position, payload).

    Outcomes: "ok"; "partial" (the record is not complete yet: wait, unless ``final``);
    "bad" (damaged: skipped up to the next magic); "newer" (a later format version: skipped)."""
    size = len(data)
    if size - pos < HEADER.size:
        if final and size > pos:
            return "bad", size, None
        return "partial", pos, None
    magic, version, length, crc = HEADER.unpack_from(data, pos)
    if magic != MAGIC or length > MAX_RECORD:
        return "bad", _next_magic(data, pos + 1), None
    end = pos + HEADER.size + length
    if end > size:
        if final:
            return "bad", _next_magic(data, pos + 1), None
        return "partial", pos, None
    payload = bytes(data[pos + HEADER.size : end])
    if zlib.crc32(payload, zlib.crc32(_CRC_PART.pack(version, length))) != crc:
        return "bad", _next_magic(data, pos + 1), None
    if version != VERSION:
        return "newer", end, None
    return "ok", end, payload


def _next_magic(data: bytes | memoryview, start: int) -> int:
    found = bytes(data[start:]).find(MAGIC)
    return len(data) if found < 0 else start + found


# -- what a point may hold --------------------------------------------------------------------


def exact_value(value: Any) -> float | int:
    """``value`` as a float or int that a float64 holds exactly, or ValueError saying why not."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return _exact_int(value)
    if kind is bool:
        return int(value)
    if isinstance(value, (str, bytes)):
        raise ValueError(f"a {kind.__name__} is not a number (use run.tag or run.log_row for text)")
    if value is None:
        raise ValueError("None is not a number (skip the call, or log float('nan'))")
    if isinstance(value, (list, tuple, dict, set)):
        raise ValueError(f"a {kind.__name__} is not one number (use run.log_list or run.log_table)")
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()  # NumPy scalars, 0-d arrays, tensors: a Python number (or the same scalar)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"a {kind.__name__} of more than one number (use run.log_list): {exc}") from None
        if type(value) in (float, int, bool):
            return exact_value(value)
    if isinstance(value, complex):
        raise ValueError("a complex number is not a real number (log .real and .imag)")
    try:
        as_float = float(value)
    except OverflowError:
        raise ValueError(f"{value!r} is beyond the float64 range") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a {kind.__name__} is not a number ({exc})") from None
    if math.isnan(as_float) or as_float == value:
        return as_float
    raise ValueError(f"{value!r} has no exact float64 (log float(value) to store it rounded)")


def _exact_int(value: int) -> float | int:
    if -(1 << 53) <= value <= 1 << 53:
        return value
    try:
        if float(value) == value:
            return value
    except OverflowError:
        raise ValueError(f"{value} is beyond the float64 range") from None
    raise ValueError(f"{value} has no exact float64 (log float(value) to store it rounded)")


def exact_step(step: Any) -> int | None:
    """``step`` as an int64 (or None), or ValueError saying why not."""
    if step is None or type(step) is int and -INT64 <= step < INT64:
        return step
    if isinstance(step, (bool, str, bytes)):
        raise ValueError(f"step {step!r} is not an integer")
    try:
        number = step.__index__()  # int, NumPy and 0-d PyTorch integers
    except (AttributeError, TypeError, ValueError, RuntimeError):
        try:
            as_float = float(step)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"step {step!r} is not an integer") from None
        if not as_float.is_integer():
            raise ValueError(f"step {step!r} is not an integer") from None
        number = int(as_float)
    if not -INT64 <= number < INT64:
        raise ValueError(f"step {number} is outside the 64-bit range")
    return number


def plain(value: Any) -> Any:
    """A value marshal and JSON can hold (for lists, rows, tables and tags)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):
            return str(value)
        if value is None or type(value) in (bool, int, float, str):
            return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)
