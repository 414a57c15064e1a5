"""Content-addressed blob folder: ``blobs/ab/cdef...`` named by SHA-256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO


class BlobStore:
    """Write-once files named by their SHA-256; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def local_path(self, digest: str) -> Path:
        """A file on this machine holding the blob (hard-link it, mount its folder, send it).

        For the folder store it is the blob itself; a remote store fills a local cache first."""
        return self.path(digest)

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

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
