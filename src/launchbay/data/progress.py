"""Progress of long data work (hashing, downloading, sending): files, bytes and rate, at most once a second."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..snapshot_budget import human_bytes


class Progress:
    """Counts files and bytes as they are done; tells ``say`` where it stands, at most every ``every_s``.

    Nothing is said for work that ends within the first ``every_s`` (an unchanged folder re-checked)."""

    def __init__(self, say: Callable[[str], None] | None, what: str, every_s: float = 1.0) -> None:
        self.say, self.what, self.every_s = say, what, every_s
        self.files = 0
        self.bytes = 0
        self.started = time.monotonic()
        self._next = self.started + every_s
        self.lines = 0

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.bytes += nbytes
        if self.say is not None and time.monotonic() >= self._next:
            self._tell()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = human_bytes(int(self.bytes / elapsed))
        return f"{self.what}: {self.files:,} files, {human_bytes(self.bytes)} ({rate}/s)"

    def _tell(self) -> None:
        assert self.say is not None
        self.say(self.line())
        self.lines += 1
        self._next = time.monotonic() + self.every_s

    def done(self) -> None:
        """A last line, only when earlier lines were said (so the user sees the end of it)."""
        if self.say is not None and self.lines:
            self.say(self.line() + ", done")
