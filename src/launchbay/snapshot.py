"""Snapshots: which files of a folder a run gets, content-addressed in the store.

Ignore rules, per folder, gitignore semantics (nested files too): a folder's
``.launchbayignore`` if it has one, else its ``.amlignore``, else its
``.gitignore``. Always left out: ``.git``, ``.launchbay``, ``.ipynb_checkpoints``,
``__pycache__``, virtual environments, and ``outputs/`` and ``logs/`` at the top.

Re-snapshotting an unchanged folder hashes nothing: like git's index, a cache of
(size, mtime, inode) → SHA-256 per file is consulted before reading any file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec

from .errors import SnapshotError, SnapshotTooLargeError
from .store import RunStore

IGNORE_FILES = (".launchbayignore", ".amlignore", ".gitignore")
ALWAYS_EXCLUDED = {".git", ".launchbay", ".ipynb_checkpoints", "__pycache__", ".hg", ".svn"}
EXCLUDED_AT_ROOT = {"outputs", "logs"}


@dataclass
class Rule:
    """One pattern line of one ignore file (for ``--dry-run`` explanations)."""

    source: str
    line: str

    def __str__(self) -> str:
        return f"{self.source}: {self.line}"


@dataclass
class FileEntry:
    path: str  # relative, with forward slashes
    size: int
    mtime_ns: int
    inode: int
    mode: int
    rule: str = ""


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
    manifest: dict[str, Any]


class _Spec:
    def __init__(self, base: str, source: str, lines: list[str]) -> None:
        self.base = base  # folder relative to the root, "" or "a/b/"
        self.source = source
        self.lines = [ln for ln in lines]
        self.spec = pathspec.GitIgnoreSpec.from_lines(self.lines)
        self._patterns = [ln.strip() for ln in self.lines]

    def check(self, rel: str) -> tuple[bool | None, str]:
        result = self.spec.check_file(rel[len(self.base) :])
        if result.include is None:
            return None, ""
        index = result.index if result.index is not None else 0
        line = self._pattern_text(index)
        return bool(result.include), f"{self.source}: {line}"

    def _pattern_text(self, index: int) -> str:
        patterns = [p for p in self.lines]
        try:
            return patterns[index].strip()
        except IndexError:
            return "?"


def _load_ignore(folder: Path, base: str) -> _Spec | None:
    for name in IGNORE_FILES:
        path = folder / name
        if path.is_file():
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                return None
            return _Spec(base, base + name, lines)
    return None


def _is_venv(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def scan(root: Path, *, explain: bool = False, skip: tuple[Path, ...] = ()) -> Scan:
    """Walk ``root`` applying the ignore rules; with ``explain`` also keep why each file was left out.

    ``skip`` holds folders never to enter (the store, when it lives inside the project)."""
    root = root.resolve()
    skipped = {str(p.resolve()) for p in skip}
    if not root.is_dir():
        raise SnapshotError(f"Source folder {root} does not exist or is not a folder; pass an existing --source-dir.")
    result = Scan(root)
    stack: list[tuple[str, list[_Spec]]] = [("", [])]
    while stack:
        base, specs = stack.pop()
        folder = os.path.join(root, base) if base else str(root)
        own = _load_ignore(Path(folder), base)
        active = specs + [own] if own else specs
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            result.unreadable.append((base or ".", str(exc.strerror or exc)))
            continue
        for entry in entries:
            rel = base + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = entry.is_symlink()
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
                if _is_venv(entry.path):
                    if explain:
                        result.excluded.append((rel + "/", "virtual environment"))
                    continue
                ignored, why = _decide(active, rel + "/")
                if ignored:
                    if explain:
                        result.excluded.append((rel + "/", why))
                    continue
                stack.append((rel + "/", active))
                continue
            ignored, why = _decide(active, rel)
            if ignored:
                if explain:
                    result.excluded.append((rel, why))
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                result.unreadable.append((rel, f"broken link or unreadable: {exc.strerror or exc}"))
                continue
            if not stat.S_ISREG(st.st_mode):
                if explain:
                    result.excluded.append((rel, "not a regular file"))
                continue
            if not os.access(entry.path, os.R_OK):
                result.unreadable.append((rel, "permission denied"))
                continue
            del is_link
            result.files.append(FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, why or "included"))
    result.files.sort(key=lambda f: f.path)
    return result


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


def _budget_error(scan_: Scan, max_bytes: int, max_files: int) -> SnapshotTooLargeError:
    by_folder: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in scan_.files:
        top = f.path.split("/", 1)[0] + ("/" if "/" in f.path else "")
        by_folder[top][0] += f.size
        by_folder[top][1] += 1
    biggest_files = sorted(scan_.files, key=lambda f: -f.size)[:5]
    biggest_folders = sorted(((k, v) for k, v in by_folder.items() if k.endswith("/")), key=lambda kv: -kv[1][0])[:5]
    files_text = ", ".join(f"{f.path} ({human_bytes(f.size)})" for f in biggest_files)
    folders_text = ", ".join(f"{k} ({human_bytes(v[0])} in {v[1]} files)" for k, v in biggest_folders)
    suggestion = biggest_folders[0][0] if biggest_folders else (biggest_files[0].path if biggest_files else "")
    return SnapshotTooLargeError(
        f"The snapshot of {scan_.root} is {human_bytes(scan_.total_bytes)} in {len(scan_.files)} files, over the "
        f"budget of {human_bytes(max_bytes)} / {max_files} files. Largest files: {files_text}. "
        f"Largest folders: {folders_text or 'none'}. Exclude them with a line such as '{suggestion}' in "
        f"{scan_.root / '.launchbayignore'}, or raise the budget ([snapshot] max_bytes / max_files in "
        "launchbay.toml, or LAUNCHBAY_SNAPSHOT_MAX_BYTES / LAUNCHBAY_SNAPSHOT_MAX_FILES)."
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _HashCache:
    """(size, mtime_ns, inode) → sha256 per file of one source folder, kept in the store."""

    def __init__(self, store: RunStore, root: Path) -> None:
        key = hashlib.sha1(str(root).encode()).hexdigest()[:16]
        self.path = store.root / "cache" / f"snapshot-index-{key}.json"
        try:
            self.entries: dict[str, list[Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def digest(self, root: Path, f: FileEntry) -> str:
        cached = self.entries.get(f.path)
        if cached and cached[0] == f.size and cached[1] == f.mtime_ns and cached[2] == f.inode:
            return str(cached[3])
        digest = _hash_file(root / f.path)
        self.entries[f.path] = [f.size, f.mtime_ns, f.inode, digest]
        self.changed = True
        return digest

    def save(self, keep: set[str]) -> None:
        if not self.changed and len(keep) == len(self.entries):
            return
        self.entries = {k: v for k, v in self.entries.items() if k in keep}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, separators=(",", ":")))
        os.replace(tmp, self.path)


def take_snapshot(
    store: RunStore,
    root: Path,
    *,
    max_bytes: int,
    max_files: int,
    extra_files: dict[str, str | bytes] | None = None,
) -> Snapshot:
    """Snapshot ``root`` into the store; the budget is checked before anything is written."""
    scan_ = scan(root, skip=(store.root,))
    if scan_.total_bytes > max_bytes or len(scan_.files) > max_files:
        raise _budget_error(scan_, max_bytes, max_files)
    cache = _HashCache(store, scan_.root)
    entries = []
    new_blobs = new_bytes = 0
    for f in scan_.files:
        try:
            digest = cache.digest(scan_.root, f)
        except OSError as exc:
            scan_.unreadable.append((f.path, str(exc.strerror or exc)))
            continue
        if not store.blobs.has(digest):
            store.blobs.put_file(scan_.root / f.path, digest)
            new_blobs += 1
            new_bytes += f.size
        entries.append({"path": f.path, "sha256": digest, "size": f.size, "mode": 0o755 if f.mode & 0o111 else 0o644})
    for rel, text in sorted((extra_files or {}).items()):
        data = text.encode() if isinstance(text, str) else text
        digest = store.blobs.put_bytes(data)
        entries = [e for e in entries if e["path"] != rel]
        entries.append({"path": rel, "sha256": digest, "size": len(data), "mode": 0o644})
    entries.sort(key=lambda e: e["path"])
    cache.save({f.path for f in scan_.files})
    manifest = {"version": 1, "files": entries}
    snapshot_id = store.blobs.put_bytes(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode())
    total = sum(e["size"] for e in entries)
    store.add_snapshot(snapshot_id, len(entries), total, str(scan_.root))
    return Snapshot(snapshot_id, scan_.root, len(entries), total, new_blobs, new_bytes, scan_.unreadable, manifest)


def explain(root: Path) -> dict[str, Any]:
    """What ``launchbay snapshot --dry-run`` shows: each file, its rule, sizes by folder."""
    scan_ = scan(root, explain=True)
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
