"""Snapshots: which files of a folder a run gets, content-addressed in the store.

Ignore rules, per folder, gitignore semantics (nested files too): a folder's
``.gitignore`` plus its ``.launchbayignore`` (whose lines come after, so they can
also re-include with ``!``); a ``.launchbayignore`` whose first line is
``# launchbay: replace`` is used alone. Without a ``.launchbayignore``, an
``.amlignore`` replaces the ``.gitignore`` (Azure ML v1's rule). Always left out:
``.git``, ``.launchbay``, ``.ipynb_checkpoints``, ``__pycache__``, virtual environments,
and ``outputs/`` and ``logs/`` at the top.

A ``launchbay.toml`` (at any depth) is kept with its secret values replaced by ``***``
(``secrets.redact_config``): runs, their staged copies and the store never hold the secret.

Re-snapshotting an unchanged folder hashes nothing: like git's index, a cache of
(size, mtime, inode) → SHA-256 per file is consulted before reading any file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import marshal
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pathspec

from . import runfolder as rf
from .config import CONFIG_FILE
from .errors import SnapshotError
from .secrets import redact_config
from .snapshot_budget import Budget, budget_error
from .snapshot_budget import human_bytes as human_bytes
from .store import Store

IGNORE_FILES = (".launchbayignore", ".amlignore", ".gitignore")
REPLACE_MARKER = "# launchbay: replace"
ALWAYS_EXCLUDED = {".git", ".launchbay", ".ipynb_checkpoints", "__pycache__", ".hg", ".svn"}
EXCLUDED_AT_ROOT = set(rf.KEPT)  # the run writes them
_INDEX_VERSION = 3  # 2: a launchbay.toml's digest is of its redacted text; 3: a pyproject.toml's too
PYPROJECT = "pyproject.toml"


@dataclass
class Rule:
    """One pattern line of one ignore file (for ``--dry-run`` explanations)."""

    source: str
    line: str

    def __str__(self) -> str:
        return f"{self.source}: {self.line}"


class FileEntry(NamedTuple):
    """One file a snapshot takes (a tuple: 10,000 of them are made on every re-snapshot)."""

    path: str  # relative, with forward slashes
    size: int
    mtime_ns: int
    inode: int
    mode: int
    rule: str = ""
    link: str = ""  # a symlink inside the project: its target, relative to the link's folder


@dataclass
class Scan:
    root: Path
    files: list[FileEntry] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class Snapshot:
    id: str
    root: Path
    files: int
    bytes: int
    new_blobs: int
    new_bytes: int
    unreadable: list[tuple[str, str]]
    manifest: dict[str, Any] | None  # None when unchanged: read it with store.snapshot_manifest(id)


class _Spec:
    """The rules of one folder's ignore files, which apply below the folder they sit in."""

    def __init__(self, base: str, parts: list[tuple[str, list[str]]]) -> None:
        self.base = base  # folder relative to the root, "" or "a/b/"
        self.lines = [line for _, lines in parts for line in lines]
        self.origins = [source for source, lines in parts for _ in lines]
        self.spec = pathspec.GitIgnoreSpec.from_lines(self.lines)

    def check(self, rel: str) -> tuple[bool | None, str]:
        """(ignored?, the matching line) for ``rel``; (None, "") when no pattern matches."""
        result = self.spec.check_file(rel[len(self.base) :])
        if result.include is None:
            return None, ""
        index = result.index if result.index is not None else 0
        if index >= len(self.lines):
            return bool(result.include), "?"
        return bool(result.include), f"{self.origins[index]}: {self.lines[index].strip()}"


def _read_ignore_files(folder: str) -> dict[str, tuple[list[str], tuple[int, int]]]:
    found = {}
    for name in IGNORE_FILES:
        path = os.path.join(folder, name)
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8", errors="replace") as fh:
                found[name] = (fh.read().splitlines(), (st.st_mtime_ns, st.st_size))
        except OSError:
            continue
    return found


