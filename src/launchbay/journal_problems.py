"""What a run's journal could not give the store, said on the run itself.

The counts live in the run's properties, so ``launchbay show``, ``show --json``, the
REST run details and the sidebar all say them without knowing about journals:

    launchbay.unreadable_records   "3 records could not be read (...)"
    launchbay.points_not_written   "disk full: 120 points not written"
    launchbay.refused.<metric>     "4 points refused: a str is not a number (...)"
"""

from __future__ import annotations

import re
from typing import Any

UNREADABLE = "launchbay.unreadable_records"
NOT_WRITTEN = "launchbay.points_not_written"
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
