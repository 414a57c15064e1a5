"""The text form of a live run, for where no widget can render (terminal IPython, nbconvert).

Prints the run's log as it grows and a line at each status change, until the run
ends or the user interrupts; an interrupt leaves the run going and says how to
re-attach.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from ..models import RunStatus

if TYPE_CHECKING:
    from ..handle import RunHandle
    from ..store import RunRecord


def elapsed_text(seconds: float | None) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 07 min``: readable at a glance."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class Elapsed:
    """The elapsed time as shown: never smaller than what was shown before (clocks and polls disagree)."""

    def __init__(self) -> None:
        self.shown: float | None = None

    def __call__(self, record: RunRecord) -> float | None:
        value = record.duration_s
        if value is not None and self.shown is not None and value < self.shown:
            value = self.shown
        self.shown = value
        return value


def end_line(record: RunRecord, elapsed: float | None) -> str:
    """How the run ended, in one line; the error message only when the log did not already show it."""
    line = f"launchbay: run {record.run_id} {record.status.value} after {elapsed_text(elapsed)}"
    if record.exit_code is not None:
        line += f" (exit code {record.exit_code})"
    if record.status_detail:  # what a full disk kept out of the run
        line += f" — {record.status_detail}"
    error = record.error or {}
    if record.status is not RunStatus.COMPLETED and error.get("message"):
        if not str(error.get("traceback") or "").startswith("Traceback"):
            line += f": {error['message']}"
    return line


def _line(out: TextIO, text: str, at_line_start: bool) -> bool:
    out.write(("" if at_line_start else "\n") + text + "\n")
    return True


def follow_run(
    handle: RunHandle, out: TextIO | None = None, poll_s: float = 0.2, pull_into: dict[str, Any] | None = None
) -> str:
    """Print the log and status changes until the run ends (returns its status) or Ctrl-C (returns it too)."""
    out = out or sys.stdout
    offset, status, at_line_start = 0, None, True
    elapsed = Elapsed()
    try:
        while True:
            record = handle.record()
            changed = record.status is not status
            status = record.status
            if changed and not status.is_terminal():
                at_line_start = _line(out, f"launchbay: run {record.run_id} {status.value}", at_line_start)
            while True:
                data, offset = handle.read_log(offset, record=record)
                if not data:
                    break
                text = data.decode("utf-8", "replace")
                out.write(text)
                at_line_start = text.endswith("\n")
            if changed and status.is_terminal():
                _line(out, end_line(record, elapsed(record)), at_line_start)
            else:
                elapsed(record)
            out.flush()
            if status is not None and status.is_terminal():
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        out.write(
            f"\nlaunchbay: run {handle.run_id} is still running; `%launchbay show {handle.run_id}` re-attaches "
            f"(`%launchbay cancel {handle.run_id}` stops it).\n"
        )
        out.flush()
        return handle.status
    if pull_into is not None and record.status is RunStatus.COMPLETED and record.spec.get("pull"):
        names = handle.pull(pull_into)
        out.write(f"Pulled into the notebook: {', '.join(names) or 'nothing'}\n")
    return record.status.value