def _load_ignore(folder: str, base: str) -> tuple[_Spec | None, tuple[Any, ...]]:
    """The folder's ignore rules and a signature of the files they came from (for the scan cache).

    ``.launchbayignore`` adds to ``.gitignore`` (unless its first line is ``# launchbay: replace``);
    ``.amlignore`` replaces ``.gitignore``, as in Azure ML v1."""
    found = _read_ignore_files(folder)
    if not found:
        return None, ()
    if ".launchbayignore" in found:
        lines = found[".launchbayignore"][0]
        replace = bool(lines) and lines[0].strip().lower() == REPLACE_MARKER
        names = [".launchbayignore"] if replace else [n for n in (".gitignore", ".launchbayignore") if n in found]
    else:
        names = [".amlignore" if ".amlignore" in found else ".gitignore"]
    parts = [(base + name, found[name][0]) for name in names]
    return _Spec(base, parts), tuple((base + name, *found[name][1]) for name in names)


def _is_venv(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def scan(
    root: Path,
    *,
    explain: bool = False,
    skip: tuple[Path, ...] = (),
    dir_cache: dict[str, list[Any]] | None = None,
) -> Scan:
    """Walk ``root`` applying the ignore rules; with ``explain`` also keep why each file was left out.

    ``skip`` holds folders never to enter (the store, when it lives inside the project).
    ``dir_cache`` remembers each folder's decisions: a folder whose mtime and whose ignore
    files are unchanged is not listed or matched again, only its files are stat'ed."""
    root = root.resolve()
    skipped = {str(p.resolve()) for p in skip}
    if not root.is_dir():
        raise SnapshotError(f"Source folder {root} does not exist or is not a folder; pass an existing --source-dir.")
    result = Scan(root)
    seen_dirs: dict[str, list[Any]] = {}
    stack: list[tuple[str, list[_Spec], tuple[Any, ...]]] = [("", [], ())]
    while stack:
        base, specs, signature = stack.pop()
        folder = os.path.join(root, base) if base else str(root)
        if base and _is_venv(folder):
            if explain:
                result.excluded.append((base, "virtual environment"))
            continue
        own, own_sig = _load_ignore(folder, base)
        active = specs + [own] if own else specs
        signature = signature + own_sig
        try:
            folder_mtime = os.stat(folder).st_mtime_ns
        except OSError as exc:
            result.unreadable.append((base or ".", str(exc.strerror or exc)))
            continue
        cached = None if dir_cache is None or explain else dir_cache.get(base)
        if cached is not None and cached[0] == folder_mtime and tuple(map(tuple, cached[1])) == signature:
            files, subdirs = cached[2], cached[3]
            prefix = folder + "/"
            for name in files:
                _add_file(result, base + name, prefix + name, "included")
        else:
            files, subdirs = _list_folder(result, folder, base, active, skipped, explain)
        seen_dirs[base] = [folder_mtime, [list(x) for x in signature], files, subdirs]
        for name in reversed(subdirs):
            stack.append((base + name + "/", active, signature))
    if dir_cache is not None and not explain:
        dir_cache.clear()
        dir_cache.update(seen_dirs)
    result.files.sort(key=lambda f: f.path)
    return result


def _list_folder(
    result: Scan, folder: str, base: str, active: list[_Spec], skipped: set[str], explain: bool
) -> tuple[list[str], list[str]]:
    """Decide each entry of one folder; returns (included file names, folders to enter)."""
    files: list[str] = []
    subdirs: list[str] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        result.unreadable.append((base or ".", str(exc.strerror or exc)))
        return files, subdirs
    for entry in entries:
        rel = base + entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            result.unreadable.append((rel, str(exc)))
            continue
        if is_dir:
            if entry.path in skipped:
                if explain:
                    result.excluded.append((rel + "/", "the launchbay store"))
                continue
            if entry.name in ALWAYS_EXCLUDED or (not base and entry.name in EXCLUDED_AT_ROOT):
                if explain:
                    result.excluded.append((rel + "/", "always excluded"))
                continue
            ignored, why = _decide(active, rel + "/")
            if ignored:
                if explain:
                    result.excluded.append((rel + "/", why))
                continue
            subdirs.append(entry.name)
            continue
        ignored, why = _decide(active, rel)
        if ignored:
            if explain:
                result.excluded.append((rel, why))
            continue
        if entry.path in skipped:  # a data input inside the project: it reaches the run another way
            if explain:
                result.excluded.append((rel, "a data input"))
            continue
        if _add_file(result, rel, entry.path, why or "included", explain):
            files.append(entry.name)
    return files, subdirs


def _link_target(root: Path, rel: str, path: str) -> tuple[str, str]:
    """(target relative to the link's folder, "") for a link that stays inside ``root``, else ("", why)."""
    try:
        written = os.readlink(path)
    except OSError as exc:
        return "", f"unreadable symlink: {exc.strerror or exc}"
    real = os.path.realpath(path)
    inside = real == str(root) or real.startswith(str(root) + os.sep)
    if not inside:
        return "", f"symlink to {written}, outside the project: skipped (its content is never copied)"
    if not os.path.exists(real):
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "", f"symlink loop through {written}: skipped"
        return "", f"broken symlink to {written}: skipped"
    return os.path.relpath(real, os.path.dirname(os.path.join(root, rel))), ""


def _add_file(result: Scan, rel: str, path: str, rule: str, explain: bool = False) -> bool:
    try:
        st = os.lstat(path)
    except OSError as exc:
        result.unreadable.append((rel, f"unreadable: {exc.strerror or exc}"))
        return False
    if stat.S_ISLNK(st.st_mode):  # recorded as a link, never followed out of the project
        target, why = _link_target(result.root, rel, path)
        if not target:
            result.excluded.append((rel, why)) if explain else result.unreadable.append((rel, why))
            return False
        result.files.append(FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, rule, target))
        return True
    if not stat.S_ISREG(st.st_mode):
        if explain:
            result.excluded.append((rel, "not a regular file"))
        return False
    result.files.append(FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, rule))
    return True


