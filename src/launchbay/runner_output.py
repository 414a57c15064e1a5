"""The run's output into its log, on a full disk too (stdlib only, shipped with the runner).

The runner must keep reading the run's pipe whatever happens to the log: a pipe nobody reads
blocks the run at its next print. Output that cannot be written is dropped whole-write by
whole-write and counted, never kept half in a buffer to come out later out of place. Where
output is missing the log says so in one line once space is back, and the counts go into the
run's journal (an ``output_not_written`` event with the run's totals), so the run's status
line can say them.
"""

from __future__ import annotations

import errno
import os
from typing import Any

READ_SIZE = 65536
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class OutputLog:
    """Appends the run's output to ``path``; counts and marks what could not be written."""

    def __init__(self, path: str, journal: Any) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._journal = journal
        self.lines_lost = 0  # the run's totals
        self.bytes_lost = 0
        self._reason = ""
        self._gap_lines = 0  # lost since the last line that says so
        self._gap_ends_line = True  # the last byte lost was a newline
        self._at_line_start = True  # the last byte written was a newline
        self._error: OSError | None = None  # why the last write did not all go in

    def tee(self, stream: Any) -> None:
        """Copy ``stream`` (the run's pipe) into the log until it ends."""
        for chunk in iter(lambda: stream.read1(READ_SIZE), b""):
            self.write(chunk)

    def write(self, data: bytes) -> None:
        if self._gap_lines and not self._say_gap():
            self._lose(data, None)
            return
        done = self._write(data)
        if done < len(data):
            self._lose(data[done:], self._error)

    def finish(self) -> None:
        """The last word, once the run's processes are gone: the gap at the end is marked, and the
        totals are recorded even when it could not be. (The file stays open: a process the runner
        could not stop may still hold the pipe; the runner's exit closes it.)"""
        if self._gap_lines and not self._say_gap():
            self._record()

    def _write(self, data: bytes) -> int:
        """How much of ``data`` went in (``self._error`` says why not all)."""
        done = 0
        self._error = None
        view = memoryview(data)
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            self._error = exc
        if done:
            self._at_line_start = data[done - 1 : done] == b"\n"
        return done

    def _lose(self, data: bytes, error: OSError | None) -> None:
        """Count ``data`` as not written: the lines it touches, less one it continues."""
        continues = self._gap_lines > 0 and not self._gap_ends_line
        self.bytes_lost += len(data)
        self._gap_lines += data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - (1 if continues else 0)
        self._gap_ends_line = data.endswith(b"\n")
        if error is not None and not self._reason:
            self._reason = "disk full" if error.errno in _DISK_FULL else os.strerror(error.errno or 0)

    def _say_gap(self) -> bool:
        """One line where output is missing; True once it is in the log."""
        note = f"launchbay: {self._gap_lines:,} lines of output not written here: {self._reason}\n"
        data = note.encode() if self._at_line_start else b"\n" + note.encode()
        if self._write(data) < len(data):
            return False
        self.lines_lost += self._gap_lines
        self._gap_lines, self._gap_ends_line = 0, True
        self._record()
        return True

    def _record(self) -> None:
        lines = self.lines_lost + self._gap_lines
        self._journal.event(type="output_not_written", lines=lines, bytes=self.bytes_lost, reason=self._reason)
