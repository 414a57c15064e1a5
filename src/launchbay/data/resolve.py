"""From what a user asked for (``InputSpec``) to what a target delivers (``ResolvedInput``).

Every source becomes files on this machine and their manifest, checked before any run is written:
a path is hashed where it is (hashing.py), a URL downloaded into the cache (urls.py), a named
dataset's version found in the store and its files checked against that version's manifest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataInputError, DatasetNotFoundError
from ..store import Store
from ..store.records import DatasetVersion, RunInput
from .hashing import hash_source
from .manifest import Manifest, differences
from .s3 import fetch_s3
from .spec import InputSpec
from .urls import fetch_url, redact_url

Say = Callable[[str], None]
_DATASET = re.compile(r"^dataset:(?P<name>[^:]+)(?::(?P<version>[^:]+))?$")


@dataclass(frozen=True)
class ResolvedInput:
    """One input, ready to deliver: where its files are on this machine and what they are."""

    name: str
    source: str  # as shown and recorded: credentials masked
    mode: str
    location: Path  # the file or folder holding the data on this machine
    manifest: Manifest
    dataset: str | None = None
    dataset_version: int | None = None

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def kind(self) -> str:
        return self.manifest.kind

    def record(self, bytes_sent: int = 0) -> RunInput:
        m = self.manifest
        return RunInput(
            self.name,
            self.source,
            m.version,
            m.kind,
            self.mode,
            len(m.files),
            m.total_bytes,
            bytes_sent,
            str(self.location),
            self.dataset,
            self.dataset_version,
        )


def absolute(spec: InputSpec, base: Path) -> InputSpec:
    """A path source made absolute against ``base`` (the folder the user gave it in)."""
    if spec.kind != "path":
        return spec
    path = Path(os.path.expanduser(spec.source))
    return InputSpec(spec.name, str(path if path.is_absolute() else (base / path)), spec.mode)


def resolve(store: Store, spec: InputSpec, say: Say | None = None, s3: dict[str, Any] | None = None) -> ResolvedInput:
    """Check and hash (or fetch) one input; a ``DataInputError`` in one line when it cannot be used.
    ``s3``: launchbay.toml's ``[s3]`` settings, for ``s3://`` sources."""
    kind = spec.kind
    if kind == "path":
        path = Path(spec.source)
        manifest = hash_source(store.cache_dir, path, spec.name, say=say, skip=(store.cache_dir,))
        return ResolvedInput(spec.name, spec.source, spec.mode, path.resolve(), manifest)
    if kind == "url":
        fetched = fetch_url(store.cache_dir, spec.source, spec.name, say=say)
        return ResolvedInput(spec.name, redact_url(spec.source), spec.mode, fetched.path, fetched.manifest)
    if kind == "s3":
        fetched = fetch_s3(store.cache_dir, spec.source, spec.name, settings=s3, say=say)
        return ResolvedInput(spec.name, spec.source, spec.mode, fetched.path, fetched.manifest)
    version = find_version(store, spec.source)
    return ResolvedInput(
        spec.name,
        spec.source,
        spec.mode,
        checked_location(store, version, spec.name, say, s3),
        Manifest.from_bytes(store.blobs.read_bytes(version.hash)),
        version.name,
        version.version,
    )


def find_version(store: Store, ref: str) -> DatasetVersion:
    """``dataset:NAME`` (its latest version), ``dataset:NAME:N``, or ``NAME`` / ``NAME:N``."""
    text = ref if ref.startswith("dataset:") else f"dataset:{ref}"
    m = _DATASET.match(text)
    if m is None:
        raise DataInputError(f"{ref!r} is not a dataset reference; write dataset:NAME or dataset:NAME:VERSION.")
    name, number = m.group("name"), m.group("version")
    if number is not None and not number.isdigit():
        raise DataInputError(f"{ref!r}: a dataset version is a number, e.g. dataset:{name}:2.")
    found = store.dataset_version(name, int(number) if number is not None else None)
    if found is not None:
        return found
    versions = store.dataset_versions(name)
    if versions:
        have = ", ".join(str(v.version) for v in versions)
        raise DatasetNotFoundError(f"Dataset {name!r} has no version {number} (it has {have}).")
    known = sorted({v.name for v in store.dataset_versions()})
    hint = f" (known: {', '.join(known)})" if known else ""
    raise DatasetNotFoundError(f"No dataset named {name!r}{hint}; add it with `launchbay data add {name} PATH_OR_URL`.")


def checked_location(
    store: Store, version: DatasetVersion, name: str, say: Say | None, s3: dict[str, Any] | None = None
) -> Path:
    """Where a named version's files are, checked against its manifest: a version is never served changed."""
    if not version.location:
        raise DataInputError(f"Dataset {version.ref} has no files on this machine.")
    location = Path(version.location)
    if version.source.lower().startswith(("http://", "https://")) and not location.exists():
        fetched = fetch_url(store.cache_dir, version.source, name, say=say)  # the cache was cleared
        location = fetched.path
    if version.source.lower().startswith("s3://") and not location.exists():
        location = fetch_s3(store.cache_dir, version.source, name, settings=s3, say=say).path
    current = hash_source(store.cache_dir, location, name, say=say, skip=(store.cache_dir,))
    if current.version != version.hash:
        wanted = Manifest.from_bytes(store.blobs.read_bytes(version.hash))
        changed = differences(wanted, current)
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise DataInputError(
            f"Dataset {version.ref}: its files in {location} changed since it was added ({shown}); "
            f"`launchbay data add {version.name} {location}` makes them a new version."
        )
    return location
