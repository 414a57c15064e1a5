"""Read a run's journal folder in bounded pieces, trusting nothing in it.

Every record is checked before it reaches the store: a damaged, cut-short or unknown
record is skipped and counted, a point whose value is no number (or whose step is no int64)
is refused and counted under its metric, and a metric a value of which was rounded to a float64
is noted. ``read_piece`` reads at most about ``PIECE_BYTES`` of new journal bytes, so ingesting
any backlog takes bounded memory.
"""

from __future__ import annotations

import json
import marshal
import operator
import os
from collections import defaultdict
from collections.abc import Iterable
from itertools import compress
from pathlib import Path
from typing import Any

from . import runfolder as rf
from .store.sealed import replaced
from .tracking.journalfmt import HEADER, MAX_RECORD, RECORD_KIND, decode, exact_step, number

PIECE_BYTES = 4 << 20
_LEGACY_HEADER = 4
_bit_length = int.bit_length
_first, _second, _third, _fourth = (operator.itemgetter(i) for i in range(4))
_NUMBERS = frozenset({int, float})
_STEPS = frozenset({int, type(None)})
_int_type = frozenset({int}).__contains__


class Piece:
    """What one pass read: applied to the store in one transaction."""

    def __init__(self) -> None:
        self.offsets: dict[str, tuple[int, int]] = {}
        self.points: dict[str, list[tuple[str, Any, Any, float]]] = defaultdict(list)
        self.records: list[tuple[str, str, str, float]] = []  # kind, name, JSON payload, ts
        self.refused: dict[str, list[Any]] = {}  # metric -> [count, reason]
        self.rounded: set[str] = set()  # metrics a value was stored rounded in
        self.events: list[dict[str, Any]] = []
        self.heartbeat: float | None = None
        self.unreadable = 0
        self.not_written: tuple[int, str] | None = None  # points, errno name (totals of the run)
        self.more = False  # the budget ran out before the journal did (or the final events wait)
        self.ends = False  # the events hold the run's final status: no record will be added

    def empty(self) -> bool:
        return not (self.offsets or self.heartbeat)

    def refuse(self, name: str, count: int, reason: str) -> None:
        entry = self.refused.setdefault(name, [0, reason])
        entry[0] += count


