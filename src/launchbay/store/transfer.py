"""Runs and what lies beside them, as rows that travel between stores (``launchbay store copy``).

Both SQL backends keep the same tables (the same numbered migrations), so a run travels as its rows
with the keys left behind: the destination gives them keys of its own, and the links between runs
(parent, rerun, resume) are run ids, which travel as they are. Points travel as their packed chunks,
byte for byte, never decoded and packed again (exact, and fast); a chunk that an ended embedded run
keeps in its ``sealed.series`` is read out of that file, its checksum checked, and travels packed.
A model version names the journal record it was registered from (``record:<id>``, so it registers
once): it travels as that record's place among its run's records and is named again by the
record's id in the destination.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from .. import runfolder as rf
from .data_rows import _INPUT_COLUMNS
from .dialect import Db
from .model_rows import _COLUMNS as _MODEL_COLUMNS
from .model_rows import _FROM as _MODEL_FROM
from .model_rows import _version as _model_version
from .records import Catalog, CatalogReport, DatasetVersion, ModelVersion, RunExport, RunInput
from .series import damaged_series
from .sqlindex import SqlIndex
from .writes import experiment_id

RUN_COLUMNS = (
    "run_id", "name", "status", "target", "target_type", "script", "arguments", "snapshot_id", "environment",
    "created", "started", "ended", "updated", "exit_code", "error", "heartbeat", "properties", "spec",
    "target_state", "parent_run_id", "created_by",
)  # fmt: skip
SERIES_COLUMNS = ("name", "count", "last_step", "last", "min", "max", "ints", "rounded")
CHUNK_COLUMNS = ("n", "first_step", "last_step", "steps", "vals", "ts", "codec", "file_at", "file_size")
_INPUTS = tuple(c.strip() for c in _INPUT_COLUMNS.split(","))
_PART = 500  # ids per IN (...): well under SQLite's limit on bound parameters


def _parts(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for first in range(0, len(items), _PART):
        yield items[first : first + _PART]


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


def _values(columns: Sequence[str]) -> str:
    return f"({', '.join(columns)}) VALUES ({_marks(columns)})"


class RunTransfer(SqlIndex):
    """``export_runs`` / ``import_runs`` and ``export_catalog`` / ``import_catalog`` over the index's tables."""

    def all_run_ids(self) -> list[str]:
        return [str(r[0]) for r in self.db.execute("SELECT run_id FROM runs ORDER BY created, pk")]

    # -- runs --------------------------------------------------------------------------------------------
    def export_runs(self, run_ids: Sequence[str]) -> list[RunExport]:
        found: dict[str, RunExport] = {}
        for part in _parts(list(run_ids)):
            found.update((run.run_id, run) for run in self._export(self.db, part))
        return [found[run_id] for run_id in run_ids if run_id in found]

    def _export(self, db: Db, run_ids: Sequence[str]) -> list[RunExport]:
        columns = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
        by_pk: dict[int, RunExport] = {}
        sql = f"SELECT r.pk, e.name, {columns} FROM runs r JOIN experiments e ON e.id=r.experiment_id"
        for pk, experiment, *values in db.execute(f"{sql} WHERE r.run_id IN ({_marks(run_ids)})", list(run_ids)):
            row = {**dict(zip(RUN_COLUMNS, values)), "experiment": experiment}
            by_pk[int(pk)] = RunExport(run_id=str(row["run_id"]), row=row)
        if not by_pk:
            return []
        pks, marks = list(by_pk), _marks(list(by_pk))
        for pk, key, value in db.execute(f"SELECT run_pk, key, value FROM tags WHERE run_pk IN ({marks})", pks):
            by_pk[pk].tags.append((key, value))
        for pk, key, value in db.execute(f"SELECT run_pk, key, value FROM params WHERE run_pk IN ({marks})", pks):
            by_pk[pk].params.append((key, value))
        records = f"SELECT run_pk, id, kind, name, payload, ts FROM records WHERE run_pk IN ({marks}) ORDER BY id"
        for pk, *record in db.execute(records, pks):
            by_pk[pk].records.append(tuple(record))  # type: ignore[arg-type]
        for pk, name, pos in db.execute(f"SELECT run_pk, file, pos FROM offsets WHERE run_pk IN ({marks})", pks):
            by_pk[pk].offsets.append((name, int(pos)))
        inputs = f"SELECT run_pk, {', '.join(_INPUTS)} FROM run_inputs WHERE run_pk IN ({marks})"
        for pk, *values in db.execute(inputs + " ORDER BY run_pk, direction, name", pks):
            by_pk[pk].inputs.append(RunInput(**dict(zip(_INPUTS, values))))
        series: dict[int, tuple[RunExport, dict[str, Any]]] = {}
        listed = f"SELECT id, run_pk, {', '.join(SERIES_COLUMNS)} FROM series WHERE run_pk IN ({marks}) ORDER BY id"
        for series_id, pk, *values in db.execute(listed, pks):
            entry = {**dict(zip(SERIES_COLUMNS, values)), "chunks": []}
            by_pk[pk].series.append(entry)
            series[int(series_id)] = (by_pk[pk], entry)
        for part in _parts(list(series)):
            chunks = f"SELECT series_id, {', '.join(CHUNK_COLUMNS)} FROM chunks WHERE series_id IN ({_marks(part)})"
            for series_id, *values in db.execute(chunks + " ORDER BY id", list(part)):
                series[series_id][1]["chunks"].append(list(values))
        from .codec import SEALED  # NumPy: only for a copy, never when a listing opens the store

        for run, entry in series.values():
            if any(chunk[6] == SEALED for chunk in entry["chunks"]):
                self._unseal(run, entry)
        return list(by_pk.values())

    def _unseal(self, run: RunExport, entry: dict[str, Any]) -> None:
        """The series' sealed chunks as packed ones: read out of the run's sealed.series, checksums checked."""
        from .codec import PACKED, SEALED, CodecError, verify

        journal = self.runs_dir / run.run_id / rf.JOURNAL
        try:
            with open(journal / rf.SEALED_SERIES, "rb") as fh:
                for chunk in entry["chunks"]:
                    if chunk[6] != SEALED:
                        continue
                    fh.seek(int(chunk[7]))
                    blob = fh.read(int(chunk[8]))
                    verify(blob)
                    chunk[3:9] = [None, blob, b"", PACKED, None, None]
        except (OSError, CodecError) as exc:
            if not isinstance(exc, CodecError):
                exc = CodecError(f"(its sealed.series cannot be read: {exc})")
            raise damaged_series(exc, entry["name"], journal, entry["chunks"]) from exc

    def import_runs(self, runs: Sequence[RunExport]) -> list[str]:
        with self.transaction() as db:
            present: set[str] = set()
            for part in _parts([run.run_id for run in runs]):
                listed = f"SELECT run_id FROM runs WHERE run_id IN ({_marks(part)})"
                present.update(r[0] for r in db.execute(listed, part))
            new = list({run.run_id: run for run in runs if run.run_id not in present}.values())
            if not new:
                return []
            experiments = {name: experiment_id(db, name) for name in sorted({str(r.row["experiment"]) for r in new})}
            db.executemany(
                f"INSERT INTO runs{_values(('experiment_id', *RUN_COLUMNS))}",
                [(experiments[str(r.row["experiment"])], *(r.row[c] for c in RUN_COLUMNS)) for r in new],
            )
            pks: dict[str, int] = {}
            for part in _parts([run.run_id for run in new]):
                pks.update(db.execute(f"SELECT run_id, pk FROM runs WHERE run_id IN ({_marks(part)})", part).fetchall())
            self._import_rows(db, new, pks)
        return [run.run_id for run in new]

    def _import_rows(self, db: Db, runs: list[RunExport], pks: dict[str, int]) -> None:
        """Every row of these runs but their runs rows (inside the caller's transaction)."""
        param = db.dialect.param_value
        db.executemany(
            f"INSERT INTO tags{_values(('run_pk', 'key', 'value'))}",
            [(pks[r.run_id], k, v) for r in runs for k, v in r.tags],
        )
        db.executemany(
            f"INSERT INTO params{_values(('run_pk', 'key', 'value'))}",
            [(pks[r.run_id], k, param(v)) for r in runs for k, v in r.params],
        )
        db.executemany(
            f"INSERT INTO records{_values(('run_pk', 'kind', 'name', 'payload', 'ts'))}",
            [(pks[r.run_id], *record[1:]) for r in runs for record in r.records],
        )
        db.executemany(
            f"INSERT INTO offsets{_values(('run_pk', 'file', 'pos'))}",
            [(pks[r.run_id], name, pos) for r in runs for name, pos in r.offsets],
        )
        db.executemany(
            f"INSERT INTO run_inputs{_values(('run_pk', *_INPUTS))}",
            [(pks[r.run_id], *(getattr(i, c) for c in _INPUTS)) for r in runs for i in r.inputs],
        )
        db.executemany(
            f"INSERT INTO series{_values(('run_pk', *SERIES_COLUMNS))}",
            [(pks[r.run_id], *(s[c] for c in SERIES_COLUMNS)) for r in runs for s in r.series],
        )
        ids: dict[tuple[int, str], int] = {}
        with_series = [pks[r.run_id] for r in runs if r.series]
        for part in _parts(with_series):
            listed = f"SELECT run_pk, name, id FROM series WHERE run_pk IN ({_marks(part)})"
            ids.update(((pk, name), series_id) for pk, name, series_id in db.execute(listed, part))
        db.executemany(
            f"INSERT INTO chunks{_values(('series_id', *CHUNK_COLUMNS))}",
            [(ids[(pks[r.run_id], s["name"])], *c) for r in runs for s in r.series for c in s["chunks"]],
        )

    # -- what lies beside the runs: models, datasets, schedules ------------------------------------------
    def export_catalog(self) -> Catalog:
        db = self.db
        catalog = Catalog(datasets=self.dataset_versions())
        records: dict[str, list[int]] = {}
        sql = f"SELECT {_MODEL_COLUMNS}, v.source {_MODEL_FROM} ORDER BY m.name, v.version"
        for *values, source in db.execute(sql).fetchall():
            version = _model_version(values)
            place = None
            if source and str(source).startswith("record:") and version.run_id:
                if version.run_id not in records:
                    records[version.run_id] = [
                        int(r[0])
                        for r in db.execute(
                            "SELECT c.id FROM records c JOIN runs r ON r.pk=c.run_pk WHERE r.run_id=? ORDER BY c.id",
                            (version.run_id,),
                        )
                    ]
                record_id = int(str(source).split(":", 1)[1])
                place = records[version.run_id].index(record_id) if record_id in records[version.run_id] else None
            catalog.models.append((version, None if place is None else source, place))
        for schedule in self.schedules():
            catalog.schedules.append((schedule, self.schedule_fires(schedule.name, limit=1 << 30)))
        return catalog

    def import_catalog(self, catalog: Catalog) -> CatalogReport:
        report = CatalogReport()
        with self.transaction() as db:
            for version, source, place in catalog.models:
                _import_model(db, version, source, place, report)
            for dataset in catalog.datasets:
                _import_dataset(db, dataset, report)
        for schedule, fires in catalog.schedules:
            if self.schedule(schedule.name) is not None:
                report.present += 1
                continue
            from dataclasses import replace

            # paused: the old store's supervisor may still fire it; the user resumes it once that one is stopped
            self.add_schedule(replace(schedule, paused=True))
            with self.transaction() as db:
                db.executemany(
                    db.dialect.insert_new("schedule_fires", ("name", "due", "fired", "outcome", "run_id", "message")),
                    [(f.name, f.due, f.fired, f.outcome, f.run_id, f.message) for f in fires],
                )
            report.added += 1
        return report


