"""Hash a local file or folder into a ``Manifest``, once: a (size, mtime, inode) → SHA-256 cache.

Like the snapshot index (snapshot.py), the cache lives in the store's local cache folder, one file per
source. A file whose size, mtime and inode are unchanged is not read again, so an unchanged
20,000-file folder is re-checked with one ``stat`` per file.

Never a wrong version:

- a file is stat'ed before and after it is hashed; when it changed meanwhile (size, mtime or the
  number of bytes read) it is hashed again, and after a few tries the input is refused in one line;
- a file modified less than ``RACY_S`` before it was hashed is not kept in the cache (a write in the
  same timestamp tick would leave its mtime unchanged), so the next check reads it again.

Everything in a folder is data: hidden files too. Links to files count as the file they point to;
links to folders are not followed (they could loop), and are refused by name.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import DataInputError
from .manifest import DataFile, Manifest
from .progress import Progress

_INDEX_VERSION = 1
RACY_S = 1.0  # a file modified this close to its hashing is hashed again next time
_TRIES = 3
_BLOCK = 1 << 20


class _Seen:
    __slots__ = ("rel", "path", "size", "mtime_ns", "inode")

    def __init__(self, rel: str, path: str, st: os.stat_result) -> None:
        self.rel, self.path = rel, path
        self.size, self.mtime_ns, self.inode = st.st_size, st.st_mtime_ns, st.st_ino


def _scan(root: Path, name: str, skip: tuple[str, ...]) -> list[_Seen]:
    """Every regular file under ``root`` (links to files followed), sorted by path."""
    found: list[_Seen] = []
    stack = [("", str(root))]
    while stack:
        base, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise DataInputError(f"Input {name!r}: cannot read the folder {folder}: {exc.strerror or exc}.") from exc
        for entry in entries:
            rel = base + entry.name
            if entry.path in skip:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                    continue
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                raise DataInputError(
                    f"Input {name!r}: cannot read {entry.path}: {exc.strerror or exc} (a broken link?)."
                ) from exc
            if stat.S_ISDIR(st.st_mode):
                raise DataInputError(
                    f"Input {name!r}: {entry.path} is a link to a folder, which launchbay does not follow; "
                    "replace it by the folder or leave it out."
                )
            if stat.S_ISREG(st.st_mode):
                found.append(_Seen(rel, entry.path, st))
    found.sort(key=lambda s: s.rel)
    return found


def _hash(seen: _Seen, name: str) -> str:
    """The file's SHA-256, read whole between two stats that agree with the scan's."""
    for _ in range(_TRIES):
        digest = hashlib.sha256()
        read = 0
        try:
            with open(seen.path, "rb") as fh:
                while block := fh.read(_BLOCK):
                    digest.update(block)
                    read += len(block)
            after = os.stat(seen.path)
        except OSError as exc:
            raise DataInputError(f"Input {name!r}: cannot read {seen.path}: {exc.strerror or exc}.") from exc
        if read == after.st_size == seen.size and after.st_mtime_ns == seen.mtime_ns:
            return digest.hexdigest()
        seen.size, seen.mtime_ns, seen.inode = after.st_size, after.st_mtime_ns, after.st_ino  # changed: again
    raise DataInputError(
        f"Input {name!r}: {seen.path} kept changing while it was hashed; "
        "wait for whatever writes it to finish, then submit again."
    )


class HashIndex:
    """What the last check of one source learned: (size, mtime_ns, inode, sha256) per file."""

    def __init__(self, cache_dir: Path, root: Path) -> None:
        key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
        self.path = cache_dir / "cache" / f"data-index-{key}.marshal"
        self.entries: dict[str, list[Any]] = {}
        try:
            data = marshal.loads(self.path.read_bytes())
            if isinstance(data, dict) and data.get("version") == _INDEX_VERSION and data.get("root") == str(root):
                self.entries = data["files"]
        except (OSError, ValueError, EOFError, KeyError, TypeError):
            pass
        self.root = root
        self.changed = False

    def known(self, seen: _Seen) -> str | None:
        cached = self.entries.get(seen.rel)
        if cached and cached[0] == seen.size and cached[1] == seen.mtime_ns and cached[2] == seen.inode:
            return str(cached[3])
        return None

    def remember(self, seen: _Seen, digest: str, hashed_at_ns: int) -> None:
        if hashed_at_ns - seen.mtime_ns < RACY_S * 1e9:
            self.entries.pop(seen.rel, None)  # racy: read it again next time
        else:
            self.entries[seen.rel] = [seen.size, seen.mtime_ns, seen.inode, digest]
        self.changed = True

    def save(self, keep: set[str]) -> None:
        if not self.changed and len(keep) == len(self.entries):
            return
        entries = {k: v for k, v in self.entries.items() if k in keep}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        try:
            tmp.write_bytes(marshal.dumps({"version": _INDEX_VERSION, "root": str(self.root), "files": entries}))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache: the next check hashes again


def hash_source(
    cache_dir: Path,
    source: Path,
    name: str,
    *,
    say: Callable[[str], None] | None = None,
    skip: tuple[Path, ...] = (),
) -> Manifest:
    """The manifest of a local file or folder; hashes only what the cache does not know."""
    try:
        root = source.resolve(strict=True)
        st = root.stat()
    except FileNotFoundError:
        raise DataInputError(f"Input {name!r}: {source} does not exist; check the path.") from None
    except OSError as exc:
        raise DataInputError(f"Input {name!r}: cannot read {source}: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(st.st_mode):
        seen = _scan(root, name, tuple(str(p.resolve()) for p in skip))
        kind = "folder"
    elif stat.S_ISREG(st.st_mode):
        seen = [_Seen(root.name, str(root), st)]
        kind = "file"
    else:
        raise DataInputError(f"Input {name!r}: {source} is neither a file nor a folder.")
    index = HashIndex(cache_dir, root)
    digests: dict[str, str] = {}
    todo: list[_Seen] = []
    for s in seen:
        known = index.known(s)
        if known is None:
            todo.append(s)
        else:
            digests[s.rel] = known
    if todo:
        progress = Progress(say, f"hashing input {name!r}")
        progress.add(len(digests), sum(s.size for s in seen if s.rel in digests))

        def one(s: _Seen) -> tuple[_Seen, str, int]:
            digest = _hash(s, name)
            progress.add(1, s.size)
            return s, digest, time.time_ns()

        workers = min(4, os.cpu_count() or 1) if len(todo) > 16 else 1
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="launchbay-hash") as pool:
                results = list(pool.map(one, todo))
        else:
            results = [one(s) for s in todo]
        for s, digest, at in results:
            digests[s.rel] = digest
            index.remember(s, digest, at)
        progress.done()
    if kind == "folder" and not seen:
        raise DataInputError(f"Input {name!r}: the folder {source} holds no files.")
    index.save({s.rel for s in seen})
    return Manifest(kind, tuple(DataFile(s.rel, s.size, digests[s.rel]) for s in seen))
