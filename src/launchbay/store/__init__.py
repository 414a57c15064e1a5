"""The run-history store: the ``Store`` contract (base.py), its backends, and ``open_store(uri)``.

The embedded backend (sqlite.py: SQLite index + blob folder) opens bare paths and ``file:`` URIs;
other schemes come from the ``launchbay.stores`` entry-point group (registry.py).
"""

from __future__ import annotations

from .base import Store
from .batch import Batch, RunWriter
from .blobs import BlobStore
from .records import RunRecord
from .registry import ENTRY_POINT_GROUP, StoreBackend, escaped_error, open_store
from .sqlite import RunStore, Series

__all__ = [
    "ENTRY_POINT_GROUP",
    "Batch",
    "BlobStore",
    "RunRecord",
    "RunStore",
    "RunWriter",
    "Series",
    "Store",
    "StoreBackend",
    "escaped_error",
    "open_store",
]
