"""What the SQL modules (runs.py, writes.py, series.py, model_rows.py) need of a backend: ``SqlIndex``.

Those modules hold the index's SQL once; a backend that keeps its index in an SQL engine gives them
this thread's connection (``db``: a ``Db`` of dialect.py, whose ``dialect`` names the forms each
engine spells its own way) and a write transaction (``transaction``). The embedded store's is
connection.py (SQLite); the team store's is postgres.py (PostgreSQL).
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path

from .base import Store
from .dialect import Db


class SqlIndex(Store):
    """A store whose index is SQL: the connection and the transaction the SQL modules build on."""

    #: a folder on this machine that holds the run folders and launchbay's local cache
    root: Path

    @property
    @abstractmethod
    def db(self) -> Db:
        """This thread's connection to the index."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Db]:
        """One write transaction: writers queue for it (never fail at once), a raise rolls it back."""
