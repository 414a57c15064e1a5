"""Named, versioned datasets: add, describe, lineage and removal (what ``launchbay data`` does).

A version refers to its files where they are (a folder, a file, a URL's download in the cache, a
run's outputs): launchbay keeps its manifest, not a second copy of the data, and checks the files
against the manifest every time a run uses the version (resolve.py), so a version is never served
changed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DataInputError, DatasetNotFoundError
from ..store import Store
from ..store.records import DatasetVersion
from .resolve import absolute, find_version, resolve
from .spec import InputSpec, check_name


def add(
    store: Store,
    name: str,
    source: str,
    *,
    description: str | None = None,
    base: Path | None = None,
    run_id: str | None = None,
    say: Callable[[str], None] | None = None,
    s3: dict[str, Any] | None = None,
) -> tuple[DatasetVersion, bool]:
    """Make ``source`` a version of dataset ``name``: (the version, whether it is a new one); ``s3`` is
    launchbay.toml's ``[s3]``, for an ``s3://`` source."""
    check_name(name, "data add")
    if source.startswith("dataset:"):
        raise DataInputError("A dataset's source is a path or a URL, not another dataset.")
    spec = absolute(InputSpec(name, source), base or Path.cwd())
    resolved = resolve(store, spec, say, s3)
    manifest = resolved.manifest
    with store.writing_blobs():
        store.blobs.put_bytes(manifest.to_bytes())
        row = DatasetVersion(
            name,
            0,
            manifest.version,
            manifest.kind,
            resolved.source,
            str(resolved.location),
            len(manifest.files),
            manifest.total_bytes,
            description,
            run_id,
        )
        number, new = store.add_dataset_version(row)
    found = store.dataset_version(name, number)
    assert found is not None
    return found, new


def get(store: Store, ref: str) -> DatasetVersion:
    return find_version(store, ref)


def listing(store: Store) -> list[dict[str, Any]]:
    """One row per dataset: its latest version and how many it has."""
    latest: dict[str, DatasetVersion] = {}
    counts: dict[str, int] = {}
    for v in store.dataset_versions():
        latest[v.name] = v
        counts[v.name] = counts.get(v.name, 0) + 1
    return [{**latest[n].to_dict(), "latest_version": latest[n].version, "versions": counts[n]} for n in sorted(latest)]


def lineage(store: Store, version: DatasetVersion) -> dict[str, Any]:
    """The runs that read (or made) the version and the models registered from those runs."""
    runs = store.runs_with_data(version.hash)
    models = [m.ref for run_id in runs for m in store.model_versions(run_id=run_id)]
    return {"dataset": version.name, "version": version.version, "hash": version.hash, "runs": runs, "models": models}


def describe(store: Store, version: DatasetVersion) -> dict[str, Any]:
    return {**version.to_dict(), "runs": store.runs_with_data(version.hash)}


def remove(store: Store, name: str, number: int) -> DatasetVersion:
    """Forget a version; refused, naming them, while a run or a model's lineage points at it."""
    version = store.dataset_version(name, number)
    if version is None:
        raise DatasetNotFoundError(f"Dataset {name!r} has no version {number}; `launchbay data list` shows them.")
    used = lineage(store, version)
    if used["runs"] or used["models"]:
        names = ", ".join([*used["runs"][:5], *used["models"][:5]])
        more = len(used["runs"]) + len(used["models"]) - min(len(used["runs"]), 5) - min(len(used["models"]), 5)
        raise DataInputError(
            f"Dataset {version.ref} is the lineage of {names}{f' and {more} more' if more > 0 else ''}; "
            "remove those runs (and models) first, or keep the version."
        )
    store.delete_dataset_version(name, number)
    return version
