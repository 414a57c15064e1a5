"""Bring a run folder back, incrementally: one routine, a small adapter per transport.

``mirror(source, local)`` keeps ``local`` (the store's copy of the run folder) up to
date with a run folder elsewhere. Each pass it tells the source what the copy has
(size, mtime, a hash of the last 4 KiB of each file); the source sends only what is
new. Append-only files (events.jsonl, the live log, ``*.jnl``/``*.bin``) get their new
bytes at their offsets; the heartbeat and ``*.lost`` come whole; other files (outputs)
get their tail when they only grew, else come whole.

Every pass brings the journal and the live log; the rest of ``files/`` (outputs,
logs, uploads) at most every ``FILES_EVERY_S``, and whenever the events show the run
ended: the runner keeps its files before it writes its final event, so nobody sees
the run ended without its files. Events are written last for the same reason.

The copy's live log may start with launchbay's own lines, written here while the run was
Preparing (an environment check or build, an image pull): the far log is kept after them,
its offsets moved by their length (``.sync.log_prefix``, fixed at the first pass).

Adapters: ``LocalFolder`` (a shared file system), ``SSHFolder`` (the connection's
remote helper runs ``runfolder.scan``), ``DockerArchive`` (a container's archive
API) and ``RayLog`` (the far side prints chunks into the job's log; see rayship.py).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, NamedTuple
from urllib.parse import unquote

from .. import runfolder as rf

LIMIT = 32 << 20  # bytes a round trip brings at most; a pass takes more rounds
FILES_EVERY_S = 1.0
LIVE = (rf.JOURNAL, f"{rf.FILES}/{rf.USER_LOGS}")
EVERYTHING = (rf.JOURNAL, rf.FILES)
_files_at: dict[str, float] = {}  # local copy -> when its files/ were last brought back


class Chunk(NamedTuple):
    """Bytes of ``rel`` at ``start`` (0: the file anew); ``size``/``mtime_ns`` of the source file when known."""

    rel: str
    start: int
    data: bytes
    size: int | None = None
    mtime_ns: int | None = None


class Source(ABC):
    """Where a run folder's bytes come from."""

    #: the far side decides what to send, in order (files before the events that end the run)
    pushed: ClassVar[bool] = False

    @abstractmethod
    def fetch(self, known: dict[str, list[Any]], folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
        """What the copy described by ``known`` lacks of ``folders``; True when more is left."""


def mirror(source: Source, local: Path, everything: bool = False) -> None:
    """One pass: bring ``local`` up to date with ``source`` (``everything``: every file, the run has ended)."""
    local.mkdir(parents=True, exist_ok=True)
    with locked(local):  # two readers must not write the same tail twice
        prefix = log_prefix(local)
        if source.pushed:
            apply(local, source.fetch({}, EVERYTHING, LIMIT)[0], prefix)
            return
        now = time.time()
        key = str(local)
        if everything or now - _files_at.get(key, 0.0) >= FILES_EVERY_S:
            folders, _files_at[key] = EVERYTHING, now
        else:
            folders = LIVE
        events = _fetch_all(source, local, folders, prefix)
        if events and folders != EVERYTHING and _ends_run(local, events):
            events = _fetch_all(source, local, EVERYTHING, prefix) or events  # what the runner kept before its end
        apply(local, events, prefix)
        if everything:
            _files_at.pop(key, None)


def _fetch_all(source: Source, local: Path, folders: tuple[str, ...], prefix: int = 0) -> list[Chunk]:
    """Round trips until nothing is left: every file written into the copy, the new events held back."""
    events: list[Chunk] = []
    for _round in range(64):
        known = local_state(local, folders, prefix)
        if events:  # held back, not yet in the copy: continue after them
            known[rf.EVENTS_PATH] = [events[-1].start + len(events[-1].data), -1]
        chunks, more = source.fetch(known, folders, LIMIT)
        apply(local, [c for c in chunks if c.rel != rf.EVENTS_PATH], prefix)
        events += [c for c in chunks if c.rel == rf.EVENTS_PATH]
        if not more:
            break
    return events


def _ends_run(local: Path, events: list[Chunk]) -> bool:
    """Do these new events (after the copy's unfinished last line) hold the run's final status?"""
    start = events[0].start
    try:
        with open(local / rf.EVENTS_PATH, "rb") as fh:
            before = _reader(fh)(max(0, start - 65536), min(start, 65536))
    except OSError:
        before = b""
    unfinished = before[before.rfind(b"\n") + 1 :]
    return rf.events_have_final(unfinished + b"".join(c.data for c in events))


def _reader(fh: Any) -> Callable[[int, int], bytes]:
    def read(start: int, length: int) -> bytes:
        fh.seek(start)
        return bytes(fh.read(length))

    return read


# -- the local copy ---------------------------------------------------------------------------------
@contextmanager
def locked(local: Path) -> Iterator[None]:
    """The copy's lock: whoever writes into a mirrored run folder holds it."""
    local.mkdir(parents=True, exist_ok=True)
    with open(local / rf.MIRROR_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def log_prefix(local: Path) -> int:
    """Bytes of launchbay's own lines at the start of the copy's live log, ahead of the far log.

    Fixed at the first pass: the copy's log then holds only what was written here while the run
    was Preparing, and the far log (the runner's output) is kept after it, never over it."""
    path = local / rf.MIRROR_LOG_PREFIX
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        pass
    try:
        text = (local / rf.STD_LOG_PATH).read_bytes()
    except OSError:
        text = b""
    # only launchbay's lines: a copy mirrored before this file existed holds the far log already
    ours = all(line.startswith(rf.LOG_LINE_PREFIX.encode()) for line in text.splitlines())
    size = len(text) if ours else 0
    try:
        tmp = path.with_name(path.name + rf.TMP)
        tmp.write_text(str(size))
        os.replace(tmp, path)
    except OSError:  # a full disk: the far log goes at its own offsets, as before
        return 0
    return size


def local_state(local: Path, folders: tuple[str, ...], log_start: int = 0) -> dict[str, list[Any]]:
    """rel -> [size, mtime_ns, sha1 of the last 4 KiB] of the copy's files (no hash for append-only ones);
    the live log's size is counted from ``log_start``, after launchbay's own lines ahead of the far log."""
    known: dict[str, list[Any]] = {}
    base = str(local)
    for folder in folders:
        for parent, _dirs, names in os.walk(os.path.join(base, folder)):
            prefix = os.path.relpath(parent, base).replace(os.sep, "/") + "/"
            for name in names:
                if name.endswith(rf.TMP):
                    continue
                rel = prefix + name
                try:
                    st = os.stat(os.path.join(parent, name))
                    entry: list[Any] = [st.st_size, st.st_mtime_ns]
                    if rel == rf.STD_LOG_PATH and log_start:
                        entry[0] = max(0, st.st_size - log_start)
                    if st.st_size and not rf.is_append_only(rel) and not rf.is_rewritten(rel):
                        with open(os.path.join(parent, name), "rb") as fh:
                            entry.append(rf.tail_hash(_reader(fh), st.st_size))
                except OSError:
                    continue
                known[rel] = entry
    return known


def apply(local: Path, chunks: list[Chunk], prefix: int = 0) -> None:
    """Write chunks into the copy: at offset 0 the file anew (through a rename), else at their offset
    (the live log's after ``prefix``, launchbay's own lines kept ahead of it)."""
    for chunk in chunks:
        parts = chunk.rel.split("/")
        if len(parts) < 2 or parts[0] not in (rf.JOURNAL, rf.FILES) or any(p in ("", ".", "..") for p in parts):
            continue  # only journal/ and files/, and nothing outside them
        path = local / chunk.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if chunk.rel == rf.STD_LOG_PATH and prefix:
            chunk = chunk._replace(start=chunk.start + prefix, size=None if chunk.size is None else chunk.size + prefix)
        if chunk.start == 0:
            tmp = path.with_name(path.name + ".mirror" + rf.TMP)
            tmp.write_bytes(chunk.data)
            os.replace(tmp, path)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, chunk.data, chunk.start)
                os.ftruncate(fd, chunk.start + len(chunk.data))
            finally:
                os.close(fd)
        if chunk.mtime_ns is not None and chunk.start + len(chunk.data) == chunk.size:
            os.utime(path, ns=(chunk.mtime_ns, chunk.mtime_ns))  # complete: the next pass skips it


def _split(result: dict[str, Any], payload: bytes) -> list[Chunk]:
    chunks, pos = [], 0
    for rel, start, length, size, mtime_ns in result["files"]:
        chunks.append(Chunk(rel, int(start), payload[pos : pos + length], int(size), int(mtime_ns)))
        pos += length
    return chunks


# -- adapters -------------------------------------------------------------------------------------------
class LocalFolder(Source):
    """A run folder on a file system this process sees (Slurm's shared folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def fetch(self, known: dict[str, list[Any]], folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
        result, payload = rf.scan(str(self.folder), known, list(folders), limit)
        return _split(result, payload), bool(result["truncated"])


#: runfolder.py runs as is in the connection's remote helper, which sets ``result`` and ``payload``
_SCAN = (
    Path(rf.__file__).read_text()
    + '\nresult, payload = scan(args["base"], args["known"], args["folders"], args["limit"])\n'
)


class SSHFolder(Source):
    """A run folder on an SSH host; ``call(fn)`` runs ``fn(connection)`` (reconnecting as needed)."""

    def __init__(self, call: Callable[[Callable[[Any], Any]], Any], folder: str) -> None:
        self.call, self.folder = call, folder

    def fetch(self, known: dict[str, list[Any]], folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
        args = {"base": self.folder, "known": known, "folders": list(folders), "limit": limit}
        result, payload = self.call(lambda conn: conn.call(_SCAN, args))
        return _split(result, payload), bool(result["truncated"])


class DockerArchive(Source):
    """A run folder inside a container, read through the archive API (remote daemons)."""

    def __init__(self, container: Any, folder: str) -> None:
        self.container, self.folder = container, folder

    def fetch(self, known: dict[str, list[Any]], folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
        import io
        import tarfile

        from docker.errors import NotFound

        chunks: list[Chunk] = []
        # The journal last: a status read after the log is at least as new as the log (a run that has
        # ended is fetched again whole, so files read before its final event are brought up to date).
        for folder in sorted(folders, key=lambda f: f == rf.JOURNAL):
            try:
                stream, _ = self.container.get_archive(f"{self.folder}/{folder}")
            except NotFound:
                continue
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                for member in tar.getmembers():
                    name = PurePosixPath(member.name)
                    if not member.isfile() or name.is_absolute() or ".." in name.parts or name.name.endswith(rf.TMP):
                        continue
                    rel = str(PurePosixPath(folder).parent / name)  # the archive's top is folder's last part
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    data = source.read()
                    mtime = int(member.mtime) * 1_000_000_000
                    start = rf.copy_from(rel, len(data), mtime, known.get(rel), lambda s, n: data[s : s + n])  # noqa: B023
                    if start is not None:
                        chunks.append(Chunk(rel, start, data[start:], len(data), mtime))
        chunks.sort(key=lambda c: c.rel == rf.EVENTS_PATH)  # events last
        return chunks, False


class RayLog(Source):
    """Chunks a Ray job printed into its log (``@lb1 OFFSET PATH t|b DATA``, see rayship.py).

    ``read_log()`` returns the job's whole log; ``state`` (the log position reached)
    is kept in ``ray_sync.json`` in the copy. Lines without the tag (the runner's own
    messages) are kept as ``journal/runner.log``.
    """

    pushed = True
    PREFIX = "@lb1 "
    STATE = rf.RAY_LOG_STATE

    def __init__(self, local: Path, read_log: Callable[[], str], min_interval: Callable[[int], float]) -> None:
        self.local, self.read_log, self.min_interval = local, read_log, min_interval

    def fetch(self, known: dict[str, list[Any]], folders: tuple[str, ...], limit: int) -> tuple[list[Chunk], bool]:
        state_path = self.local / self.STATE
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            state = {}
        pos = int(state.get("pos", 0))
        if state.get("closed") or time.time() - float(state.get("at", 0)) < self.min_interval(pos):
            return [], False  # closed: ended here already (canceled while pending)
        text = self.read_log()
        end = text.rfind("\n") + 1
        chunks = self.parse(self.local, text[pos:end]) if end > pos else []
        state_path.write_text(json.dumps({"pos": max(pos, end), "at": time.time()}))
        return chunks, False

    @classmethod
    def parse(cls, local: Path, text: str) -> list[Chunk]:
        """The chunks of ``text`` (whole lines); other lines are appended to journal/runner.log."""
        plain: list[str] = []
        chunks: list[Chunk] = []
        for line in text.split("\n")[:-1]:
            if not line.startswith(cls.PREFIX):
                plain.append(line)
                continue
            parts = line[len(cls.PREFIX) :].split(" ", 3)
            if len(parts) != 4 or not parts[0].isdigit():
                continue  # "end", or a line cut short
            offset, rel, encoding, payload = int(parts[0]), unquote(parts[1]), parts[2], parts[3]
            if encoding == "t":
                data = json.loads(payload).encode("utf-8", "surrogateescape")
            else:
                data = base64.b64decode(payload)
            chunks.append(Chunk(rel, offset, data))
        if plain:
            (local / rf.JOURNAL).mkdir(parents=True, exist_ok=True)
            with open(local / rf.JOURNAL / rf.RUNNER_LOG, "a", encoding="utf-8", errors="replace") as fh:
                fh.write("\n".join(plain) + "\n")
        return chunks
