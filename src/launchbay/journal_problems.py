"""What a run's journal could not give the store, said on the run itself.

The counts live in the run's properties, so ``launchbay show``, ``show --json``, the
REST run details and the sidebar all say them without knowing about journals:

    launchbay.unreadable_records   "3 records could not be read (...)"
    launchbay.points_not_written   "disk full: 120 points not written"
    launchbay.output_not_written   "disk full: 301 lines of output not written"
    launchbay.refused.<metric>     "4 points refused: a str is not a number (...)"

The refused points of all metrics are counted on the run's status line too (``status_detail``).
"""

from __future__ import annotations

import re
from typing import Any

UNREADABLE = "launchbay.unreadable_records"
NOT_WRITTEN = "launchbay.points_not_written"
OUTPUT_NOT_WRITTEN = "launchbay.output_not_written"
REFUSED = "launchbay.refused."
_DISK_FULL = frozenset({"ENOSPC", "EDQUOT"})
_NUMBER = re.compile(r"\d+")


def note_problems(properties: dict[str, Any], piece: Any) -> dict[str, Any] | None:
    """``properties`` with the piece's problems added; None when it had none."""
    if not (piece.unreadable or piece.refused or piece.not_written):
        return None
    if piece.unreadable:
        total = count_in(properties.get(UNREADABLE)) + piece.unreadable
        properties[UNREADABLE] = (
            f"{total} records could not be read (damaged, cut short, or written by a newer launchbay)"
        )
    for name, (count, reason) in piece.refused.items():
        total = count_in(properties.get(REFUSED + name)) + count
        properties[REFUSED + name] = f"{total} points refused: {reason}"
    if piece.not_written:
        count, code = piece.not_written  # the writers' own running totals
        if code in _DISK_FULL:
            properties[NOT_WRITTEN] = f"disk full: {count} points not written"
        else:
            properties[NOT_WRITTEN] = f"{count} points not written ({code or 'write error'})"
    return properties


def count_in(message: Any) -> int:
    """The count a message above starts with (0 for none)."""
    found = _NUMBER.search(str(message or ""))
    return int(found.group()) if found else 0


def refused_count(properties: dict[str, Any]) -> int:
    """How many points the run logged that could not be stored (no number, or no int64 step), all metrics."""
    return sum(count_in(v) for k, v in properties.items() if k.startswith(REFUSED))


# -- what a full disk kept out: on the status line ------------------------------------------------
def note_output_lost(properties: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """``properties`` with the runner's ``output_not_written`` event (the run's totals so far)."""
    lines, reason = int(event["lines"]), str(event.get("reason") or "write error")
    return {**properties, OUTPUT_NOT_WRITTEN: f"{reason}: {lines} lines of output not written"}


def not_written(properties: dict[str, Any]) -> dict[str, Any] | None:
    """What the run could not write, as numbers: ``{"points", "output_lines", "reason"}``; None for nothing."""
    points, output = properties.get(NOT_WRITTEN), properties.get(OUTPUT_NOT_WRITTEN)
    if not (points or output):
        return None
    reasons = list(dict.fromkeys(_reason_of(str(text)) for text in (points, output) if text))
    return {"points": count_in(points), "output_lines": count_in(output), "reason": "; ".join(reasons)}


def status_detail(properties: dict[str, Any]) -> str | None:
    """What follows the status on the run's status line, so a run that lost data to a full disk never
    reads as a plain Completed: "5,000 points and 301 lines of output not written: disk full"; and the
    points refused for not being numbers: "3 points refused"."""
    details = []
    lost = not_written(properties)
    if lost is not None:
        parts = [f"{lost['points']:,} points"] if lost["points"] else []
        if lost["output_lines"]:
            parts.append(f"{lost['output_lines']:,} lines of output")
        details.append(f"{' and '.join(parts)} not written: {lost['reason']}")
    refused = refused_count(properties)
    if refused:  # no number (or no int64 step): the launchbay.refused.<metric> properties say which and why
        details.append(f"{refused:,} point{'' if refused == 1 else 's'} refused")
    return "; ".join(details) or None


def _reason_of(message: str) -> str:
    """The reason in a message above: "disk full", or the errno name in "120 points not written (EIO)"."""
    if message.endswith(")") and "(" in message:
        return message[message.rindex("(") + 1 : -1]
    return message.partition(":")[0] if ":" in message else "write error"
