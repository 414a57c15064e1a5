"""The lock that keeps ``launchbay gc`` from deleting a blob someone is about to refer to.

Writers (a submit between its snapshot and its run row, a model registration) hold
it shared; ``gc`` holds it exclusive while it decides and deletes. A snapshot that
finds its blobs "already stored" therefore never races a collector removing them.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ..errors import StoreError

LOCK_NAME = ".gc.lock"


@contextmanager
def _flock(store_root: Path, mode: int) -> Iterator[None]:
    """Taken before anything is written, so a store this user cannot write is one clear error here."""
    path = store_root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, as for every store file
    except OSError as exc:
        raise _cannot_write(store_root, exc) from exc
    try:
        try:
            fcntl.flock(fd, mode)
        except OSError as exc:
            raise _cannot_write(store_root, exc) from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _cannot_write(store_root: Path, exc: OSError) -> StoreError:
    from .guard import disk_full_error

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full_error(store_root, exc.strerror or str(exc))
    read_only = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    why = "it is read-only for you" if read_only else "its lock cannot be taken"
    return StoreError(
        f"Cannot write the store at {store_root}: {why} ({exc.strerror or exc}: {exc.filename or LOCK_NAME}). "
        "Nothing was written. Use a store you can write (--store DIR or LAUNCHBAY_STORE), or get write access to it."
    )


def blob_writer(store_root: Path) -> AbstractContextManager[None]:
    """Shared: many submits and registrations at once, never during a collection."""
    return _flock(store_root, fcntl.LOCK_SH)


def blob_collector(store_root: Path) -> AbstractContextManager[None]:
    """Exclusive: waits for writers in flight, then keeps new ones out."""
    return _flock(store_root, fcntl.LOCK_EX)
