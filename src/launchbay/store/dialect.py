"""What the index's SQL says differently per engine: the SQLite forms, named once.

The SQL text of the index (runs.py, writes.py, series.py, model_rows.py, sealed.py) is written
once, in the portable subset; the few forms each engine spells its own way go through the
connection's ``dialect``. A second SQL backend is then a ``Dialect`` and a connection factory
(guard.py's ``connect`` is SQLite's), not a second copy of those modules.

``Db`` is what those modules need of a connection: ``execute``, ``executemany`` and its dialect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Db(Protocol):
    """An index connection as the SQL modules use it (SQLite's is guard.py's ``GuardedConnection``)."""

    dialect: Dialect

    def execute(self, sql: str, parameters: Any = (), /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...


class Dialect(ABC):
    """The engine-specific forms: upsert, insert-if-new, begin-write, schema version, new row ids, JSON
    fields, paging and planner hints."""

    #: the statement that opens a write transaction (writers queue on it instead of failing later)
    begin_write: str

    @abstractmethod
    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """INSERT of ``columns`` that replaces the row with the same ``key`` columns."""

    @abstractmethod
    def insert_new(self, table: str, columns: Sequence[str]) -> str:
        """INSERT of ``columns`` that does nothing when the row exists (its rowcount says which)."""

    @abstractmethod
    def insert_id(self, db: Db, sql: str, parameters: Sequence[Any]) -> int:
        """Run the INSERT ``sql`` and return the key of the row it made."""

    @abstractmethod
    def schema_version(self, db: Db) -> int:
        """The number of the last migration applied to the index (0 for a new one)."""

    @abstractmethod
    def set_schema_version(self, db: Db, version: int) -> None: ...

    @abstractmethod
    def json_field(self, column: str, key: str) -> str:
        """An expression for the JSON text of ``column``'s top-level ``key``."""

    @abstractmethod
    def greatest(self, first: str, second: str) -> str:
        """The larger of two expressions (a scalar, not the aggregate)."""

    def indexed_by(self, table: str, index: str) -> str:
        """``table`` told to use ``index`` (where the planner picks a worse one); no hint by default."""
        return table

    def not_indexed(self, expression: str) -> str:
        """``expression`` kept from driving an index lookup; unchanged by default."""
        return expression

    def page(self, limit: int | None, offset: int) -> str:
        """The LIMIT/OFFSET clause of a page (``limit`` None: every row after ``offset``)."""
        return (f" LIMIT {int(limit)}" if limit is not None else "") + f" OFFSET {int(offset)}"

    #: the case-insensitive LIKE of a text search (SQLite's LIKE is one)
    like: str = "LIKE"
    #: what follows a SELECT of the run row a write is about to change: SQLite's one writer needs nothing
    for_update: str = ""

    def param_value(self, value: Any) -> Any:
        """A run parameter's value (an int, float or str) as the params table keeps and compares it."""
        return value

    def as_text(self, expression: str) -> str:
        """``expression`` (a params value) as text, for a text search."""
        return expression

    def statements(self, migration: str) -> list[str]:
        """The statements of one numbered migration (migrations.py), in this engine's spelling."""
        return [statement for statement in migration.split(";") if statement.strip()]


def _values(columns: Sequence[str]) -> str:
    return f"({', '.join(columns)}) VALUES ({','.join('?' * len(columns))})"


class SqliteDialect(Dialect):
    begin_write = "BEGIN IMMEDIATE"

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        return f"INSERT OR REPLACE INTO {table}{_values(columns)}"

    def insert_new(self, table: str, columns: Sequence[str]) -> str:
        return f"INSERT OR IGNORE INTO {table}{_values(columns)}"

    def insert_id(self, db: Db, sql: str, parameters: Sequence[Any]) -> int:
        return int(db.execute(sql, parameters).lastrowid or 0)

    def schema_version(self, db: Db) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, db: Db, version: int) -> None:
        db.execute(f"PRAGMA user_version={int(version)}")

    def json_field(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def greatest(self, first: str, second: str) -> str:
        return f"MAX({first}, {second})"

    def indexed_by(self, table: str, index: str) -> str:
        return f"{table} INDEXED BY {index}"

    def not_indexed(self, expression: str) -> str:
        return f"+{expression}"  # SQLite's unary plus: the term is tested per row, not looked up

    def page(self, limit: int | None, offset: int) -> str:
        return f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"  # no OFFSET without LIMIT


SQLITE = SqliteDialect()
