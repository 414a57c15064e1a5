"""The store's SQLite connection: one per thread, write transactions, schema migration, ``close()``.

Every part of ``RunStore`` (runs, writes, series, models) builds on this class, the SQLite half of
``Store`` (base.py); nothing outside ``store/`` opens a connection or runs SQL. The store folder
(``root``) is this backend's business: it holds the index, the blob folder, the run folders, and
launchbay's local cache (``cache_dir`` is the folder itself, so ``envs/`` and ``cache/`` stay where
they always were).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ..errors import LaunchbayError, StoreDamagedError, StoreError
from . import runfile
from .blobs import BlobStore, FolderBlobs
from .gclock import blob_collector, blob_writer
from .guard import REPAIR_HINT, GuardedConnection, connect, store_error
from .migrations import MIGRATIONS, SCHEMA_VERSION
from .sqlindex import SqlIndex

BUSY_TIMEOUT_MS = 60_000


class StoreConnection(SqlIndex):
    """The index file, the blob folder and the run folders of one ``.launchbay/``."""

    def __init__(
        self,
        root: Path,
        *,
        index_name: str = "index.sqlite",
        rebuilding: bool = False,
        blobs: BlobStore | None = None,
    ) -> None:
        """``rebuilding`` (``launchbay store repair`` only): an empty index next to run folders is expected.
        ``blobs``: another blob store than the folder's own ``blobs/`` (the index does not care where)."""
        self.root = root
        self.index_path = root / index_name
        self.blobs = blobs if blobs is not None else FolderBlobs(root / "blobs")
        self.runs_dir = root / "runs"
        self.cache_dir = root
        self._local = threading.local()
        self._conns: dict[threading.Thread, GuardedConnection] = {}  # every thread's, so close() closes all
        self._conns_lock = threading.Lock()
        self._rebuilding = rebuilding
        self._migrate()

    # -- connection and transactions -------------------------------------------------
    @property
    def db(self) -> GuardedConnection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.root, self.index_path, BUSY_TIMEOUT_MS / 1000)
            with self._conns_lock:
                self._local.conn = conn
                for thread in [t for t in self._conns if not t.is_alive()]:
                    self._conns.pop(thread).close()  # its thread ended: nobody can use it any more
                self._conns[threading.current_thread()] = conn
        return conn

    def close(self) -> None:
        """Close every connection this store opened (any thread's); the store reopens one on next use."""
        with self._conns_lock:
            conns, self._conns = self._conns, {}
            self._local = threading.local()
        for conn in conns.values():
            conn.close()

    @property
    def uri(self) -> str:
        """The folder's path: what ``open_store`` takes as it is (and what older runners understand)."""
        return str(self.root)

    def index_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob(self.index_path.name + "*") if p.is_file())

    def failure(self, exc: BaseException) -> LaunchbayError:
        return store_error(exc, self.root)

    def writing_blobs(self) -> AbstractContextManager[None]:
        return blob_writer(self.root)

    def collecting_blobs(self) -> AbstractContextManager[None]:
        return blob_collector(self.root)

    def checkpoint_into_one_file(self) -> None:
        """Leave WAL mode, so that everything is in the index file itself (``store repair`` renames it)."""
        self.db.execute("PRAGMA journal_mode=DELETE")

    @contextmanager
    def transaction(self) -> Iterator[GuardedConnection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing)."""
        db = self.db
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                sqlite3.Connection.execute(db, db.dialect.begin_write)
                break
            except sqlite3.OperationalError as exc:
                # SQLite can answer "locked" at once (WAL recovery by another process) instead of waiting
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise store_error(exc, self.root) from exc
                time.sleep(0.02)
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except LaunchbayError:
                    pass  # SQLite rolled back by itself (disk full, I/O error)
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise store_error(exc, self.root) from exc
            raise

    def _migrate(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.runs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise store_error(exc, self.root) from exc
        if not self._rebuilding and (not self.index_path.exists() or self.index_path.stat().st_size == 0):
            self._refuse_empty_index()  # before SQLite writes a header into it
        version = self.db.dialect.schema_version(self.db)
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreError(
                f"The store at {self.root} has schema version {version}, newer than this launchbay "
                f"understands ({SCHEMA_VERSION}). Upgrade launchbay (pip install -U launchbay)."
            )
        if version == SCHEMA_VERSION:
            return
        try:
            with self.transaction() as db:
                version = db.dialect.schema_version(db)
                if version == 0 and not self._rebuilding:
                    self._refuse_empty_index()
                for number in range(version, SCHEMA_VERSION):
                    for statement in db.dialect.statements(MIGRATIONS[number]):
                        db.execute(statement)
                db.dialect.set_schema_version(db, SCHEMA_VERSION)
        except BaseException:
            self.close()  # the caller never gets this store: leave no connection behind
            raise

    def _refuse_empty_index(self) -> None:
        """An empty (0-byte, new or lost) index next to run folders must not look like "no runs yet"."""
        try:
            folders = sum(1 for e in os.scandir(self.runs_dir) if e.is_dir() and runfile.looks_like_run(Path(e.path)))
        except OSError:
            folders = 0
        if folders:
            raise StoreDamagedError(
                f"The store's index {self.index_path} is empty or missing, but {self.runs_dir} holds "
                f"{folders} run folder(s); nothing was written. {REPAIR_HINT}"
            )
