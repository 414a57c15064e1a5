"""``launchbay store copy``: every run of one store, and what lies beside them, into another.

Embedded to team store, back, or between two team stores. A run travels as its rows
(``Store.export_runs`` / ``import_runs``, store/transfer.py), not by replaying its journal as
``store repair`` does: a team store's run has no journal on this machine unless it was made here,
and an ended embedded run's points lie in its ``sealed.series``, which a replay skips. With the rows
go the blobs they refer to (the snapshot's manifest and files, the run's files, model and data
manifests), and the run's folder where the destination reads files from one (the embedded store):

* into a team store, a run's files (outputs, logs) become a manifest in its blobs, as ``seal``
  makes one for an ended run, and no folder is made on this machine: the copy belongs to no
  machine, like a run made elsewhere;
* into the embedded store, the source's run folder is copied (``run.json``, journal, files), or,
  for a run whose folder is on another machine, its files are written out of its manifest.

Runs the destination has already (same run id) are skipped, so a copy cut off half way is simply
run again; each batch of runs is one transaction, and its blobs are stored before it (an
interrupted copy leaves at most unreferenced blobs, which ``gc`` collects). Blobs are moved by a
few threads, and what the destination has is listed once, not asked blob by blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..errors import LaunchbayError, StoreError
from . import runfile
from .base import Store
from .files import inside
from .manifests import file_entry, manifest_bytes, read_manifest, write_files
from .records import CatalogReport, RunExport

BATCH = 250  # runs per transaction
WORKERS = 8  # threads moving blobs and writing run folders
FILES_MANIFEST = "launchbay.files_manifest"  # as postgres.py names it: a team store's ended run's files
_NOT_COPIED = {rf.WORK, rf.RUNTIME}  # a run folder's staged work tree and runner: not history

Progress = Callable[[int, int], None]


@dataclass
class CopyReport:
    copied: int = 0
    skipped: int = 0
    running: list[str] = field(default_factory=list)  # copied while not yet ended: as they were then
    seconds: float = 0.0
    blobs: int = 0  # blobs stored in the destination
    catalog: CatalogReport = field(default_factory=CatalogReport)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "running": self.running,
            "seconds": round(self.seconds, 3),
            "blobs": self.blobs,
            "catalog": {"added": self.catalog.added, "present": self.catalog.present},
            "problems": [*self.problems, *self.catalog.conflicts],
        }


class BlobMover:
    """Blobs wanted in the destination, stored there once each, by a pool of threads."""

    def __init__(self, source: Store, dest: Store, pool: ThreadPoolExecutor, report: CopyReport) -> None:
        self.source, self.dest, self.pool, self.report = source, dest, pool, report
        self.present: set[str] | None = None
        self.pending: dict[str, Path | bytes | None] = {}

    def want(self, digest: str, local: Path | bytes | None = None) -> None:
        """Store ``digest`` in the destination: from the file or bytes given, else from the source's blobs."""
        if self.present is None:
            self.present = {digest for digest, _ in self.dest.blobs.sizes()}  # one listing, not a call per blob
        if digest not in self.present and (local is not None or digest not in self.pending):
            self.pending[digest] = local

    def flush(self) -> None:
        jobs, self.pending = list(self.pending.items()), {}
        stored = [d for d, ok in zip((d for d, _ in jobs), self.pool.map(self._put, jobs)) if ok]
        assert self.present is not None or not jobs
        if self.present is not None:
            self.present.update(stored)
        self.report.blobs += len(stored)

    def _put(self, job: tuple[str, Path | bytes | None]) -> bool:
        digest, local = job
        try:
            self.dest.blobs.put_absent(local or self.source.blobs.local_path(digest), digest)
        except (OSError, LaunchbayError) as exc:
            self.report.problems.append(f"blob {digest[:12]} could not be copied ({exc}); what uses it lacks it")
            return False
        return True


def copy_store(source: Store, dest: Store, progress: Progress | None = None) -> CopyReport:
    """Copy every run of ``source`` (and its catalog) into ``dest``; see the module docstring."""
    started = time.monotonic()
    report = CopyReport()
    dest.check_writable()
    ids = source.all_run_ids()
    have = set(dest.all_run_ids())
    todo = [run_id for run_id in ids if run_id not in have]
    report.skipped = len(ids) - len(todo)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        mover = BlobMover(source, dest, pool, report)
        copier = _RunCopier(source, dest, mover, pool, report)
        if progress:
            progress(report.skipped, len(ids))
        for first in range(0, len(todo), BATCH):
            copier.batch(todo[first : first + BATCH])
            if progress:
                progress(report.skipped + min(first + BATCH, len(todo)), len(ids))
        catalog = source.export_catalog()
        for version, _, _ in catalog.models:
            copier.manifest(version.manifest, f"model {version.ref}")
        for dataset in catalog.datasets:
            mover.want(dataset.hash)  # a data version's files are where they are: only its manifest is a blob
        with dest.writing_blobs():
            mover.flush()
            report.catalog = dest.import_catalog(catalog)
    report.seconds = time.monotonic() - started
    return report


