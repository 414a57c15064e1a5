"""The journal's record format and what a metric point may hold.

Standard library only, shipped next to the in-run API (``inrun.py`` imports it) and
read by the store's ingest, so both sides agree on one definition.

A journal file (``*.jnl``) is a sequence of records, each written by one ``write``:

    magic b"\\xa7L" | version (1 byte) | payload length (4 bytes LE) | crc32 (4 bytes LE) | payload

The payload is ``marshal.dumps((kind, body))``. The crc covers version, length and payload,
so a reader can tell a damaged or half-written record from a good one and find the next
record by its magic. Files named ``*.bin`` hold the first format (a 4-byte length, then
marshal) and are still read.

A metric value is an int within int64, stored exactly (a series of only such ints is an
integer series), or else whatever converts to a float (a numeric string, Decimal, Fraction,
NumPy or PyTorch scalar, an int beyond int64), stored as that float64 and marked rounded when
the float differs from what was logged (``number``); only what cannot be a number is refused,
with a reason. A step is an int64, exactly (``exact_step``). The writer checks whole batches at
C speed first (``plain_batch``).
"""

from __future__ import annotations

import math
import operator
import re
import struct
import sys
import zlib
from collections.abc import Iterable
from itertools import compress
from typing import Any

MAGIC = b"\xa7L"
VERSION = 2
HEADER = struct.Struct("<2sBII")
_CRC_PART = struct.Struct("<BI")
MAX_RECORD = 64 << 20  # a longer "record" is damage, not data (the writer splits batches well below)
MAX_POINTS_PER_RECORD = 50_000
INT64 = 1 << 63
POINT_KINDS = frozenset({"m"})
RECORD_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # list, row, table, image, tag, file, model, ...
_PLAIN_VALUES = frozenset({int, float})
_PLAIN_STEPS = frozenset({int, type(None)})
_bit_length = int.bit_length
_int_type = frozenset({int}).__contains__  # of a value's type (C speed, for compress)
_name_of, _value_of, _step_of = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)


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


def number(value: Any) -> tuple[float | int, bool]:
    """``value`` as a point's value, and whether it was rounded; ValueError saying why when it is no number.

    An int (or bool, NumPy or PyTorch integer) within int64 stays that int; anything else that
    converts to a float becomes that float, rounded when it differs from ``value``."""
    kind = type(value)
    if kind is float:
        return value, False
    if kind is int or kind is bool:
        return _integer(int(value))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
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
            return number(value)
    if isinstance(value, complex):
        raise ValueError("a complex number is not a real number (log .real and .imag)")
    try:
        as_float = float(value)
    except OverflowError:
        raise ValueError(f"{value!r} is beyond the float64 range") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a {kind.__name__} is not a number ({exc})") from None
    return as_float, _rounded(as_float, value)


def _integer(value: int) -> tuple[float | int, bool]:
    if -INT64 <= value < INT64:
        return value, False
    try:
        as_float = float(value)
    except OverflowError:
        raise ValueError(f"{value} is beyond the float64 range") from None
    return as_float, as_float != value


def _text(value: str) -> tuple[float, bool]:
    """A numeric string ('1.5', '1e-3', 'nan'); exactness is judged in decimal."""
    try:
        as_float = float(value)
    except ValueError:
        raise ValueError(f"the str {value[:40]!r} is not a number (use run.tag or run.log_row for text)") from None
    try:
        from decimal import Decimal

        return as_float, _rounded(as_float, Decimal(value.strip().replace("_", "")))
    except ArithmeticError:  # decimal.InvalidOperation: a spelling float() takes and Decimal does not
        return as_float, True


def _rounded(as_float: float, value: Any) -> bool:
    try:
        return not (math.isnan(as_float) or bool(as_float == value))
    except Exception:  # an odd object's comparison: say rounded rather than exact
        return True


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


def plain_batch(batch: list[tuple[Any, Any, Any, float]]) -> bool:
    """Every point can be written as it is: str names, float or int64 values, int64/None steps.

    Checked at C speed with map/set/max; anything else goes through ``Run._checked``."""
    try:
        if set(map(type, set(map(_name_of, batch)))) != {str}:  # marshal writes a str subclass as bytes
            return False
    except TypeError:  # an unhashable name
        return False
    value_types = set(map(type, map(_value_of, batch)))
    if not value_types <= _PLAIN_VALUES:
        return False
    if int in value_types:
        ints: Iterable[int] = map(_value_of, batch)
        if len(value_types) > 1:  # ints among floats: the ints alone
            ints = compress(map(_value_of, batch), map(_int_type, map(type, map(_value_of, batch))))
        if max(map(_bit_length, ints)) > 63:  # beyond int64 (and -2**63) is checked one by one
            return False
    step_types = set(map(type, map(_step_of, batch)))
    if not step_types <= _PLAIN_STEPS:
        return False
    if int in step_types:
        steps = map(_step_of, batch) if len(step_types) == 1 else filter(None, map(_step_of, batch))
        if max(map(_bit_length, steps)) > 63:  # -2**63 (64 bits) is checked one by one
            return False
    return True


def resolve_tensors(values: list[Any]) -> None:
    """Replace one-element floating-point tensors by floats in place: one transfer per device.

    Integer and other tensors are left to ``number`` (``.item()`` keeps big ints exact)."""
    torch: Any = sys.modules.get("torch")
    tensor_type = getattr(torch, "Tensor", None)  # None while torch is still importing
    if tensor_type is None:
        return
    by_device: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        if isinstance(v, tensor_type) and v.is_floating_point() and v.numel() == 1:
            by_device.setdefault(v.device, []).append(i)
    for indices in by_device.values():
        try:
            stacked = torch.stack([values[i].detach().reshape(()).double() for i in indices])
        except Exception:  # odd tensors: number takes them one .item() at a time
            continue
        for i, resolved in zip(indices, stacked.cpu().tolist()):
            values[i] = resolved
