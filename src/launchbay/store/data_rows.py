"""The rows of data inputs: named datasets, their numbered versions, and each run's inputs (lineage)."""

from __future__ import annotations

import time
from typing import Any

from .records import DatasetVersion, RunInput
from .sqlindex import SqlIndex

_VERSION_COLUMNS = (
    "d.name, v.version, v.hash, v.kind, v.source, v.location, v.files, v.bytes, v.description, v.run_id, v.created"
)
_VERSION_FROM = "FROM dataset_versions v JOIN datasets d ON d.id=v.dataset_id"
_INPUT_COLUMNS = (
    "name, source, hash, kind, mode, files, bytes, bytes_sent, location, dataset, dataset_version, direction"
)


class DataRows(SqlIndex):
    """Reading and writing datasets and run inputs; a version's manifest is a blob ``gc`` keeps."""

    def add_dataset_version(self, version: DatasetVersion) -> tuple[int, bool]:
        """Record ``version`` as the dataset's next number, or find the version with the same hash:
        (its number, whether it is new). The dataset is made on its first version."""
        with self.transaction() as db:
            row = db.execute("SELECT id, next_version FROM datasets WHERE name=?", (version.name,)).fetchone()
            if row is None:
                dataset_id = db.dialect.insert_id(
                    db,
                    "INSERT INTO datasets(name, description, created, next_version) VALUES (?,?,?,1)",
                    (version.name, version.description, time.time()),
                )
                number = 1
            else:
                dataset_id, number = row
                same = db.execute(
                    "SELECT version FROM dataset_versions WHERE dataset_id=? AND hash=?", (dataset_id, version.hash)
                ).fetchone()
                if same is not None:
                    return int(same[0]), False
            db.execute("UPDATE datasets SET next_version=? WHERE id=?", (number + 1, dataset_id))
            db.execute(
                "INSERT INTO dataset_versions(dataset_id, version, hash, kind, source, location, files, bytes,"
                " description, run_id, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    dataset_id,
                    number,
                    version.hash,
                    version.kind,
                    version.source,
                    version.location,
                    version.files,
                    version.bytes,
                    version.description,
                    version.run_id,
                    time.time(),
                ),
            )
        return int(number), True

    def dataset_version(self, name: str, version: int | None = None) -> DatasetVersion | None:
        sql = f"SELECT {_VERSION_COLUMNS} {_VERSION_FROM} WHERE d.name=?"
        if version is None:
            row = self.db.execute(sql + " ORDER BY v.version DESC LIMIT 1", (name,)).fetchone()
        else:
            row = self.db.execute(sql + " AND v.version=?", (name, int(version))).fetchone()
        return None if row is None else _version(row)

    def dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        sql, args = f"SELECT {_VERSION_COLUMNS} {_VERSION_FROM}", []
        if name is not None:
            sql, args = sql + " WHERE d.name=?", [name]
        return [_version(r) for r in self.db.execute(sql + " ORDER BY d.name, v.version", args)]

    def delete_dataset_version(self, name: str, version: int) -> None:
        with self.transaction() as db:
            row = db.execute("SELECT id FROM datasets WHERE name=?", (name,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM dataset_versions WHERE dataset_id=? AND version=?", (row[0], int(version)))
            if db.execute("SELECT 1 FROM dataset_versions WHERE dataset_id=?", (row[0],)).fetchone() is None:
                db.execute("DELETE FROM datasets WHERE id=?", (row[0],))

    def add_run_inputs(self, run_id: str, inputs: list[RunInput]) -> None:
        with self.transaction() as db:
            pk = db.execute("SELECT pk FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if pk is None:
                from ..errors import RunNotFoundError

                raise RunNotFoundError(f"No run {run_id!r} to record inputs for.")
            db.executemany(
                f"INSERT INTO run_inputs(run_pk, {_INPUT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        pk[0],
                        i.name,
                        i.source,
                        i.hash,
                        i.kind,
                        i.mode,
                        i.files,
                        i.bytes,
                        i.bytes_sent,
                        i.location,
                        i.dataset,
                        i.dataset_version,
                        i.direction,
                    )
                    for i in inputs
                ],
            )

    def run_inputs(self, run_id: str, direction: str | None = "input") -> list[RunInput]:
        sql = (
            f"SELECT {', '.join('i.' + c.strip() for c in _INPUT_COLUMNS.split(','))}"
            " FROM run_inputs i JOIN runs r ON r.pk=i.run_pk WHERE r.run_id=?"
        )
        args: list[Any] = [run_id]
        if direction is not None:
            sql, args = sql + " AND i.direction=?", [run_id, direction]
        return [_input(r) for r in self.db.execute(sql + " ORDER BY i.direction, i.name", args)]

    def set_input_bytes_sent(self, run_id: str, name: str, bytes_sent: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE run_inputs SET bytes_sent=? WHERE direction='input' AND name=?"
                " AND run_pk=(SELECT pk FROM runs WHERE run_id=?)",
                (int(bytes_sent), name, run_id),
            )

    def runs_with_data(self, version_hash: str) -> list[str]:
        rows = self.db.execute(
            "SELECT DISTINCT r.run_id, r.created FROM run_inputs i JOIN runs r ON r.pk=i.run_pk"
            " WHERE i.hash=? ORDER BY r.created",
            (version_hash,),
        )
        return [str(r[0]) for r in rows]

    def data_manifests(self) -> list[str]:
        rows = self.db.execute("SELECT hash FROM dataset_versions UNION SELECT hash FROM run_inputs")
        return [str(r[0]) for r in rows]


def _version(row: tuple[Any, ...]) -> DatasetVersion:
    return DatasetVersion(*row)


def _input(row: tuple[Any, ...]) -> RunInput:
    return RunInput(*row)
