"""Everything a run logged besides scalar series — images, tables, rows, lists — in one shape.

The run widget, the sidebar (through the REST API), ``launchbay metrics`` and
``RunHandle.get_metrics`` all read it from here, so each kind shows the same everywhere:

* ``log_image``: a sequence per name (steps 0, 1, 2... in logging order); views show the latest.
* ``log_row``: the rows of one name form one table (a column missing from a row is ``None``).
* ``log_table`` / ``log_list``: the latest one logged under a name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunRecord, Store

KINDS = ("image", "table", "rows", "list")
_RECORD_KINDS = {"image": "image", "table": "table", "row": "rows", "list": "list"}


@dataclass
class Logged:
    """One name's logged data. ``columns`` for tables and rows, ``values`` for lists, ``images`` for images."""

    name: str
    kind: str
    columns: dict[str, list[Any]] = field(default_factory=dict)
    values: list[Any] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)  # {"step", "file", "ts"}, oldest first
    updated: float = 0.0

    @property
    def row_count(self) -> int:
        return max((len(v) for v in self.columns.values()), default=0)

    def rows(self) -> list[list[Any]]:
        """The table row by row (short columns padded with ``None``)."""
        columns = list(self.columns.values())
        return [[c[i] if i < len(c) else None for c in columns] for i in range(self.row_count)]

    def summary(self) -> str:
        """``3 rows × 2 columns``, ``10 values``, ``4 images``."""
        if self.kind == "image":
            return count_text(len(self.images), "image")
        if self.kind == "list":
            return count_text(len(self.values), "value")
        return f"{count_text(self.row_count, 'row')} × {count_text(len(self.columns), 'column')}"

    def to_json(self) -> dict[str, Any]:
        """Strict JSON (non-finite numbers as ``"NaN"``/``"Infinity"``/``"-Infinity"``)."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "updated": self.updated}
        if self.kind == "image":
            data["images"] = self.images
        elif self.kind == "list":
            data["values"] = self.values
        else:
            data["columns"] = self.columns
        return strict_json(data)


def count_text(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def read_logged(store: Store, run: RunRecord, names: list[str] | None = None) -> list[Logged]:
    """The run's logged data, one entry per (name, kind), in the order first logged."""
    out: dict[tuple[str, str], Logged] = {}
    for record_kind, name, payload, ts in store.read_records(run):
        kind = _RECORD_KINDS.get(record_kind)
        if kind is None or (names and name not in names):
            continue
        entry = out.get((name, kind))
        if entry is None:
            entry = out[(name, kind)] = Logged(name, kind)
        entry.updated = ts
        if kind == "image":
            entry.images.append({"step": len(entry.images), "file": payload, "ts": ts})
        elif kind == "list":
            entry.values = list(payload)
        elif kind == "table":
            entry.columns = {str(k): list(v) for k, v in payload.items()}
        else:
            _append_row(entry, payload)
    return list(out.values())


def _append_row(entry: Logged, row: dict[str, Any]) -> None:
    n = entry.row_count
    for key, value in row.items():
        column = entry.columns.setdefault(key, [])
        column.extend([None] * (n - len(column)))
        column.append(value)
    for column in entry.columns.values():
        column.extend([None] * (n + 1 - len(column)))


def logged_version(store: Store, run: RunRecord) -> int:
    """Changes whenever the run logs anything of these kinds (cheap: one indexed query)."""
    return store.last_record_id(run)


def strict_json(value: Any) -> Any:
    """``value`` with NaN and ±inf written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    JSON has no such numbers; Python's ``float()`` and JavaScript's ``Number()`` read the strings back."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = 2) -> str:
    """Strict JSON text: never ``NaN`` or ``Infinity`` tokens, whatever the run logged."""
    return json.dumps(strict_json(value), indent=indent, default=str, allow_nan=False)


def logged_payload(store: Store, run: RunRecord, since: int | None = None, max_rows: int = 1000) -> dict[str, Any]:
    """What the REST API serves: every entry (tables cut to their last ``max_rows`` rows), or
    ``changed: false`` alone when nothing was logged since ``version`` ``since``."""
    version = logged_version(store, run)
    if since is not None and since == version:
        return {"version": version, "changed": False, "logged": []}
    entries = []
    for entry in read_logged(store, run):
        data = entry.to_json()
        if entry.kind in ("table", "rows"):
            total = entry.row_count
            data["row_count"] = total
            data["columns"] = (
                {k: v[-max_rows:] for k, v in data["columns"].items()} if total > max_rows else data["columns"]
            )
        entries.append(data)
    return {"version": version, "changed": True, "logged": entries}