def _decide(specs: list[_Spec], rel: str) -> tuple[bool, str]:
    """The last matching pattern wins, deeper ignore files after shallower ones."""
    verdict: bool | None = None
    why = ""
    for spec in specs:
        if not rel.startswith(spec.base):
            continue
        decision, rule = spec.check(rel)
        if decision is not None:
            verdict, why = decision, rule
    if verdict is False:
        return False, f"re-included by {why}"
    return bool(verdict), why


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _kept_instead(path: Path) -> bytes | None:
    """What the snapshot keeps in place of the file: a launchbay.toml, or a pyproject.toml that holds
    launchbay's settings (``[tool.launchbay]``), without its secrets (None: the file)."""
    if path.name == CONFIG_FILE:
        return redact_config(path.read_bytes())
    if path.name == PYPROJECT:
        data = path.read_bytes()
        return redact_config(data) if b"[tool.launchbay" in data else None
    return None


def _digest(path: Path) -> str:
    """The sha256 of what the snapshot keeps of ``path``."""
    kept = _kept_instead(path)
    return _hash_file(path) if kept is None else hashlib.sha256(kept).hexdigest()


def _store_blob(store: Store, path: Path, digest: str) -> bool:
    """Store what the snapshot keeps of ``path`` under ``digest``; False when it was there already."""
    kept = _kept_instead(path)
    if kept is None:
        return store.blobs.put_file(path, digest)
    had = store.blobs.has(digest)
    store.blobs.put_bytes(kept)
    return not had


def forget_snapshot_indexes(store: Store) -> None:
    """Make the next snapshot of every folder check its blobs again (some were removed or set aside)."""
    for index in (store.cache_dir / "cache").glob("snapshot-index-*"):
        index.unlink(missing_ok=True)


