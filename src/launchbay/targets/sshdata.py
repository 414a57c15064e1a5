"""Data inputs on an SSH host: a content-addressed cache that receives only what it lacks.

Layout of the host's cache (``data_cache`` in the target's settings, default ``~/.cache/launchbay/data``)::

    objects/ab/cdef...          each file's content once, named by its SHA-256 (checked on arrival), read-only
    versions/<hash>/...         one version as a tree of hard links to its objects: the path the run reads
    versions/<hash>.complete    the tree's (path, size, mtime, inode) per file, written last

A version is used only when its ``.complete`` exists and every file of its tree still has the size,
mtime and inode recorded there, so a partly sent version is never used as complete. A run can change
its input (the files are read-only, but a run as root may write anyway): before the next run uses the
version, each changed or deleted file is found by that check, its path and (when it was written in
place through the link) its object are dropped, sent again and linked again — a cached version is
never served changed. Objects arrive in batches that each land atomically, so a send cut short
resumes with what is still missing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.manifest import Manifest
from ..data.progress import Progress
from ..errors import TargetError
from ..store import Store
from ..store.records import RunInput
from .fileset import blob_name

# What of a version the host has: whether its tree is complete and intact (mending what a run changed),
# and the objects it lacks.
CHECK = r"""
import json, os
cache = os.path.abspath(os.path.expanduser(args["cache"]))
version, files = args["version"], args["files"]
tree = os.path.join(cache, "versions", version)
stamp = tree + ".complete"
objects = os.path.join(cache, "objects")
mended = []
if os.path.isfile(stamp):
    with open(stamp) as fh:
        recorded = {p: (s, m, i) for p, s, m, i in json.load(fh)}
    for path in recorded:
        full = os.path.join(tree, path)
        try:
            st = os.lstat(full)
            ok = (st.st_size, st.st_mtime_ns, st.st_ino) == tuple(recorded[path])
        except OSError:
            st, ok = None, False
        if not ok:
            mended.append(path)
    wanted = set(recorded)
    for folder, dirs, names in os.walk(tree):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), tree)
            if rel not in wanted:
                mended.append(rel)
    if mended:
        os.unlink(stamp)  # not complete until mended
        by_path = {p: h for p, s, h in files}
        for rel in mended:
            full = os.path.join(tree, rel)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            digest = by_path.get(rel)
            if digest:
                obj = os.path.join(objects, digest[:2], digest[2:])
                try:
                    if os.stat(obj).st_ino == st.st_ino:
                        os.unlink(obj)  # written in place through the link: the object changed too
                except OSError:
                    pass
            os.unlink(full)
complete = os.path.isfile(stamp)
missing = []
if not complete:
    for path, size, digest in files:
        obj = os.path.join(objects, digest[:2], digest[2:])
        try:
            if os.stat(obj).st_size == size:
                continue
            os.unlink(obj)
        except OSError:
            pass
        missing.append(digest)
