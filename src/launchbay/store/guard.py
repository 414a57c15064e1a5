"""The one place where SQLite and file-system failures become launchbay errors.

Every connection to the index is a ``GuardedConnection``: whatever statement fails,
and wherever (open, query, fetching rows, commit), the caller gets one
``LaunchbayError`` that says what happened and what to do, never a raw
``sqlite3`` traceback. A damaged index says to run ``launchbay store repair``; a
full disk says it is full (SQLite itself often only says "disk I/O error").
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import DiskFullError, LaunchbayError, StoreDamagedError, StoreError
from .dialect import SQLITE, Dialect

REPAIR_HINT = "Rebuild it from the run folders with `launchbay store repair`."
_DAMAGED = ("malformed", "not a database", "database corrupt", "file is encrypted", "disk image")
FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
LOW_SPACE_BYTES = 1 << 20  # an I/O error with less free than this is a full disk


def free_bytes(path: Path) -> int | None:
    """Bytes available to this user on the file system holding ``path`` (None if unknown)."""
    for candidate in (path, *path.parents):
        try:
            st = os.statvfs(candidate)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def disk_full_error(root: Path, detail: str = "") -> DiskFullError:
    free = free_bytes(root)
    left = "" if free is None else f" ({free // 1024} KB left)"
    why = f": {detail}" if detail else ""
    return DiskFullError(
        f"The disk holding the store {root} is full{left}{why}. Nothing was half-written; "
        "free some space (or move the store with --store / LAUNCHBAY_STORE) and try again."
    )


def store_error(exc: BaseException, root: Path) -> LaunchbayError:
    """The launchbay error for an ``sqlite3.Error`` or ``OSError`` met while using the store at ``root``."""
    if isinstance(exc, LaunchbayError):
        return exc
    message = str(exc)
    lowered = message.lower()
    index = root / "index.sqlite"
    if isinstance(exc, OSError):
        if exc.errno in FULL_ERRNOS:
            return disk_full_error(root, exc.strerror or message)
        why = exc.strerror or message
        return StoreError(f"Cannot use the store at {root}: {why}. Check the path and its permissions.")
    if "disk is full" in lowered or getattr(exc, "sqlite_errorcode", None) == 13:  # SQLITE_FULL
        return disk_full_error(root)
    if "disk i/o error" in lowered:
        free = free_bytes(root)
        if free is not None and free < LOW_SPACE_BYTES:
            return disk_full_error(root)
        return StoreDamagedError(
            f"Reading the store's index {index} failed (disk I/O error): the disk or the file is damaged. "
            f"Check the disk, then: {REPAIR_HINT}"
        )
    if any(word in lowered for word in _DAMAGED):
        return StoreDamagedError(f"The store's index {index} is damaged ({message}). {REPAIR_HINT}")
    if "locked" in lowered or "busy" in lowered:
        return StoreError(
            f"The store at {root} stayed busy (another process held its write lock too long: {message}). Try again."
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        return StoreError(f"Cannot write the store at {root} ({message}). Check the path and its permissions.")
    if isinstance(exc, sqlite3.OperationalError) and ("no such table" in lowered or "no such column" in lowered):
        return StoreDamagedError(f"The store's index {index} is incomplete ({message}). {REPAIR_HINT}")
    return StoreError(f"The store at {root} failed: {message}.")


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose fetches raise launchbay errors (a bad page can surface mid-iteration)."""

    root: Path

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise store_error(exc, self.root) from exc

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise store_error(exc, self.root) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc, self.root) from exc


class GuardedConnection(sqlite3.Connection):
    """An index connection whose failures are launchbay errors (see the module docstring)."""

    root: Path = Path(".")
    dialect: Dialect = SQLITE

    def _cursor(self) -> GuardedCursor:
        cur = self.cursor(GuardedCursor)
        cur.root = self.root
        return cur

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:  # type: ignore[override]
        try:
            cur = self._cursor()
            cur.execute(sql, parameters)
            return cur
        except sqlite3.Error as exc:
            raise store_error(exc, self.root) from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> GuardedCursor:  # type: ignore[override]
        try:
            cur = self._cursor()
            cur.executemany(sql, parameters)
            return cur
        except sqlite3.Error as exc:
            raise store_error(exc, self.root) from exc


def connect(root: Path, index: Path, timeout_s: float) -> GuardedConnection:
    """Open the index (WAL, NORMAL sync) with every failure mapped by ``store_error``."""
    try:
        # check_same_thread off: each thread still uses its own connection, but ``close()`` may close them all
        conn = sqlite3.connect(
            index, timeout=timeout_s, isolation_level=None, factory=GuardedConnection, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise store_error(exc, root) from exc
    assert isinstance(conn, GuardedConnection)
    conn.root = root
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sqlite3.Connection.execute(conn, f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            # switching a new index to WAL while another process does the same can answer
            # "locked" at once, without waiting on the busy timeout: retry it here
            sqlite3.Connection.execute(conn, "PRAGMA journal_mode=WAL")
            sqlite3.Connection.execute(conn, "PRAGMA synchronous=NORMAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) and time.monotonic() < deadline:
                time.sleep(0.02)
                continue
            conn.close()
            raise store_error(exc, root) from exc
        except sqlite3.Error as exc:
            conn.close()
            raise store_error(exc, root) from exc
