"""Housekeeping of this machine's data caches (``launchbay data gc``): URL downloads no recent run used.

A cached download is kept while a dataset version lives in it, while a queued or running run reads it,
and while a run created in the last ``keep_days`` read it; everything else is freed. Inputs read in
place (a local folder) have no cache to free.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ..store import Store


def url_cache(store: Store) -> Path:
    return store.cache_dir / "cache" / "data-urls"


def download_caches(store: Store) -> list[Path]:
    """This machine's download caches: http(s) URLs (urls.py) and S3 prefixes (s3.py)."""
    return [url_cache(store), store.cache_dir / "cache" / "data-s3"]


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def collect(store: Store, *, keep_days: float = 7.0, dry_run: bool = False) -> dict[str, Any]:
    folders = sorted(p for root in download_caches(store) if root.is_dir() for p in root.iterdir() if p.is_dir())
    if not folders:
        return {"entries": 0, "bytes": 0, "kept": 0, "freed": []}
    needed: set[str] = {str(v.location) for v in store.dataset_versions() if v.location}
    since = time.time() - keep_days * 86400
    for record in store.list_runs(limit=None, details=False):
        if record.status.is_terminal() and record.created < since:
            continue
        needed.update(str(i.location) for i in store.run_inputs(record.run_id) if i.location)
    freed: list[str] = []
    total = kept = 0
    for folder in folders:
        if any(n == str(folder) or n.startswith(str(folder) + "/") for n in needed):
            kept += 1
            continue
        total += _size(folder)
        freed.append(folder.name)
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    return {"entries": len(freed), "bytes": total, "kept": kept, "freed": freed}


def collect_target(store: Store, target: Any, *, keep_days: float = 7.0, dry_run: bool = False) -> dict[str, Any]:
    """Free ``target``'s data cache (``session.target(name)``) of versions that no queued or running run
    there needs and no run there read in the last ``keep_days``."""
    from ..errors import ConfigError

    name = target.name
    since = time.time() - keep_days * 86400
    keep: set[str] = set()
    for record in store.list_runs(limit=None, details=False):
        if record.target != name or (record.status.is_terminal() and record.created < since):
            continue
        keep.update(i.hash for i in store.run_inputs(record.run_id))
    found = target.collect_data(keep, dry_run)
    if found is None:
        raise ConfigError(f"Target {name!r} ({target.type_name}) keeps no data cache: it reads inputs in place.")
    return {"target": name, **found, "kept": len(keep)}
