"""What a target ships so a run can start where launchbay is not installed: one list, made here.

``file_set(store, snapshot_id)`` is the runtime (``runtime/*``, runtime.py) and the
snapshot's files (``work/<path>``: each with its blob and exec bit, and the symlinks the
runner makes in ``work/``). Every target only transports it, in its own way: written into
the run folder (local, Docker), as blobs the runner stages from (SSH, Docker on a remote
daemon), one zip (Ray), or files in a folder the nodes share (Slurm). Data inputs are
the next part of this list, not a copy in each target.

A blob folder shipped for the runner keeps the layout it reads (runner_stage.copy_files):
``blob_name`` names it, so no target spells ``ab/cdef...`` itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..store import RunStore
from ..store.blobs import blob_name
from .runtime import runtime_files

__all__ = ["FileSet", "ProjectFile", "blob_name", "file_set"]


@dataclass(frozen=True)
class ProjectFile:
    """One file of the snapshot: ``work/<path>`` in the run folder, its content in blob ``digest``."""

    path: str
    digest: str
    size: int
    executable: bool

    @property
    def rel(self) -> str:
        """Its path in the run folder."""
        return f"{rf.WORK}/{self.path}"


@dataclass(frozen=True)
class FileSet:
    """Everything a run needs shipped: ``runtime`` (path under runtime/ -> content) and the project."""

    runtime: dict[str, bytes]
    project: tuple[ProjectFile, ...] = ()
    #: the snapshot's symlinks (each inside the project), made by the runner in work/
    links: tuple[dict[str, Any], ...] = ()
    #: the snapshot's manifest blob, None without a snapshot
    manifest: str | None = None

    def runtime_files(self) -> dict[str, bytes]:
        """The runtime by its path in the run folder."""
        return {f"{rf.RUNTIME}/{rel}": data for rel, data in self.runtime.items()}

    def runtime_hash(self) -> str:
        """A short hash of the runtime: where a host keeps one copy of each version."""
        digest = hashlib.sha256()
        for rel in sorted(self.runtime):
            digest.update(rel.encode() + b"\0" + self.runtime[rel] + b"\0")
        return digest.hexdigest()[:16]

    def project_files(self, store: RunStore) -> dict[str, Path]:
        """The project by its path in the run folder, each the local file of its blob."""
        return {f.rel: store.blobs.local_path(f.digest) for f in self.project}

    def executable(self) -> set[str]:
        """The project's files (by their path in the run folder) that keep an exec bit."""
        return {f.rel for f in self.project if f.executable}

    def blob_files(self, store: RunStore) -> dict[str, Path]:
        """For targets that send blobs for the runner to stage: the manifest's and every file's,
        by ``blob_name``, each once, the manifest first."""
        digests = [self.manifest] if self.manifest else []
        digests += [f.digest for f in self.project]
        return {blob_name(d): store.blobs.local_path(d) for d in dict.fromkeys(digests)}


def file_set(store: RunStore, snapshot_id: str | None) -> FileSet:
    """What a run of snapshot ``snapshot_id`` needs shipped (only the runtime without one)."""
    if not snapshot_id:
        return FileSet(runtime_files())
    manifest = store.snapshot_manifest(snapshot_id)
    project = tuple(
        ProjectFile(e["path"], e["sha256"], int(e.get("size", 0)), bool(int(e.get("mode", 0o644)) & 0o111))
        for e in manifest["files"]
    )
    return FileSet(runtime_files(), project, tuple(manifest.get("links") or ()), snapshot_id)
