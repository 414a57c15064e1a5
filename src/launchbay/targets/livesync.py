"""Bring a remote run's ``files/outputs`` and ``files/logs`` back while it runs, incrementally.

Used by the SSH target (and Slurm through a login node). One round trip to the
connection's remote helper: the local side says, for each file it has, its size
and a hash of its last 4 KiB; the remote side sends only what is new. A file
that grew with the same bytes before the old end gets its tail; one that was
rewritten (smaller, or its old end changed) comes whole. The run's final fetch
still copies every file exactly.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

LIVE_DIRS = ("files/outputs", "files/logs")
EVERY_S = 1.0
PROBE = 4096
_last: dict[str, float] = {}  # run id → when its files were last brought back

_LIVE = r"""
import hashlib, os
base, known, left, probe = args["base"], args["known"], args["limit"], args["probe"]
index, chunks, truncated = [], [], False
for folder in args["dirs"]:
    for parent, subdirs, names in sorted(os.walk(os.path.join(base, folder))):
        for name in sorted(names):
            if name.endswith(".tmp") or truncated:
                continue
            path = os.path.join(parent, name)
            rel = os.path.relpath(path, base)
            try:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    have, start = known.get(rel), 0
                    if have is not None and have[0] <= size:
                        fh.seek(max(0, have[0] - probe))
                        if hashlib.sha1(fh.read(have[0] - max(0, have[0] - probe))).hexdigest() == have[1]:
                            start = have[0]
                    if have is not None and start == size:
                        continue
                    fh.seek(start)
                    chunk = fh.read(min(size - start, left + 1))
            except (OSError, ValueError):
                continue
            if len(chunk) > left:
                chunk, truncated = chunk[:left], True
            index.append([rel, start, len(chunk)])
            chunks.append(chunk)
            left -= len(chunk)
result = {"files": index, "truncated": truncated}
payload = b"".join(chunks)
"""


def _probe(path: Path) -> list[Any]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - PROBE))
        return [size, hashlib.sha1(fh.read()).hexdigest()]


def local_state(local: Path) -> dict[str, list[Any]]:
    """rel → [size, sha1 of the last 4 KiB] of every file already brought back."""
    known: dict[str, list[Any]] = {}
    for top in LIVE_DIRS:
        for parent, _dirs, names in os.walk(local / top):
            for name in names:
                if name.endswith(".tmp"):
                    continue
                path = Path(parent) / name
                try:
                    known[path.relative_to(local).as_posix()] = _probe(path)
                except OSError:
                    continue
    return known


def apply(local: Path, result: dict[str, Any], payload: bytes) -> None:
    """Write what came back: a tail appended at its offset, or a file begun anew."""
    pos = 0
    for rel, start, size in result["files"]:
        data = payload[pos : pos + size]
        pos += size
        path = local / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if start:
            with open(path, "r+b") as fh:
                fh.seek(start)
                fh.write(data)
                fh.truncate()
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)


def sync_live_files(conn: Any, run_id: str, run_dir: str, local: Path, limit: int = 32 << 20) -> None:
    """At most every ``EVERY_S`` per run: bring ``files/outputs`` and ``files/logs`` up to date."""
    now = time.time()
    if now - _last.get(run_id, 0.0) < EVERY_S:
        return
    _last[run_id] = now
    for _round in range(64):
        args = {"base": run_dir, "known": local_state(local), "dirs": list(LIVE_DIRS), "limit": limit, "probe": PROBE}
        result, payload = conn.call(_LIVE, args)
        apply(local, result, payload)
        if not result["truncated"]:
            return