class _SnapshotIndex:
    """What the last snapshot of one source folder learned, kept in the store's local cache (like git's
    index): (size, mtime_ns, inode) → sha256 per file, and each folder's scan decisions."""

    def __init__(self, store: Store, root: Path) -> None:
        key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
        self.path = store.cache_dir / "cache" / f"snapshot-index-{key}.marshal"
        data: Any = None
        try:
            data = marshal.loads(self.path.read_bytes())  # a private cache: fastest to load
            if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION:
                data = {}  # an older launchbay's: its launchbay.toml digest is of the file with its secrets
            self.entries: dict[str, list[Any]] = data["files"]
            self.dirs: dict[str, list[Any]] = data["dirs"]
        except (OSError, ValueError, KeyError, TypeError, EOFError):
            self.entries, self.dirs = {}, {}
        self._dirs_before = dict(self.dirs)
        self.manifest: dict[str, Any] | None = data.get("manifest") if isinstance(data, dict) else None
        #: blob folder → its mtime when every blob this folder's snapshot needs was there;
        #: ``blobs_ok``: that holds for every file of the last snapshot
        self.blob_dirs: dict[str, int] = (data.get("blob_dirs") if isinstance(data, dict) else None) or {}
        self.blobs_ok = bool(data.get("blobs_ok")) if isinstance(data, dict) else False
        self._blobs_before = (dict(self.blob_dirs), self.blobs_ok)
        self.changed = False

    def digest(self, root: Path, f: FileEntry) -> tuple[str, bool]:
        """The file's sha256, and whether it came from the index (so its blob was stored already)."""
        if f.link:
            self.entries[f.path] = [f.size, f.mtime_ns, f.inode, "link:" + f.link]
            return "", True
        cached = self.entries.get(f.path)
        if cached and cached[0] == f.size and cached[1] == f.mtime_ns and cached[2] == f.inode:
            return str(cached[3]), True
        digest = _digest(root / f.path)
        self.entries[f.path] = [f.size, f.mtime_ns, f.inode, digest]
        self.changed = True
        return digest, False

    def all_unchanged(self, files: list[FileEntry]) -> bool:
        """Is every scanned file in the index with the same (size, mtime, inode), and no other?"""
        if len(files) != len(self.entries):
            return False
        entries = self.entries
        for f in files:
            cached = entries.get(f.path)
            if not cached or cached[0] != f.size or cached[1] != f.mtime_ns or cached[2] != f.inode:
                return False
        return True

    def save(self, keep: set[str]) -> None:
        dirs_changed = self.dirs != self._dirs_before or (self.blob_dirs, self.blobs_ok) != self._blobs_before
        if not self.changed and not dirs_changed and len(keep) == len(self.entries):
            return
        self.entries = {k: v for k, v in self.entries.items() if k in keep}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a name of its own: concurrent snapshots of one folder never share a temp file
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        data = {
            "version": _INDEX_VERSION,
            "files": self.entries,
            "dirs": self.dirs,
            "manifest": self.manifest,
            "blob_dirs": self.blob_dirs,
            "blobs_ok": self.blobs_ok,
        }
        try:
            tmp.write_bytes(marshal.dumps(data))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache: the next snapshot hashes again
            raise

    def _digests(self, files: list[FileEntry]) -> dict[str, str]:
        out = {}
        for f in files:
            cached = self.entries.get(f.path)
            if cached and not str(cached[3]).startswith("link:"):
                out[f.path] = str(cached[3])
        return out

    def restore_missing(self, store: Store, root: Path, files: list[FileEntry]) -> int:
        """Store again the blobs of ``files`` that were deleted from the store; how many were.

        Quick when nothing was deleted: one stat per blob folder, compared with the mtimes
        recorded when every blob was last seen there; only changed folders are listed."""
        if self.blobs_ok and store.blobs.unchanged(self.blob_dirs):
            return 0
        digests = self._digests(files)
        gone = store.blobs.missing(set(digests.values()), self.blob_dirs)
        restored = 0
        for f in files:
            if digests.get(f.path) in gone:
                try:
                    digest = _digest(root / f.path)  # the source may have changed since: hash again
                except OSError:
                    self.entries.pop(f.path, None)  # unreadable now: the snapshot itself reports it
                    self.changed = True
                    continue
                self.entries[f.path] = [f.size, f.mtime_ns, f.inode, digest]
                self.changed = True
                if _store_blob(store, root / f.path, digest):
                    restored += 1
        self.verify_blobs(store, files)
        return restored

    def verify_blobs(self, store: Store, files: list[FileEntry]) -> None:
        """Record whether every blob ``files`` need is in the store (and the folders' mtimes)."""
        self.blobs_ok = not store.blobs.missing(set(self._digests(files).values()), self.blob_dirs)


def take_snapshot(
    store: Store,
    root: Path,
    *,
    max_bytes: int,
    max_files: int,
    extra_files: dict[str, str | bytes] | None = None,
    entry: str = "",
    leave_out: tuple[Path, ...] = (),
) -> Snapshot:
    """Snapshot ``root`` into the store; the budget is checked before anything is written.

    ``entry`` (the run's script, or its working folder with a trailing ``/``) is never
    suggested for leaving out when the snapshot is over budget. ``leave_out``: files and
    folders that reach the run another way (its data inputs), never part of the snapshot."""
    with store.writing_blobs():  # gc must not drop blobs this snapshot's index says are stored
        return _take_snapshot(
            store,
            root,
            max_bytes=max_bytes,
            max_files=max_files,
            extra_files=extra_files,
            entry=entry,
            leave_out=leave_out,
        )


