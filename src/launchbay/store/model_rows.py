"""The model registry's rows: models and their numbered versions (``registry.py`` holds the rules)."""

from __future__ import annotations

import json
import time
from typing import Any

from .records import ModelVersion, RunRecord
from .sqlindex import SqlIndex

_COLUMNS = (
    "m.name, v.version, v.run_id, v.experiment, v.path, v.kind, v.manifest, v.files, v.bytes, v.tags,"
    " v.description, v.metrics, v.environment_hash, v.snapshot_id, v.created"
)
_FROM = "FROM model_versions v JOIN models m ON m.id=v.model_id"


class ModelRows(SqlIndex):
    """Reading and writing model versions; a version's files are blobs, kept by ``gc`` while it exists."""

    def add_model_version(self, record: RunRecord, version: ModelVersion, source: str | None) -> int | None:
        """Record ``version`` of a model as the model's next number; that number.

        ``source`` (a journal record's id) registers once: None when another process did it first."""
        with self.transaction() as db:
            if source is not None:
                if db.execute("SELECT 1 FROM model_versions WHERE source=?", (source,)).fetchone():
                    return None
            model = db.execute("SELECT id, next_version FROM models WHERE name=?", (version.name,)).fetchone()
            if model is None:
                model_id = db.dialect.insert_id(
                    db, "INSERT INTO models(name, created, next_version) VALUES (?,?,1)", (version.name, time.time())
                )
                number = 1
            else:
                model_id, number = model
            db.execute("UPDATE models SET next_version=? WHERE id=?", (number + 1, model_id))
            db.execute(
                "INSERT INTO model_versions(model_id, version, run_id, experiment, path, kind, manifest, files,"
                " bytes, tags, description, metrics, environment_hash, snapshot_id, created, source)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    model_id,
                    number,
                    record.run_id,
                    record.experiment,
                    version.path,
                    version.kind,
                    version.manifest,
                    version.files,
                    version.bytes,
                    json.dumps(version.tags),
                    version.description,
                    json.dumps(version.metrics),
                    version.environment_hash,
                    record.snapshot_id,
                    time.time(),
                    source,
                ),
            )
        return int(number)

    def model_version(self, name: str, version: int | None = None) -> ModelVersion | None:
        """One version of a model (the latest when ``version`` is None), or None."""
        sql = f"SELECT {_COLUMNS} {_FROM} WHERE m.name=?"
        if version is None:
            row = self.db.execute(sql + " ORDER BY v.version DESC LIMIT 1", (name,)).fetchone()
        else:
            row = self.db.execute(sql + " AND v.version=?", (name, version)).fetchone()
        return None if row is None else _version(row)

    def model_versions(self, *, name: str | None = None, run_id: str | None = None) -> list[ModelVersion]:
        """Versions by model name and number: all, one model's, or those registered from one run."""
        sql, args = f"SELECT {_COLUMNS} {_FROM}", []
        if name is not None:
            sql, args = sql + " WHERE m.name=?", [name]
        elif run_id is not None:
            sql, args = sql + " WHERE v.run_id=?", [run_id]
        return [_version(r) for r in self.db.execute(sql + " ORDER BY m.name, v.version", args)]

    def model_manifests(self) -> list[str]:
        """The manifest blob of every version (what ``gc`` must keep)."""
        return [str(r[0]) for r in self.db.execute("SELECT manifest FROM model_versions")]

    def delete_model_version(self, name: str, version: int) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM model_versions WHERE version=? AND model_id=(SELECT id FROM models WHERE name=?)",
                (version, name),
            )

    def runs_with_record(self, kind: str, name: str) -> list[str]:
        """Runs still in the store that logged a record of ``kind`` named ``name`` (e.g. loaded a model)."""
        rows = self.db.execute(
            "SELECT DISTINCT r.run_id FROM records c JOIN runs r ON r.pk=c.run_pk WHERE c.kind=? AND c.name=?",
            (kind, name),
        )
        return [str(r[0]) for r in rows]

    def pending_model_records(
        self, run: RunRecord, kind: str, error_kind: str
    ) -> list[tuple[int, str, str, float | None]]:
        """The run's ``kind`` records neither registered yet nor answered by an ``error_kind`` record."""
        return self.db.execute(
            "SELECT id, name, payload, ts FROM records WHERE run_pk=? AND kind=?"
            " AND 'record:' || id NOT IN (SELECT source FROM model_versions WHERE run_id=? AND source IS NOT NULL)"
            " AND CAST(id AS TEXT) NOT IN (SELECT name FROM records WHERE run_pk=? AND kind=?)",
            (run.pk, kind, run.run_id, run.pk, error_kind),
        ).fetchall()


def _version(row: tuple[Any, ...]) -> ModelVersion:
    return ModelVersion(
        name=row[0],
        version=row[1],
        run_id=row[2],
        experiment=row[3],
        path=row[4],
        kind=row[5],
        manifest=row[6],
        files=row[7],
        bytes=row[8],
        tags=json.loads(row[9] or "{}"),
        description=row[10],
        metrics=json.loads(row[11] or "{}"),
        environment_hash=row[12],
        snapshot_id=row[13],
        created=row[14],
    )