def _import_model(db: Db, version: ModelVersion, source: str | None, place: int | None, report: CatalogReport) -> None:
    """One model version with its number; its ``source`` named by its record's id here (or none)."""
    model = db.execute("SELECT id, next_version FROM models WHERE name=?", (version.name,)).fetchone()
    if model is None:
        model_id = db.dialect.insert_id(
            db, "INSERT INTO models(name, created, next_version) VALUES (?,?,?)", (version.name, version.created, 1)
        )
        next_version = 1
    else:
        model_id, next_version = model
    here = db.execute(
        "SELECT manifest FROM model_versions WHERE model_id=? AND version=?", (model_id, version.version)
    ).fetchone()
    if here is not None:
        if here[0] == version.manifest:
            report.present += 1
        else:
            report.conflicts.append(f"model {version.ref}: this store has another version {version.ref}; left as it is")
        return
    if source is not None and place is not None and version.run_id:
        ids = [
            int(r[0])
            for r in db.execute(
                "SELECT c.id FROM records c JOIN runs r ON r.pk=c.run_pk WHERE r.run_id=? ORDER BY c.id",
                (version.run_id,),
            )
        ]
        source = f"record:{ids[place]}" if place < len(ids) else None
    if source is not None and db.execute("SELECT 1 FROM model_versions WHERE source=?", (source,)).fetchone():
        source = None
    db.execute(
        "INSERT INTO model_versions(model_id, version, run_id, experiment, path, kind, manifest, files, bytes, tags,"
        " description, metrics, environment_hash, snapshot_id, created, source)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            model_id, version.version, version.run_id, version.experiment, version.path, version.kind,
            version.manifest, version.files, version.bytes, json.dumps(version.tags), version.description,
            json.dumps(version.metrics), version.environment_hash, version.snapshot_id, version.created, source,
        ),
    )  # fmt: skip
    db.execute("UPDATE models SET next_version=? WHERE id=?", (max(int(next_version), version.version + 1), model_id))
    report.added += 1


