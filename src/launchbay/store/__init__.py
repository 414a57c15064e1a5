"""The run-history store (SQLite index + blob folder)."""

from __future__ import annotations

import os
from pathlib import Path

from ..config import find_store_dir
from .records import RunRecord
from .sqlite import RunStore, RunWriter, Series

__all__ = ["RunRecord", "RunStore", "RunWriter", "Series", "open_store"]


def open_store(path: str | os.PathLike[str] | None = None) -> RunStore:
    """The store at ``path``, LAUNCHBAY_STORE, or the nearest ancestor .launchbay/."""
    return RunStore(Path(find_store_dir(path)))
