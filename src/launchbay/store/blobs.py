"""Blobs: write-once content named by its SHA-256, behind one interface (``BlobStore``).

``FolderBlobs`` is the embedded store's ``blobs/ab/cdef...`` folder. A store elsewhere (an object
store) subclasses ``CachedBlobs`` (store/blobcache.py): ``local_path`` fills a content-addressed
local cache first. Nothing outside ``store/`` builds a blob's path: it asks ``local_path``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


def blob_name(digest: str) -> str:
    """Where a blob folder keeps ``digest``: the folder store's layout, and that of every folder a
    runner stages from (a remote host's blob cache, the blobs bind-mounted into a container)."""
    return f"{digest[:2]}/{digest[2:]}"


def check_digest(digest: str) -> str:
    """``digest`` if it is a SHA-256 in hex (a name that can never leave the blob folder)."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


class BlobStore(ABC):
    """Write-once blobs named by their SHA-256: what every backend's blob side provides."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the blobs are, as a message names it (a folder, a bucket URL)."""

    @abstractmethod
    def has(self, digest: str) -> bool: ...

    @abstractmethod
    def put_file(self, source: Path, digest: str) -> bool:
        """Store ``source`` (whose SHA-256 is ``digest``); False when it was already there."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; its digest."""

    def put_absent(self, source: Path | bytes, digest: str) -> None:
        """Store a blob the caller has just seen missing (it listed the store: ``store copy``), a file or
        bytes whose SHA-256 is ``digest``; a remote store skips its lookup and its local cache."""
        if isinstance(source, bytes):
            self.put_bytes(source)
        else:
            self.put_file(source, digest)

    @abstractmethod
    def read_bytes(self, digest: str) -> bytes: ...

    @abstractmethod
    def open(self, digest: str) -> BinaryIO: ...

    @abstractmethod
    def local_path(self, digest: str) -> Path:
        """A read-only file on this machine holding the blob (to hard-link, mount or send)."""

    @abstractmethod
    def local_folder(self, digests: Iterable[str]) -> Path:
        """A folder on this machine laid out ``ab/cdef...`` holding at least these blobs: where a runner on
        this machine (or a container mounting it) reads a snapshot from."""

    @abstractmethod
    def missing(self, digests: set[str], complete: dict[str, int]) -> set[str]:
        """The digests whose blob is gone. ``complete`` is the caller's memo between calls (updated in
        place) that lets a backend skip what it checked before; a backend may ignore it."""

    @abstractmethod
    def sizes(self) -> Iterator[tuple[str, int]]:
        """Every stored blob's digest and size (``gc``, ``du``)."""

    @abstractmethod
    def remove(self, digest: str) -> None:
        """Delete a blob (``gc`` only, under the collector lock); nothing when it is gone."""

    def unchanged(self, mtimes: dict[str, int]) -> bool:
        """Whether nothing was added or deleted since ``missing`` filled ``mtimes``: a backend that
        cannot tell cheaply says False, and the caller asks ``missing``."""
        return False

    def forget_modified(self) -> list[Path]:
        """Drop the copies of blobs a run modified in place (only a folder that runs hard-link into has any)."""
        return []


class FolderBlobs(BlobStore):
    """Write-once files named by their SHA-256; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / blob_name(digest)

    def local_path(self, digest: str) -> Path:
        """A file on this machine holding the blob (hard-link it, mount its folder, send it).

        For the folder store it is the blob itself; a remote store fills a local cache first."""
        return self.path(digest)

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def local_folder(self, digests: Iterable[str]) -> Path:
        return self.root  # every blob is in it already

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def forget_modified(self) -> list[Path]:
        """Blobs a run modified in place were set aside as ``*.modified``; drop them."""
        found = list(self.root.glob("*/*.modified"))
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def put_file(self, source: Path, digest: str) -> bool:
        """Copy ``source`` in under ``digest``; False when it was already there."""
        dest = self.path(digest)
        if dest.exists():
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o444)  # read-only: runs may hard-link blobs into their work dirs
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        dest = self.path(digest)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o444)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)  # a full disk leaves no partial blob
                raise
        return digest

    def unchanged(self, mtimes: dict[str, int]) -> bool:
        """Do these blob folders still have the mtimes recorded (nothing added or deleted)?"""
        root = str(self.root)
        try:
            return all(os.stat(f"{root}/{prefix}").st_mtime_ns == mtime for prefix, mtime in mtimes.items())
        except OSError:
            return False

    def missing(self, digests: set[str], complete: dict[str, int]) -> set[str]:
        """The digests whose blob is gone (deleted by hand, or a damaged store).

        ``complete`` maps a blob folder to its mtime when it last held every blob asked
        for: an unchanged folder is not listed again, so an unchanged snapshot costs
        one stat per folder. Updated in place."""
        by_prefix: dict[str, list[str]] = {}
        for digest in digests:
            by_prefix.setdefault(digest[:2], []).append(digest)
        gone: set[str] = set()
        for prefix, wanted in by_prefix.items():
            folder = self.root / prefix
            try:
                mtime = os.stat(folder).st_mtime_ns
                if complete.get(prefix) == mtime:
                    continue
                names = set(os.listdir(folder))
            except FileNotFoundError:
                gone.update(wanted)
                complete.pop(prefix, None)
                continue
            lost = [d for d in wanted if d[2:] not in names]
            gone.update(lost)
            if lost:
                complete.pop(prefix, None)
            else:
                complete[prefix] = mtime
        return gone

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def sizes(self) -> Iterator[tuple[str, int]]:
        if not self.root.is_dir():
            return
        for sub in os.scandir(self.root):
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for entry in os.scandir(sub.path):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                yield sub.name + entry.name, entry.stat().st_size

    def remove(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)
