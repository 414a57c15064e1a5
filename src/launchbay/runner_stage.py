"""Staging a snapshot into a run's work dir (stdlib only, shipped with the runner).

Every run gets private copies of its files, never links to the store's blobs: a
run that writes into one of its files changes nothing another run reads
(copy-on-write in effect).

Copies cost a new inode per file (~10 us on an idle ext4 disk, ~0.4 ms on a busy
one, against a link's ~10 us). So that repeated local runs of one folder do not
pay it each time, a finished run's work tree is *recycled* as a spare for the next
run of the same folder: only files whose inode, size and ctime show they were never
written, renamed, chmod-ed or hard-linked are kept (ctime cannot be set back from
user space), everything else the run left (new files, links, caches) is removed;
its processes are all stopped by then (the runner is a subreaper). The next run
claims the spare with one rename and copies only what differs from its snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

SPARE_FILES = "files.json"
# path -> [sha256, mode, inode, ctime_ns, size] of each private copy in a work tree
Staged = dict[str, list[Any]]


class MissingBlobError(Exception):
    """A snapshot file's blob is not in the store (deleted by hand?)."""


def copy_file(source: str, dest: str, mode: int) -> None:
    """A private copy; ``copy_file_range`` shares extents where the file system can (XFS, Btrfs)."""
    try:
        src = os.open(source, os.O_RDONLY)
    except FileNotFoundError:
        raise MissingBlobError(source) from None
    try:
        perm = 0o755 if mode & 0o111 else 0o644
        try:
            dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm)
        except FileExistsError:  # never write into an inode that may be shared: a new one
            os.unlink(dest)
            dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm)
        try:
            size = os.fstat(src).st_size
            copied = 0
            try:
                while copied < size:
                    n = os.copy_file_range(src, dst, size - copied)
                    if n == 0:
                        break
                    copied += n
            except (AttributeError, OSError):  # no copy_file_range here (old kernel, other OS, some FS)
                os.lseek(src, 0, os.SEEK_SET)
                os.lseek(dst, 0, os.SEEK_SET)
                os.ftruncate(dst, 0)
                with open(src, "rb", closefd=False) as fin, open(dst, "wb", closefd=False) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _record(path: str, digest: str, mode: int) -> list[Any]:
    st = os.lstat(path)
    return [digest, mode, st.st_ino, st.st_ctime_ns, st.st_size]


def copy_files(entries: list[dict[str, Any]], blobs: str, work: str, staged: Staged) -> None:
    """Copy ``entries`` (manifest files) from the blob folder into ``work``; missing blobs named at once."""
    made: set[str] = set()
    missing: list[str] = []
    for entry in entries:
        rel, digest, mode = entry["path"], entry["sha256"], entry.get("mode", 0o644)
        dest = os.path.join(work, rel)
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            copy_file(os.path.join(blobs, digest[:2], digest[2:]), dest, mode)
        except MissingBlobError:
            missing.append(rel)
            continue
        staged[rel] = _record(dest, digest, mode)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MissingBlobError(
            f"the store has lost the content of {', '.join(missing[:5])}{more}; "
            "submit again (the next snapshot stores it again from the source folder)"
        )


def claim_spare(spare: str, run_dir: str, work: str, entries: list[dict[str, Any]], blobs: str) -> Staged | None:
    """Take the spare tree (one rename) and make it ``entries`` exactly; None when there is none."""
    holder = os.path.join(run_dir, ".spare")
    try:
        os.rename(spare, holder)  # atomic: of two runs claiming it, one gets it
    except OSError:
        return None
    try:
        with open(os.path.join(holder, SPARE_FILES), encoding="utf-8") as fh:
            have: Staged = json.load(fh)
        os.rename(os.path.join(holder, "tree"), work)
    except (OSError, ValueError):
        shutil.rmtree(holder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        return None
    shutil.rmtree(holder, ignore_errors=True)
    wanted = {e["path"]: e for e in entries}
    for rel, (digest, mode, *_rest) in list(have.items()):
        entry = wanted.get(rel)
        if entry is None or entry["sha256"] != digest or entry.get("mode", 0o644) != mode:
            _remove(work, rel)
            del have[rel]
    copy_files([e for rel, e in wanted.items() if rel not in have], blobs, work, have)
    return have


def _remove(work: str, rel: str) -> None:
    try:
        os.unlink(os.path.join(work, rel))
    except OSError:
        return
    folder = os.path.dirname(rel)
    while folder:  # folders only that file needed go too, as a fresh staging would not have them
        try:
            os.rmdir(os.path.join(work, folder))
        except OSError:
            return
        folder = os.path.dirname(folder)


def recycle(work: str, staged: Staged, spare: str) -> bool:
    """Turn a finished run's work tree into the next spare; False (tree removed) when it cannot.

    Kept: regular files the run never touched (same inode, size and ctime, one link).
    Removed: everything else, links included; folders are never followed."""
    keep: Staged = {}

    def fail(exc: OSError) -> None:
        raise exc  # a folder we cannot list may hide anything: give up recycling

    try:
        for folder, dirs, files in os.walk(work, onerror=fail):
            for name in list(dirs):
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    os.unlink(path)
                    dirs.remove(name)
            for name in files:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, work)
                was = staged.get(rel)
                st = os.lstat(path)
                if was is not None and st.st_nlink == 1 and [st.st_ino, st.st_ctime_ns, st.st_size] == was[2:]:
                    keep[rel] = was  # ctime: any write, chmod or link since staging would have moved it
                else:
                    os.unlink(path)
        for folder, _dirs, _files in os.walk(work, topdown=False, onerror=fail):
            if folder != work:
                try:
                    os.rmdir(folder)  # folders left empty: a fresh staging would not have them
                except OSError:
                    pass
        os.makedirs(os.path.dirname(spare), exist_ok=True)
        tmp = f"{spare}.{os.getpid()}.tmp"
        os.makedirs(tmp)
        with open(os.path.join(tmp, SPARE_FILES), "w", encoding="utf-8") as fh:
            json.dump(keep, fh)
        os.rename(work, os.path.join(tmp, "tree"))
        try:
            os.rename(tmp, spare)  # fails when another run left a spare first: keep theirs
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        return True
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
        return False


def make_links(work: str, links: list[dict[str, str]]) -> None:
    """The snapshot's symlinks (each checked at snapshot time to stay inside the project)."""
    for link in links:
        dest = os.path.join(work, link["path"])
        if not os.path.lexists(dest):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.symlink(link["target"], dest)


def stage_snapshot(config: dict[str, Any], work: str) -> Staged:
    """Put the snapshot's files into ``work`` as private copies; returns what was staged.

    With ``stage_spare`` (the local target) a spare tree left by an earlier run of the
    same folder is claimed first. Symlinks the snapshot recorded (inside the project
    only) are made as links."""
    snapshot = config.get("snapshot") or {}
    staged: Staged = {}
    if snapshot.get("manifest"):
        blobs = snapshot["blobs"]
        with open(snapshot["manifest"], encoding="utf-8") as fh:
            manifest = json.load(fh)
        spare = config.get("stage_spare")
        claimed = None
        if spare:
            claimed = claim_spare(spare, os.path.dirname(work), work, manifest["files"], blobs)
        if claimed is None:
            copy_files(manifest["files"], blobs, work, staged)
        else:
            staged = claimed
        os.makedirs(work, exist_ok=True)
        make_links(work, manifest.get("links") or [])
    else:
        os.makedirs(work, exist_ok=True)
    make_links(work, config.get("snapshot_links") or [])  # targets that ship work/ themselves (Ray, Slurm)
    return staged
