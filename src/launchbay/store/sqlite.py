"""The embedded store: an SQLite index (WAL) next to a blob folder and run folders.

Layout of ``.launchbay/``::

    index.sqlite          runs, experiments, tags, params, metric series, chunks
    blobs/ab/cdef...      content-addressed files (snapshot files and manifests)
    runs/<run_id>/        runner.json, journal/, files/ (outputs, logs, user_logs)
    envs/, cache/         launchbay's local cache (``cache_dir`` is this folder)

``RunStore`` fills ``Store`` (base.py) with one class per job, each in its own module:

    connection.py   the per-thread connection, write transactions, migrations, ``close()``
    runs.py         reading runs: get, list, filter, children, records, snapshots in use
    writes.py       the batch write primitive ``batch`` and the writer's hooks
    series.py       metric series: the chunk encoder and decoder
    model_rows.py   the model registry's rows
    data_rows.py    datasets, their versions and each run's inputs
    queue_rows.py   run queues: who waits for a slot of a target or experiment, in what order
    schedule_rows.py schedules and their fires
    transfer.py     runs and the catalog as rows another store imports (``store copy``)
    sealed.py       an ended run's points, packed once into its run folder

Nothing outside ``store/`` runs SQL: every query and write has a named method here. The few forms
only SQLite has go through the connection's dialect (dialect.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..config import LAUNCHBAY_BLOBS, ProjectConfig, find_project_root, find_store_dir, load_config
from ..errors import ConfigError, LaunchbayError
from . import sealed
from .connection import StoreConnection
from .data_rows import DataRows
from .files import inside
from .guard import FULL_ERRNOS, store_error
from .model_rows import ModelRows
from .netfs import refuse_network_fs
from .queue_rows import QueueRows
from .records import RunRecord, Series
from .registry import StoreBackend
from .schedule_rows import ScheduleRows
from .series import SeriesStore
from .transfer import RunTransfer
from .writes import RunWrites

__all__ = ["FolderBackend", "RunStore", "Series", "inside"]


class RunStore(RunWrites, SeriesStore, ModelRows, DataRows, QueueRows, ScheduleRows, RunTransfer, StoreConnection):
    """The embedded store: the SQLite index, the folder's blobs, run folders (see the module docstring).

    Close it when done (``close()``, or use it as a context manager)."""

    def seal(self, record: RunRecord) -> bool:
        return sealed.seal(self, record)

    def adopt_rebuilt(self, record: RunRecord) -> bool:
        return sealed.adopt_rebuilt(self, record)


class FolderBackend(StoreBackend):
    """``file:`` URIs and bare paths: the embedded store in that folder, as launchbay always opened it."""

    def open(self, location: str | None, start: Path | None = None) -> RunStore:
        """The folder's index; its blobs in the folder, or where LAUNCHBAY_BLOBS / ``[store] blobs`` say."""
        root = find_store_dir(location, start=start)
        refuse_network_fs(root)
        blobs = LAUNCHBAY_BLOBS.get()
        s3: dict[str, object] = {}
        if blobs is None and find_project_root(start or Path.cwd()) is not None:
            try:
                config = load_config(start)
            except ConfigError:  # the session says why; the folder's own blobs meanwhile
                config = ProjectConfig()
            blobs, s3 = config.store.get("blobs"), config.s3
        if not blobs:
            return RunStore(root)
        from .remote import open_blobs

        return RunStore(root, blobs=open_blobs(str(blobs), root, s3))

    def error(self, exc: BaseException, location: str | None) -> LaunchbayError | None:
        """SQLite's errors and a full disk (any other ``OSError`` is not the store's)."""
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS or isinstance(exc, sqlite3.Error):
            return store_error(exc, find_store_dir(location))
        return None
