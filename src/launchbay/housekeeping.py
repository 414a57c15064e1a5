"""Store housekeeping: remove runs (``rm``), collect unreferenced blobs (``gc``), sizes (``du``).

Safe while other processes use the store: a run is removed in one transaction that
first re-reads its status (a run that is not finished is never removed), and ``gc``
holds the blob lock exclusively (see store/gclock.py) so no submit or registration
can start referring to a blob between the moment gc decides and the moment it deletes.
Blobs stay while a kept run's snapshot or a model version refers to them.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .environments.cache import envs_root
from .errors import ConfigError, LaunchbayError
from .models import RunStatus
from .registry import ModelRegistry
from .store import RunRecord, Store
from .store.manifests import referenced_blobs

if TYPE_CHECKING:
    from .session import Session

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``45m``, ``90s``, ``2w`` → seconds."""
    match = _AGE.match(text or "")
    if not match:
        raise ConfigError(f"--older-than {text!r}: give a number and a unit, e.g. 30d, 12h, 45m, 90s or 2w.")
    return float(match.group(1)) * _UNITS[match.group(2)]


def select_runs(
    session: Session,
    refs: list[str],
    *,
    experiment: str | None = None,
    older_than: str | None = None,
    status: str | None = None,
) -> tuple[list[RunRecord], list[RunRecord]]:
    """(runs to remove, unfinished runs the filters matched and that are left alone).

    Named runs that are not finished are an error: nothing is removed then."""
    if not refs and not (experiment or older_than or status):
        raise ConfigError("Say which runs to remove: run ids, or --experiment/--older-than/--status.")
    chosen: dict[str, RunRecord] = {}
    for ref in refs:
        record = session.refresh(ref)
        if not record.status.is_terminal():
            raise LaunchbayError(
                f"Run {record.run_id} is {record.status.value}; cancel it first (launchbay cancel {record.run_id}). "
                "Nothing was removed."
            )
        chosen[record.run_id] = record
    skipped: list[RunRecord] = []
    if experiment or older_than or status:
        cutoff = time.time() - parse_age(older_than) if older_than else None
        wanted = RunStatus.parse(status) if status else None
        for record in session.store.list_runs(experiment=experiment, limit=None, details=False):
            if cutoff is not None and record.created > cutoff:
                continue
            record = session.refresh(record)
            if wanted is not None and record.status is not wanted:
                continue
            if not record.status.is_terminal():
                skipped.append(record)
                continue
            chosen.setdefault(record.run_id, record)
    return list(chosen.values()), skipped


def remove_run(store: Store, record: RunRecord) -> bool:
    """Delete a finished run's rows and folder; False if it was gone or is not finished."""
    return store.remove_finished_run(record.pk)


def needed_blobs(store: Store) -> set[str]:
    """Every blob a kept run's snapshot, a model version or a run's kept files (a team store's) refers to,
    and every data version's manifest."""
    needed: set[str] = set(store.data_manifests())  # a data version's files are where they are: no blobs
    for snapshot_id in store.used_snapshot_ids():
        needed |= referenced_blobs(store, snapshot_id)
    for manifest in [*ModelRegistry(store).manifests(), *store.file_manifests()]:
        needed |= referenced_blobs(store, manifest)
    return needed


def collect_garbage(store: Store, dry_run: bool = False) -> dict[str, Any]:
    """Remove blobs nothing kept refers to (``dry_run``: only say which and how much)."""
    with store.collecting_blobs():
        needed = needed_blobs(store)
        garbage = [(d, size) for d, size in store.blobs.sizes() if d not in needed]
        if not dry_run:
            for digest, _size in garbage:
                store.blobs.remove(digest)
            if garbage:
                from .snapshot import forget_snapshot_indexes

                # snapshot indexes remember which blobs are stored: make the next snapshot check again
                forget_snapshot_indexes(store)
            store.forget_unused_snapshots()
    names = _orphan_names(store) if dry_run else {}
    return {
        "dry_run": dry_run,
        "blobs": len(garbage),
        "bytes": sum(size for _, size in garbage),
        "kept_blobs": len(needed),
        "removed": [d for d, _ in garbage],
        "details": [{"sha256": d, "bytes": size, "what": names.get(d, "unreferenced blob")} for d, size in garbage],
    }


def _orphan_names(store: Store) -> dict[str, str]:
    """What the blobs of snapshots no run refers to any more were: ``snapshot ab12cd: train.py``."""
    out: dict[str, str] = {}
    for snapshot_id in store.unused_snapshot_ids():
        if not store.blobs.has(snapshot_id):
            continue
        out.setdefault(snapshot_id, f"snapshot {snapshot_id[:12]}: its manifest")
        for f in store.snapshot_manifest(snapshot_id)["files"]:
            out.setdefault(f["sha256"], f"snapshot {snapshot_id[:12]}: {f['path']}")
    return out


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def disk_usage(store: Store) -> dict[str, Any]:
    """Sizes by experiment, and of runs, snapshots, environments, models and blobs."""
    sizes = dict(store.blobs.sizes())
    experiments: dict[str, dict[str, int]] = {}
    runs_bytes = 0
    snapshot_ids: set[str] = set()
    for record in store.list_runs(limit=None, details=False):
        size = _tree_size(record.run_dir)
        runs_bytes += size
        row = experiments.setdefault(record.experiment, {"runs": 0, "bytes": 0})
        row["runs"] += 1
        row["bytes"] += size
        if record.snapshot_id:
            snapshot_ids.add(record.snapshot_id)
    snap_blobs: set[str] = set()
    for snapshot_id in snapshot_ids:
        snap_blobs |= referenced_blobs(store, snapshot_id)
    model_blobs: set[str] = set()
    manifests = ModelRegistry(store).manifests()
    for manifest in manifests:
        model_blobs |= referenced_blobs(store, manifest)
    envs = envs_root(store.cache_dir)
    needed = snap_blobs | model_blobs
    return {
        "store": store.uri,
        "experiments": [{"name": k, **v} for k, v in sorted(experiments.items(), key=lambda kv: -kv[1]["bytes"])],
        "runs": {"count": sum(v["runs"] for v in experiments.values()), "bytes": runs_bytes},
        "snapshots": {"count": len(snapshot_ids), "bytes": sum(sizes.get(d, 0) for d in snap_blobs)},
        "environments": {
            "count": sum(1 for p in envs.iterdir() if p.is_dir()) if envs.is_dir() else 0,
            "bytes": _tree_size(envs) if envs.is_dir() else 0,
        },
        "models": {"versions": len(manifests), "bytes": sum(sizes.get(d, 0) for d in model_blobs)},
        "blobs": {
            "count": len(sizes),
            "bytes": sum(sizes.values()),
            "unreferenced_bytes": sum(s for d, s in sizes.items() if d not in needed),
        },
        "index_bytes": store.index_bytes(),
        "data": _data_usage(store),
    }


def _data_usage(store: Store) -> dict[str, Any]:
    """Named dataset versions (their files stay where they are) and this machine's download cache."""
    from .data.caches import download_caches

    caches = [c for c in download_caches(store) if c.is_dir()]
    return {
        "versions": len(store.dataset_versions()),
        "cached_downloads": sum(1 for cache in caches for p in cache.iterdir() if p.is_dir()),
        "cache_bytes": sum(_tree_size(cache) for cache in caches),
    }
