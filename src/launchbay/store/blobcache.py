"""Blobs kept elsewhere (an object store), read through a content-addressed local cache.

A run needs its snapshot's files on this machine (to stage, hard-link, mount or send them), so a
remote blob store hands out ``local_path(digest)`` from a cache folder laid out like the embedded
store's blob folder (``ab/cdef...``), filled on first use. A blob never changes once written, so a
cached copy is never stale and needs no invalidation; ``gc`` removing a blob removes its copy too.

A backend fills five hooks: ``_exists``, ``_upload``, ``_download``, ``_list`` and ``_delete``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .blobs import BlobStore, FolderBlobs, check_digest


class CachedBlobs(BlobStore):
    """A remote blob store's template: every read goes through the local cache in ``cache_dir``."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache = FolderBlobs(cache_dir)

    # -- the hooks a remote backend fills ------------------------------------------------------
    @abstractmethod
    def _exists(self, digest: str) -> bool: ...

    @abstractmethod
    def _upload(self, digest: str, source: Path) -> None:
        """Put the file ``source`` (whose SHA-256 is ``digest``) in the remote store."""

    @abstractmethod
    def _download(self, digest: str, dest: Path) -> None:
        """Write the remote blob to ``dest`` (a temporary file the cache renames once whole)."""

    @abstractmethod
    def _list(self) -> Iterator[tuple[str, int]]: ...

    @abstractmethod
    def _delete(self, digest: str) -> None: ...

    # -- the interface -----------------------------------------------------------------------
    def has(self, digest: str) -> bool:
        return self._exists(check_digest(digest))

    def put_file(self, source: Path, digest: str) -> bool:
        if self.has(digest):
            return False
        self._upload(digest, source)
        self.cache.put_file(source, digest)  # a run submitted from here reads it locally at once
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            self.cache.put_bytes(data)
            self._upload(digest, self.cache.path(digest))
        return digest

    def put_absent(self, source: Path | bytes, digest: str) -> None:
        check_digest(digest)
        if isinstance(source, bytes):
            self.cache.put_bytes(source)  # the hook uploads files: a manifest is one in the cache first
            source = self.cache.path(digest)
        self._upload(digest, source)

    def local_path(self, digest: str) -> Path:
        cached = self.cache.path(digest)
        if cached.exists():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-")
        os.close(fd)
        try:
            self._download(digest, Path(tmp))
            os.chmod(tmp, 0o444)
            os.replace(tmp, cached)  # whole or not at all: two processes filling it at once both succeed
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return cached

    def local_folder(self, digests: Iterable[str]) -> Path:
        for digest in digests:
            self.local_path(digest)
        return self.cache.root

    def read_bytes(self, digest: str) -> bytes:
        return self.local_path(digest).read_bytes()

    def open(self, digest: str) -> BinaryIO:
        return self.local_path(digest).open("rb")

    def missing(self, digests: set[str], complete: dict[str, int]) -> set[str]:
        return {digest for digest in digests if not self._exists(digest)}

    def sizes(self) -> Iterator[tuple[str, int]]:
        return self._list()

    def remove(self, digest: str) -> None:
        self._delete(check_digest(digest))
        self.cache.remove(digest)
