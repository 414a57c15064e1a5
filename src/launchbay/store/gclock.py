"""The lock that keeps ``launchbay gc`` from deleting a blob someone is about to refer to.

Writers (a submit between its snapshot and its run row, a model registration) hold
it shared; ``gc`` holds it exclusive while it decides and deletes. A snapshot that
finds its blobs "already stored" therefore never races a collector removing them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

LOCK_NAME = ".gc.lock"


@contextmanager
def _flock(store_root: Path, mode: int) -> Iterator[None]:
    path = store_root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def blob_writer(store_root: Path) -> AbstractContextManager[None]:
    """Shared: many submits and registrations at once, never during a collection."""
    return _flock(store_root, fcntl.LOCK_SH)


def blob_collector(store_root: Path) -> AbstractContextManager[None]:
    """Exclusive: waits for writers in flight, then keeps new ones out."""
    return _flock(store_root, fcntl.LOCK_EX)