def read_piece(journal: Path, known: dict[str, int], final: bool, budget: int = PIECE_BYTES) -> Piece:
    """Read what the journal gained after ``known`` offsets, up to ``budget`` bytes.

    ``final``: the run has ended, so a record cut short at a file's end never completes
    (it is counted as unreadable instead of waited for)."""
    piece = Piece()
    try:
        names = sorted(os.listdir(journal))
    except OSError:
        return piece
    # events are read up to where they ended before the points files: a status written meanwhile
    # (the final one after the script's last flush) waits for the next piece with its points
    events_end = _size(journal / rf.EVENTS)
    piece.ends = _events_say_final(journal, known.get(rf.EVENTS, 0), events_end)
    final = final or piece.ends
    left = budget
    sealed = replaced(journal) if rf.SEALED_SERIES in names else None  # an ended run's points, kept once
    for name in names:
        if rf.is_record_file(name) or (name == rf.SEALED_RECORDS and sealed is not None):
            start = max(known.get(name, 0), (sealed or {}).get(name, 0))  # sealed bytes are not read again
            if left <= 0:
                piece.more = piece.more or _size(journal / name) > start
                continue
            left -= _read_records(journal / name, start, final, left, piece, claimed=known.get(name, 0))
        elif name.endswith(rf.LOST):
            _read_lost(journal / name, piece)
        elif name == rf.HEARTBEAT:
            try:
                piece.heartbeat = float((journal / name).read_text() or 0)
            except (OSError, ValueError):
                pass
    if piece.ends and not piece.more and piece.offsets:
        piece.more = True  # the final status comes in a piece of its own: the store seals the run before it
    elif not piece.more:  # status events only once the points before them are in
        _read_events(journal / rf.EVENTS, known.get(rf.EVENTS, 0), events_end, final, budget, piece)
    return piece


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_at(path: Path, pos: int, size: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(pos)
            return fh.read(size)
    except OSError:
        return b""


def _read_records(path: Path, start: int, final: bool, budget: int, piece: Piece, claimed: int) -> int:
    """Parse one file's new records from ``start`` into ``piece``; the bytes read.

    ``claimed``: the offset the index knows (below ``start`` when sealed bytes were skipped)."""
    available = _size(path) - start
    if available <= 0:
        return 0
    legacy = path.name.endswith(rf.LEGACY_RECORDS)
    want = min(available, budget)
    data = _read_at(path, start, want)
    if len(data) < available:
        piece.more = True
        need = _record_length(data, legacy)  # one record longer than the budget: read it whole
        if need and need > len(data):
            data = _read_at(path, start, min(need, available))
    at_end = len(data) >= available
    used = (_parse_legacy if legacy else _parse)(data, final and at_end, piece)
    if used:
        piece.offsets[path.name] = (claimed, start + used)
    return len(data)


def _record_length(data: bytes, legacy: bool) -> int:
    if legacy and len(data) >= _LEGACY_HEADER:
        length = int.from_bytes(data[:4], "little")
        return _LEGACY_HEADER + length if length <= MAX_RECORD else 0
    if not legacy and len(data) >= HEADER.size:
        length = HEADER.unpack_from(data, 0)[2]
        return HEADER.size + length if length <= MAX_RECORD else 0
    return 0


def _parse(data: bytes, final: bool, piece: Piece) -> int:
    pos, view = 0, memoryview(data)
    while pos < len(data):
        outcome, end, payload = decode(view, pos, final)
        if outcome == "partial":
            break
        if outcome == "ok":
            assert payload is not None
            _take(payload, piece)
        else:
            piece.unreadable += 1
        pos = end
    return pos


def _parse_legacy(data: bytes, final: bool, piece: Piece) -> int:
    """The first format: a 4-byte length, then marshal (no way to resync after damage)."""
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < _LEGACY_HEADER:
            if final:
                piece.unreadable += 1
                pos = size
            break
        length = int.from_bytes(data[pos : pos + 4], "little")
        end = pos + _LEGACY_HEADER + length
        if length > MAX_RECORD or (end > size and final):
            piece.unreadable += 1
            return size
        if end > size:
            break
        _take(data[pos + _LEGACY_HEADER : end], piece)
        pos = end
    return pos


def _take(payload: bytes, piece: Piece) -> None:
    """One record's body into ``piece``, or counted as unreadable."""
    try:
        kind, body = marshal.loads(payload)
    except Exception:  # any garbage: marshal raises ValueError, EOFError, TypeError...
        piece.unreadable += 1
        return
    try:
        if kind == "m" and type(body) is list:
            _take_points(body, piece)
        elif kind == "refused":
            counts, _ts = body
            for name, (count, reason) in counts.items():
                piece.refuse(str(name), int(count), str(reason))
        elif kind == "rounded":
            names, _ts = body
            piece.rounded.update(map(str, names))
        elif type(kind) is str and RECORD_KIND.match(kind):  # any (name, payload, ts) record kind
            name, value, ts = body
            text = value if kind == "tag" and type(value) is str else json.dumps(value, allow_nan=True)
            piece.records.append((kind, str(name), text, float(ts)))
        else:  # a kind from a newer launchbay
            piece.unreadable += 1
    except (TypeError, ValueError, AttributeError):
        piece.unreadable += 1


def _take_points(batch: list[Any], piece: Piece) -> None:
    try:
        names = _plain_names(batch)
    except (TypeError, IndexError, KeyError):  # not 4-item points
        names = None
    if names is not None:
        if len(names) == 1:  # almost always one name per batch
            piece.points[batch[0][0]].extend(batch)
            return
        for point in batch:
            piece.points[point[0]].append(point)
        return
    for point in batch:
        if type(point) is not tuple or len(point) != 4:
            piece.refuse("(unnamed)", 1, "a point the journal could not read")
            continue
        name, value, step, ts = point
        name = name if type(name) is str else str(name)
        try:
            stored, rounded = number(value)
            good = (name, stored, exact_step(step), float(ts))
        except (TypeError, ValueError) as exc:
            piece.refuse(name, 1, str(exc))
            continue
        piece.points[name].append(good)
        if rounded:
            piece.rounded.add(name)


def _plain_names(batch: list[Any]) -> set[str] | None:
    """The batch's metric names when every point is (str, float or int64, int64/None, float).

    Checked at C speed, one pass per field; None sends the batch through the one-by-one check."""
    names = set(map(_first, batch))
    if set(map(type, names)) != {str} or not set(map(type, map(_fourth, batch))) <= _NUMBERS:
        return None
    value_types = set(map(type, map(_second, batch)))
    if not value_types <= _NUMBERS:
        return None
    if int in value_types:
        ints: Iterable[int] = map(_second, batch)
        if len(value_types) > 1:  # ints among floats: the ints alone
            ints = compress(map(_second, batch), map(_int_type, map(type, map(_second, batch))))
        if max(map(_bit_length, ints)) > 63:  # beyond int64 (and -2**63): one by one
            return None
    step_types = set(map(type, map(_third, batch)))
    if not step_types <= _STEPS:
        return None
    if int not in step_types:
        return names
    steps = map(_third, batch) if len(step_types) == 1 else filter(None, map(_third, batch))
    return names if max(map(_bit_length, steps), default=0) <= 63 else None


def _read_lost(path: Path, piece: Piece) -> None:
    """A writer's count of points it could not write (disk full), kept in place."""
    try:
        count_text, _, code = path.read_bytes()[:256].decode("ascii", "replace").strip().partition(" ")
        count = int(count_text)
    except (OSError, ValueError):
        return
    if count > 0:
        total = (piece.not_written or (0, ""))[0] + count
        piece.not_written = (total, code.strip() or (piece.not_written or (0, ""))[1])


def _events_say_final(journal: Path, pos: int, stop: int) -> bool:
    data = _read_at(journal / rf.EVENTS, pos, min(PIECE_BYTES, stop - pos))
    return b'"final": true' in data


def _read_events(path: Path, start: int, stop: int, final: bool, budget: int, piece: Piece) -> None:
    """The status events from ``start`` up to ``stop`` (at most ``budget`` bytes)."""
    data = _read_at(path, start, max(0, min(budget, stop - start)))
    end = data.rfind(b"\n") + 1
    if final and end < len(data) and start + len(data) >= stop and len(data) < budget:
        end = len(data)  # a line the runner never finished
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            piece.unreadable += 1
            continue
        if isinstance(event, dict):
            piece.events.append(event)
        else:
            piece.unreadable += 1
    if end:
        piece.offsets[path.name] = (start, start + end)
