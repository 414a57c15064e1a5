"""A data version's manifest: every file's path, size and SHA-256; its own hash is the version.

The canonical form (sorted paths, compact JSON) is what is hashed and what is kept as a blob, so the
same content is the same version wherever it came from (a folder, a URL, a run's outputs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class DataFile:
    path: str  # relative, "/" separated; a single-file input's is its file name
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """``kind``: ``file`` (one file, the run gets its path) or ``folder`` (the run gets the folder)."""

    kind: str
    files: tuple[DataFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_bytes(self) -> bytes:
        data = {
            "version": MANIFEST_VERSION,
            "kind": self.kind,
            "files": [[f.path, f.size, f.sha256] for f in sorted(self.files, key=lambda f: f.path)],
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @property
    def version(self) -> str:
        """The SHA-256 of the canonical manifest (also its blob's name in the store)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def by_path(self) -> dict[str, DataFile]:
        return {f.path: f for f in self.files}

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        parsed: dict[str, Any] = json.loads(data)
        return cls(str(parsed["kind"]), tuple(DataFile(str(p), int(s), str(h)) for p, s, h in parsed["files"]))


def differences(old: Manifest, new: Manifest) -> list[str]:
    """The paths that differ between two manifests (changed, added or gone), sorted."""
    a, b = old.by_path(), new.by_path()
    return sorted(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))