def _import_dataset(db: Db, version: DatasetVersion, report: CatalogReport) -> None:
    """One dataset version with its number (the same content under another number here is a conflict)."""
    row = db.execute("SELECT id, next_version FROM datasets WHERE name=?", (version.name,)).fetchone()
    if row is None:
        dataset_id = db.dialect.insert_id(
            db,
            "INSERT INTO datasets(name, description, created, next_version) VALUES (?,?,?,1)",
            (version.name, version.description, version.created),
        )
        next_version = 1
    else:
        dataset_id, next_version = row
    for number, digest in db.execute(
        "SELECT version, hash FROM dataset_versions WHERE dataset_id=? AND (version=? OR hash=?)",
        (dataset_id, version.version, version.hash),
    ).fetchall():
        if number == version.version and digest == version.hash:
            report.present += 1
        else:
            report.conflicts.append(
                f"dataset {version.ref}: this store has {version.name}:{number} with"
                f" {'other content' if number == version.version else 'the same content'}; left as it is"
            )
        return
    db.execute(
        "INSERT INTO dataset_versions(dataset_id, version, hash, kind, source, location, files, bytes, description,"
        " run_id, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            dataset_id, version.version, version.hash, version.kind, version.source, version.location,
            version.files, version.bytes, version.description, version.run_id, version.created,
        ),
    )  # fmt: skip
    db.execute(
        "UPDATE datasets SET next_version=? WHERE id=?", (max(int(next_version), version.version + 1), dataset_id)
    )
    report.added += 1