def _take_snapshot(
    store: Store,
    root: Path,
    *,
    max_bytes: int,
    max_files: int,
    extra_files: dict[str, str | bytes] | None,
    entry: str,
    leave_out: tuple[Path, ...] = (),
) -> Snapshot:
    cache = _SnapshotIndex(store, root.resolve())
    # never the store's own folder; a folder's remembered listing does not know what else is left out
    dir_cache = None if leave_out else cache.dirs
    scan_ = scan(root, skip=(store.cache_dir, *leave_out), dir_cache=dir_cache)
    budget = Budget(max_bytes, max_files)
    if budget.exceeded_by(scan_.files):
        raise budget_error(scan_.root, scan_.files, budget, entry)
    previous = cache.manifest
    if (
        not extra_files
        and previous
        and not previous.get("extras")
        and cache.all_unchanged(scan_.files)
        and store.blobs.has(previous["id"])
        and not cache.restore_missing(store, scan_.root, scan_.files)
    ):
        # nothing changed since the last snapshot of this folder: same id, nothing to hash or write
        cache.save({f.path for f in scan_.files})
        return Snapshot(previous["id"], scan_.root, len(scan_.files), scan_.total_bytes, 0, 0, scan_.unreadable, None)
    entries: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    new_blobs = cache.restore_missing(store, scan_.root, [f for f in scan_.files if not f.link])
    new_bytes = 0
    for f in scan_.files:
        if f.link:
            cache.digest(scan_.root, f)
            links.append({"path": f.path, "target": f.link})
            continue
        try:
            digest, known = cache.digest(scan_.root, f)
        except OSError as exc:
            scan_.unreadable.append((f.path, f"unreadable: {exc.strerror or exc}"))
            continue
        if not known and not store.blobs.has(digest):
            _store_blob(store, scan_.root / f.path, digest)
            new_blobs += 1
            new_bytes += f.size
        entries.append({"path": f.path, "sha256": digest, "size": f.size, "mode": 0o755 if f.mode & 0o111 else 0o644})
    for rel, text in sorted((extra_files or {}).items()):
        data = text.encode() if isinstance(text, str) else text
        digest = store.blobs.put_bytes(data)
        entries = [e for e in entries if e["path"] != rel]
        entries.append({"path": rel, "sha256": digest, "size": len(data), "mode": 0o644})
    cache.verify_blobs(store, [f for f in scan_.files if not f.link])
    entries.sort(key=lambda e: e["path"])
    manifest: dict[str, Any] = {"version": 1, "files": entries}
    if links:  # only when there are some: snapshots without links keep their ids
        manifest["links"] = links
    fingerprint = hashlib.sha1(
        "\n".join(f"{e['path']}\0{e['sha256']}\0{e['mode']}" for e in entries).encode()
        + "".join(f"\n{link['path']}\0->{link['target']}" for link in links).encode()
    ).hexdigest()
    if previous and previous.get("fingerprint") == fingerprint and store.blobs.has(previous["id"]):
        snapshot_id = previous["id"]  # same content as last time: same id, nothing to write
    else:
        snapshot_id = store.blobs.put_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
        cache.changed = True
    meta = {"id": snapshot_id, "fingerprint": fingerprint, "extras": bool(extra_files)}
    if meta != previous:
        cache.manifest, cache.changed = meta, True
    cache.save({f.path for f in scan_.files})
    total = sum(e["size"] for e in entries)
    store.add_snapshot(snapshot_id, len(entries), total, str(scan_.root))
    return Snapshot(snapshot_id, scan_.root, len(entries), total, new_blobs, new_bytes, scan_.unreadable, manifest)


def explain(root: Path, scan_: Scan | None = None) -> dict[str, Any]:
    """What ``launchbay snapshot --dry-run`` shows: each file, its rule, sizes by folder."""
    scan_ = scan_ or scan(root, explain=True)
    by_folder: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in scan_.files:
        parts = f.path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            key = "/".join(parts[:depth]) + "/" if depth else "./"
            by_folder[key][0] += f.size
            by_folder[key][1] += 1
    return {
        "root": str(scan_.root),
        "included": [{"path": f.path, "size": f.size, "rule": f.rule} for f in scan_.files],
        "excluded": [{"path": p, "rule": why} for p, why in scan_.excluded],
        "unreadable": [{"path": p, "reason": why} for p, why in scan_.unreadable],
        "folders": [{"folder": k, "bytes": v[0], "files": v[1]} for k, v in sorted(by_folder.items())],
        "files": len(scan_.files),
        "bytes": scan_.total_bytes,
    }