result = {"cache": cache, "tree": tree, "complete": complete, "missing": sorted(set(missing)), "mended": mended}
"""

# Link the version's tree from its objects, then record it complete (the stamp last).
LINK = r"""
import json, os
cache = os.path.abspath(os.path.expanduser(args["cache"]))
tree = os.path.join(cache, "versions", args["version"])
objects = os.path.join(cache, "objects")
stats = []
for path, size, digest in args["files"]:
    obj = os.path.join(objects, digest[:2], digest[2:])
    os.chmod(obj, 0o444)
    full = os.path.join(tree, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    try:
        if os.lstat(full).st_ino != os.stat(obj).st_ino:
            os.unlink(full)
    except OSError:
        pass
    if not os.path.exists(full):
        try:
            os.link(obj, full)
        except FileExistsError:  # another submit of the same version linked it first
            pass
    st = os.lstat(full)
    stats.append([path, st.st_size, st.st_mtime_ns, st.st_ino])
tmp = "%s.complete.tmp-%d" % (tree, os.getpid())
with open(tmp, "w") as fh:
    json.dump(stats, fh)
os.replace(tmp, tree + ".complete")
result = tree
"""


# After a send that failed (a full disk): the temporary files of half-sent objects go.
CLEAN = r"""
import os
removed = 0
for folder, _, files in os.walk(os.path.join(args["cache"], "objects")):
    for name in files:
        if ".tmp-" in name:
            try:
                os.unlink(os.path.join(folder, name))
                removed += 1
            except OSError:
                pass
result = removed
"""


def manifest_of(store: Store, item: RunInput) -> Manifest:
    return Manifest.from_bytes(store.blobs.read_bytes(item.hash))


PARALLEL_BYTES = 64 << 20  # a send this large also goes over a second connection (the link idles less)
BATCH_BYTES = 32 << 20  # each batch lands atomically: a cut send resumes with what is still missing


def deliver(
    store: Store,
    connection: Callable[[Callable[[Any], Any]], Any],
    cache: str,
    item: RunInput,
    where: str,
    say: Callable[[str], None] | None = None,
    second: Callable[[], Any] | None = None,
) -> tuple[str, int]:
    """Make ``item``'s version complete in the host's cache: (its path there, data bytes sent).

    ``second()``, when given, opens another connection to the host; a large send uses it alongside."""
    manifest = manifest_of(store, item)
    files = [[f.path, f.size, f.sha256] for f in manifest.files]
    args = {"cache": cache, "version": item.hash, "files": files}
    state: dict[str, Any] = connection(lambda c: c.call(CHECK, args)[0])
    sent = 0
    if not state["complete"]:
        location = Path(str(item.location))
        folder = manifest.kind == "folder"
        sources = {f.sha256: (location / f.path if folder else location, f.size) for f in manifest.files}
        batches: list[tuple[dict[str, Path], int]] = [({}, 0)]
        for digest in state["missing"]:
            path, nbytes = sources[digest]
            if batches[-1][1] >= BATCH_BYTES:
                batches.append(({}, 0))
            batches[-1][0][blob_name(digest)] = path
            batches[-1] = (batches[-1][0], batches[-1][1] + nbytes)
        batches = [b for b in batches if b[0]]
        sent = sum(size for _, size in batches)
        progress = Progress(say, f"sending input {item.name!r} to {where}")
        try:
            _send(
                connection, f"{state['cache']}/objects", batches, progress, second if sent >= PARALLEL_BYTES else None
            )
        except Exception as exc:
            if "No space left" not in str(exc) and "Errno 28" not in str(exc):
                raise
            connection(lambda c: c.call(CLEAN, {"cache": state["cache"]})[0])
            raise TargetError(
                f"The data cache {state['cache']} on {where} is full (no space left on its disk) while sending input "
                f"{item.name!r}; the half-sent files were removed. Free space there (launchbay data gc --target ...) "
                "or set data_cache to a folder on a larger disk."
            ) from None
        connection(lambda c: c.call(LINK, args)[0])
        progress.done()
    tree = str(state["tree"])
    return (tree if manifest.kind == "folder" else f"{tree}/{manifest.files[0].path}"), sent


def _send(
    connection: Callable[[Callable[[Any], Any]], Any],
    objects: str,
    batches: list[tuple[dict[str, Path], int]],
    progress: Progress,
    second: Callable[[], Any] | None,
) -> None:
    """Send the batches over the pooled connection, and over a second one alongside when given."""
    import threading

    pending = list(reversed(batches))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def work(send: Callable[[dict[str, Path]], Any]) -> None:
        while not failures:
            with lock:
                if not pending:
                    return
                files, size = pending.pop()
            try:
                send(files)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
                failures.append(exc)
                return
            progress.add(len(files), size)

    helper = None
    if second is not None and len(batches) > 1:
        try:
            extra = second()
        except Exception:  # noqa: BLE001 - a second connection only speeds things up
            extra = None
        if extra is not None:
            helper = threading.Thread(
                target=work, args=(lambda f: extra.upload_files(objects, f, blobs=True),), daemon=True
            )
            helper.start()
    try:
        work(lambda f: connection(lambda c: c.upload_files(objects, f, blobs=True)))
    finally:
        if helper is not None:
            helper.join()
            extra.close()
    if failures:
        raise failures[0]


class HereConnection:
    """The same cache protocol on this machine's file system (a Slurm cluster's shared folder seen from
    the submitting machine): the scripts run in this process, objects are copied, never linked to the
    source, and checked by SHA-256 before they land."""

    def call(self, code: str, args: Any = None) -> tuple[Any, bytes]:
        scope: dict[str, Any] = {"args": args}
        exec(code, scope)  # noqa: S102 - launchbay's own scripts (CHECK, LINK), the same ones a host runs
        return scope.get("result"), b""

    def upload_files(self, base: str, files: dict[str, Path], *, blobs: bool = False) -> int:
        import hashlib
        import os

        sent = 0
        for rel, source in files.items():
            dest = os.path.join(base, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = f"{dest}.tmp-{os.getpid()}"
            digest = hashlib.sha256()
            with open(source, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
                    sent += len(block)
            if blobs and digest.hexdigest() != rel.replace("/", ""):
                os.unlink(tmp)
                raise OSError(f"{source} changed since it was hashed; submit again")
            os.replace(tmp, dest)
        return sent


def here(action: Callable[[Any], Any]) -> Any:
    return action(HereConnection())


# Free the versions not in ``keep`` and every object no version links any more (its link count is 1).
COLLECT = r"""
import os, shutil
cache = os.path.abspath(os.path.expanduser(args["cache"]))
keep, dry = set(args["keep"]), args["dry_run"]
versions = os.path.join(cache, "versions")
gone, unlinked = [], {}
for name in sorted(os.listdir(versions)) if os.path.isdir(versions) else []:
    tree = os.path.join(versions, name)
    if name in keep or not os.path.isdir(tree) or ".tmp-" in name:
        continue
    gone.append(name)
    for folder, _, files in os.walk(tree):  # the links this version holds, by inode
        for file in files:
            try:
                ino = os.lstat(os.path.join(folder, file)).st_ino
            except OSError:
                continue
            unlinked[ino] = unlinked.get(ino, 0) + 1
    if not dry:
        try:
            os.unlink(tree + ".complete")
        except OSError:
            pass
        shutil.rmtree(tree, ignore_errors=True)
freed = dropped = 0
for folder, _, files in os.walk(os.path.join(cache, "objects")):
    for file in files:
        path = os.path.join(folder, file)
        try:
            st = os.stat(path)
        except OSError:
            continue
        links = st.st_nlink - (unlinked.get(st.st_ino, 0) if dry else 0)
        if links <= 1:  # no version links it any more
            freed += st.st_size
            dropped += 1
            if not dry:
                os.unlink(path)
result = {"cache": cache, "versions": gone, "objects": dropped, "bytes": freed}
"""


def collect(
    connection: Callable[[Callable[[Any], Any]], Any], cache: str, keep: set[str], dry_run: bool
) -> dict[str, Any]:
    """Free a host cache's versions not in ``keep`` and the objects only they held."""
    found: dict[str, Any] = connection(
        lambda c: c.call(COLLECT, {"cache": cache, "keep": sorted(keep), "dry_run": dry_run})[0]
    )
    return found