class _RunCopier:
    """One batch of runs at a time: their blobs and folders first, then their rows in one transaction."""

    def __init__(
        self, source: Store, dest: Store, mover: BlobMover, pool: ThreadPoolExecutor, report: CopyReport
    ) -> None:
        self.source, self.dest, self.mover, self.pool, self.report = source, dest, mover, pool, report
        self.snapshots: dict[str, tuple[int, int, str]] = {}  # recorded in the destination by this copy
        self.folders = not dest.shared  # the destination reads a run's files from its run folder

    def batch(self, run_ids: list[str]) -> None:
        runs = self._export(run_ids)
        folders: list[Callable[[], str | None]] = []
        new_snapshots: dict[str, tuple[int, int, str]] = {}
        for run in runs:
            properties = json.loads(run.row.get("properties") or "{}")
            snapshot_id = run.row.get("snapshot_id")
            if snapshot_id and snapshot_id not in self.snapshots and snapshot_id not in new_snapshots:
                entries = self.manifest(snapshot_id, f"the snapshot of run {run.run_id}")
                if entries is not None:
                    source_dir = str(properties.get("launchbay.source_dir") or "")
                    new_snapshots[snapshot_id] = (len(entries), sum(int(e.get("size", 0)) for e in entries), source_dir)
            if self.folders:
                folders.append(self._folder_job(run, properties))
            else:
                self._files_manifest(run, properties)
            for item in run.inputs:
                self.mover.want(item.hash)
            if not run.status.is_terminal():
                self.report.running.append(run.run_id)
        with self.dest.writing_blobs():  # from storing the blobs until rows refer to them: no gc between
            self.mover.flush()
            for done in self.pool.map(_call, folders):
                if done:
                    self.report.problems.append(done)
            for snapshot_id, (files, size, source_dir) in new_snapshots.items():
                self.dest.add_snapshot(snapshot_id, files, size, source_dir)
            self.snapshots.update(new_snapshots)
            copied = self.dest.import_runs(runs)
        self.report.copied += len(copied)
        self.report.skipped += len(runs) - len(copied)

    def _export(self, run_ids: list[str]) -> list[RunExport]:
        """The batch's rows; a run whose points cannot be read (a damaged chunk) is left out and named."""
        try:
            return self.source.export_runs(run_ids)
        except LaunchbayError:
            if len(run_ids) == 1:
                raise
        runs = []
        for run_id in run_ids:
            try:
                runs += self.source.export_runs([run_id])
            except LaunchbayError as exc:
                self.report.problems.append(f"{run_id}: not copied: {exc}")
        return runs

    def _entries(self, digest: str, what: str) -> list[dict[str, Any]] | None:
        try:
            return list(read_manifest(self.source, digest)["files"])
        except (OSError, ValueError, LaunchbayError) as exc:
            self.report.problems.append(f"{what}: its manifest {digest[:12]} cannot be read ({exc}); not copied")
            return None

    def manifest(self, digest: str, what: str) -> list[dict[str, Any]] | None:
        """Want a manifest and every blob it names in the destination; its entries (None: it is gone)."""
        entries = self._entries(digest, what)
        if entries is None:
            return None
        self.mover.want(digest)
        for entry in entries:
            self.mover.want(str(entry["sha256"]))
        return entries

    # -- a run's files ---------------------------------------------------------------------------------
    def _files_manifest(self, run: RunExport, properties: dict[str, Any]) -> None:
        """Into a team store: the run's files as a manifest its row names (as ``seal`` makes one)."""
        kept = properties.get(FILES_MANIFEST)
        if kept:
            self.manifest(str(kept), f"the files of run {run.run_id}")
            return
        files = _local_files(self.source.runs_dir / run.run_id / rf.FILES)
        if not files:
            if run.status.is_terminal() and self.source.shared and not (self.source.runs_dir / run.run_id).is_dir():
                self.report.problems.append(
                    f"{run.run_id}: its files are on the machine that made it (not yet in the blob store); copied"
                    " without them"
                )
            return
        entries = []
        for rel, path in files:
            entry = file_entry(rel, path)
            self.mover.want(str(entry["sha256"]), path)
            entries.append(entry)
        data = manifest_bytes(entries, run_id=run.run_id)
        digest = hashlib.sha256(data).hexdigest()
        self.mover.want(digest, data)
        run.row["properties"] = json.dumps({**properties, FILES_MANIFEST: digest})

    def _folder_job(self, run: RunExport, properties: dict[str, Any]) -> Callable[[], str | None]:
        """Into the embedded store: the job that makes the run's folder (run.json, journal, files)."""
        origin = self.source.runs_dir / run.run_id
        target = self.dest.run_dir(run.run_id)
        kept = properties.pop(FILES_MANIFEST, None)  # the embedded store reads the folder
        run.row["properties"] = json.dumps(properties)
        entries = None
        if kept and not (origin / rf.FILES).is_dir():  # a team store's run made elsewhere: out of its manifest
            entries = self._entries(str(kept), f"the files of run {run.run_id}")
        source = self.source

        def job() -> str | None:
            try:
                if origin.is_dir():
                    ignored = _ignored(origin)
                    shutil.copytree(origin, target, symlinks=True, ignore=ignored, dirs_exist_ok=True)
                target.mkdir(parents=True, exist_ok=True)
                if runfile.read(target) is None:
                    runfile.write(target, _described(run))
                if entries:
                    write_files(source, entries, target / rf.FILES, f"Run {run.run_id}'s file list")
            except (OSError, LaunchbayError) as exc:
                return f"{run.run_id}: its folder could not be copied whole ({exc})"
            return None

        return job


