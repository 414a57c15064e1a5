"""``launchbay metrics RUN [NAME] [--json]``: every kind of logged data, as text or strict JSON.

JSON shape, one key per name::

    {"loss": {"kind": "scalar", "points": [{"step": 0, "value": 0.5, "ts": 1.7e9}, ...],
              "integer": false, "rounded": false},
     "pr":   {"kind": "rows",   "columns": {"p": [0.9, ...], "r": [0.8, ...]}},
     "t":    {"kind": "table",  "columns": {"a": [1, 2]}},
     "acc":  {"kind": "list",   "values": [0.1, 0.5]},
     "fig":  {"kind": "image",  "images": [{"step": 0, "file": "images/fig_1.png", "ts": 1.7e9}]}}

Non-finite numbers are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
A scalar's ``integer``: its values are ints, exactly as logged (an int64 each); ``rounded``: some
value is the nearest float64 to what was logged (a Decimal, a numeric string, an int past 2**53
among floats, ...), not that value itself. The text says both after a scalar's summary.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from ..errors import LaunchbayError
from ..logged import Logged, count_text, dumps, read_logged

EXIT_ERROR = 2
TEXT_ROWS = 20  # rows of a table shown as text; --json has them all
TEXT_VALUES = 10


def metrics_json(store: Any, record: Any, name: str | None = None) -> dict[str, Any]:
    """Every kind of data ``record`` logged, keyed by name (see the module docstring)."""
    out: dict[str, Any] = {}
    for s in store.metric_summaries(record):
        if name in (None, s["name"]):
            points = store.read_series(record, s["name"]).to_points()
            out[s["name"]] = {"kind": "scalar", "points": points, "integer": s["integer"], "rounded": s["rounded"]}
    for entry in read_logged(store, record, [name] if name else None):
        key = entry.name if entry.name not in out else f"{entry.name} ({entry.kind})"
        data = entry.to_json()
        del data["name"], data["updated"]
        out[key] = data
    return out


def _names(store: Any, record: Any, name: str | None) -> dict[str, Any]:
    """The names ``metrics_json`` would give, without reading any point."""
    found = [s["name"] for s in store.metric_summaries(record)] + [e.name for e in read_logged(store, record)]
    return {n: None for n in found if name in (None, n)}


def available(store: Any, record: Any) -> str:
    """``loss (scalar), pr (rows), fig (image)`` or ``nothing yet``."""
    names = [f"{s['name']} (scalar)" for s in store.metric_summaries(record)]
    names += [f"{e.name} ({e.kind})" for e in read_logged(store, record)]
    return ", ".join(names) or "nothing yet"


def cmd_metrics(args: argparse.Namespace, session: Any, out: TextIO = sys.stdout) -> int:
    store = session.store
    record = session.refresh(store.resolve_run_id(args.run))
    # text shows summaries: the points themselves are read (and checked) for --json only
    data = metrics_json(store, record, args.name) if args.json else _names(store, record, args.name)
    if args.name and not data:
        print(
            f"launchbay: run {record.run_id} has no metric {args.name!r}; it has: {available(store, record)}.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.json:
        out.write(dumps(data) + "\n")
        return 0
    if not data:
        out.write(f"Run {record.run_id} has logged no metrics yet.\n")
        return 0
    damaged = 0
    for s in store.metric_summaries(record):
        if args.name in (None, s["name"]):
            try:
                store.verify_series(record, s["name"])  # a summary is never shown for points that are wrong
            except LaunchbayError as exc:
                print(f"launchbay: {exc}", file=sys.stderr)
                damaged += 1
                continue
            out.write(scalar_text(s) + "\n")
    for entry in read_logged(store, record, [args.name] if args.name else None):
        out.write(describe(entry, record.run_id) + "\n")
    return EXIT_ERROR if damaged else 0


def scalar_text(summary: dict[str, Any]) -> str:
    """A scalar's summary line: ``loss (scalar): 40 points, last 0.1 at step 39, min 0.1, max 4``."""
    s, points = summary, count_text(summary["count"], "point")
    return (
        f"{s['name']} (scalar): {points}, last {_num(s['last'])} at step {s['last_step']}, "
        f"min {_num(s['min'])}, max {_num(s['max'])}{_kind_text(s)}"
    )


def describe(entry: Logged, run_id: str) -> str:
    """One logged entry as text: a header line, then the table / values / latest image."""
    head = f"{entry.name} ({entry.kind}): {entry.summary()}"
    if entry.kind == "image":
        latest = entry.images[-1]
        return (
            f"{head}, latest (step {latest['step']}): {latest['file']}\n  launchbay download {run_id} {latest['file']}"
        )
    if entry.kind == "list":
        values = entry.values
        shown = ", ".join(_cell(v) for v in values[:TEXT_VALUES]) + (", ..." if len(values) > TEXT_VALUES else "")
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        stats = f"; min {_cell(min(numbers))}, max {_cell(max(numbers))}" if numbers else ""
        return f"{head}{stats}\n  [{shown}]"
    rows = entry.rows()
    skipped = max(0, len(rows) - TEXT_ROWS)
    table = [list(entry.columns), *[[_cell(c) for c in r] for r in rows[skipped:]]]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  " + "  ".join(c.rjust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    if skipped:
        lines.insert(1, f"  ({skipped:,} earlier rows; --json has them all)")
    return "\n".join([head, *lines])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _kind_text(summary: dict[str, Any]) -> str:
    """What a scalar's values are, when not plain floats: exact integers, or rounded to float64."""
    if summary.get("integer"):
        return "; integers, exactly as logged (--json has every one)"
    if summary.get("rounded"):
        return "; rounded: some values are the nearest float64 to what was logged"
    return ""


def _num(value: float | None) -> str:
    """A summary number; the store keeps NaN as NULL."""
    return "nan" if value is None else f"{value:.6g}"
