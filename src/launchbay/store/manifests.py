"""Manifests: the JSON lists of ``{path, sha256, size, mode}`` that snapshots and model
versions are made of, and the three things done with them: store files as one, check
its blobs are all there, and write it back out as files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import StoreDamagedError
from .base import Store


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(rel: str, path: Path) -> dict[str, Any]:
    """A manifest's entry for the local file ``path`` kept as ``rel``."""
    status = os.stat(path)
    mode = 0o755 if status.st_mode & 0o111 else 0o644
    return {"path": rel, "sha256": file_sha256(path), "size": status.st_size, "mode": mode}


def manifest_bytes(entries: list[dict[str, Any]], **extra: Any) -> bytes:
    """The manifest blob of these entries (its SHA-256 is its id): the same bytes wherever it is made."""
    manifest = {"version": 1, **extra, "files": entries}
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def put_files(store: Store, files: list[tuple[str, Path]], **extra: Any) -> tuple[str, list[dict[str, Any]]]:
    """Store ``(relative path, local file)`` pairs as blobs plus a manifest; (manifest id, entries)."""
    entries = []
    for rel, path in sorted(files):
        entry = file_entry(rel, path)
        store.blobs.put_file(path, entry["sha256"])
        entries.append(entry)
    return store.blobs.put_bytes(manifest_bytes(entries, **extra)), entries


def read_manifest(store: Store, manifest_id: str) -> dict[str, Any]:
    return dict(json.loads(store.blobs.read_bytes(manifest_id)))


def missing_blobs(store: Store, manifest_id: str) -> list[str]:
    """What of a manifest is gone from the store: ``["manifest"]`` or the paths whose blobs are."""
    if not store.blobs.has(manifest_id):
        return ["manifest"]
    return [f["path"] for f in read_manifest(store, manifest_id)["files"] if not store.blobs.has(f["sha256"])]


def referenced_blobs(store: Store, manifest_id: str) -> set[str]:
    """The manifest's own blob and every file blob it names (those present)."""
    if not store.blobs.has(manifest_id):
        return set()
    return {manifest_id, *(f["sha256"] for f in read_manifest(store, manifest_id)["files"])}


def outside(entries: list[dict[str, Any]], dest: Path) -> list[str]:
    """The manifest paths that would land outside ``dest`` (``../x``, ``/etc/x``): a damaged or forged manifest."""
    root = dest.resolve()
    bad = []
    for entry in entries:
        target = (root / str(entry["path"])).resolve()
        if target == root or not target.is_relative_to(root):
            bad.append(str(entry["path"]))
    return bad


def write_files(
    store: Store, entries: list[dict[str, Any]], dest: Path, what: str = "A manifest in the store"
) -> list[Path]:
    """Write manifest entries under ``dest`` (copies, never links: the files are the user's).

    A path that points outside ``dest`` is a ``StoreDamagedError`` before any file is written."""
    bad = outside(entries, dest)
    if bad:
        shown = ", ".join(repr(p) for p in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise StoreDamagedError(
            f"{what} names files outside the folder they are written to ({shown}): it is damaged or was "
            "not written by launchbay, so nothing was written. Check where this store came from."
        )
    root = dest.resolve()
    written = []
    for entry in entries:
        target = (root / entry["path"]).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.blobs.local_path(entry["sha256"]), target)
        os.chmod(target, 0o755 if entry.get("mode", 0o644) & 0o111 else 0o644)
        written.append(target)
    return written