def _call(job: Callable[[], str | None]) -> str | None:
    return job()


def _ignored(origin: Path) -> Callable[[str, list[str]], Iterable[str]]:
    """What a run folder's copy leaves out: the staged work tree, the runner, locks and temporary files."""

    def ignore(folder: str, names: list[str]) -> Iterable[str]:
        top = Path(folder) == origin
        return [n for n in names if (top and n in _NOT_COPIED) or (n.startswith(".") and n.endswith((".lock", rf.TMP)))]

    return ignore


def _local_files(root: Path) -> list[tuple[str, Path]]:
    """A run's files under ``root`` as (name, path); a link leading outside them is left out."""
    if not root.is_dir() or root.is_symlink():
        return []
    found = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            rel = path.relative_to(root)
            if (not path.is_symlink() or inside(root, rel) is not None) and path.is_file():
                found.append((str(rel), path))
    return sorted(found)


def _described(run: RunExport) -> dict[str, Any]:
    """``run.json`` for a copied run whose folder was elsewhere (what ``store repair`` rebuilds it from)."""
    row = run.row
    return {
        "version": 1,
        **{k: row.get(k) for k in ("run_id", "experiment", "name", "target", "target_type", "script")},
        "arguments": json.loads(row.get("arguments") or "[]"),
        **{k: row.get(k) for k in ("snapshot_id", "environment", "created")},
        "properties": json.loads(row.get("properties") or "{}"),
        "spec": json.loads(row.get("spec") or "{}"),
        "target_state": json.loads(row.get("target_state") or "{}"),
        "parent_run_id": row.get("parent_run_id"),
        "tags": {k: v for k, v in run.tags},
        "params": {k: v for k, v in run.params},
        "created_by": row.get("created_by"),
    }


# -- opening the two stores -----------------------------------------------------------------------------
def identity(location: str) -> str:
    """What names one store whatever URL reaches it (a folder's real path; a database and schema)."""
    from ..config import find_store_dir
    from .registry import scheme_of

    scheme = scheme_of(location)
    if scheme in ("postgresql", "postgres"):
        from .postgres import TeamUrl

        url = TeamUrl(location)
        return f"postgresql://{url.host}:{url.port}/{url.database}?schema={url.schema or 'public'}"
    if scheme in ("", "file") or "://" not in location:
        return f"file:{find_store_dir(location)}"
    return location.split("?")[0]


def store_identity(store: Store) -> str:
    from .postgres import PostgresStore
    from .sqlite import RunStore

    if isinstance(store, PostgresStore):
        return identity(store.url.conninfo)
    if isinstance(store, RunStore):
        return f"file:{store.root.resolve()}"
    return store.uri.split("?")[0]


def open_destination(location: str, blobs: str | None, start: Path | None = None) -> Store:
    """The store ``--to`` names, its blobs where ``--blobs`` says (else as opening it would put them)."""
    from .registry import backend_for, open_store, scheme_of

    backend = backend_for(location)  # an unknown scheme is one line here, before anything is made
    if not blobs:
        return open_store(location, start=start)
    scheme = scheme_of(location)
    if scheme in ("postgresql", "postgres"):
        from urllib.parse import urlencode

        joiner = "&" if "?" in location else "?"
        return backend.open(f"{location}{joiner}{urlencode({'blobs': blobs})}", start)
    if scheme in ("", "file") or "://" not in location:
        from ..config import ProjectConfig, find_store_dir, load_config
        from ..errors import ConfigError
        from .netfs import refuse_network_fs
        from .remote import open_blobs
        from .sqlite import RunStore

        root = find_store_dir(location)
        refuse_network_fs(root)
        try:
            s3 = load_config(start).s3
        except ConfigError:
            s3 = ProjectConfig().s3
        return RunStore(root, blobs=open_blobs(blobs, root, s3))
    raise StoreError(f"--blobs is for the built-in stores; the store {location.split('?')[0]} keeps its blobs itself.")
