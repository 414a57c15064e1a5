"""The model registry: named models whose versions 1, 2, 3... point at a run's files.

A version's files are copied into the store's content-addressed blobs (a manifest
like a snapshot's), so they outlive the run folder: ``launchbay rm`` of the run and
``launchbay gc`` keep every blob a version refers to. A version records the run it
came from, the run's metrics at registration, its environment hash and its snapshot.

Registered from inside a run (``Run.register_model``, journalled; registered when
the run's end is ingested, once its files are kept) or afterwards
(``RunHandle.register_model``, ``registry.register``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ConfigError, LaunchbayError, ModelNotFoundError
from .models import iso
from .store import RunRecord, RunStore
from .store.gclock import blob_writer
from .store.manifests import put_files, read_manifest, write_files

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_COLUMNS = (
    "m.name, v.version, v.run_id, v.experiment, v.path, v.kind, v.manifest, v.files, v.bytes, v.tags,"
    " v.description, v.metrics, v.environment_hash, v.snapshot_id, v.created"
)
MODEL_RECORD = "model"  # journal record kind written by Run.register_model
MODEL_USE = "model_use"  # journal record kind: a run loaded NAME:VERSION
MODEL_ERROR = "model_error"  # why an in-run registration could not be done


@dataclass
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    experiment: str | None
    path: str
    kind: str  # "file" or "folder"
    manifest: str
    files: int
    bytes: int
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    environment_hash: str | None = None
    snapshot_id: str | None = None
    created: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "experiment": self.experiment,
            "path": self.path,
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
            "tags": self.tags,
            "description": self.description,
            "metrics": self.metrics,
            "environment_hash": self.environment_hash,
            "snapshot_id": self.snapshot_id,
            "manifest": self.manifest,
            "created": iso(self.created),
        }


def parse_ref(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:VERSION`` (``NAME:latest`` too)."""
    name, _, version = text.strip().partition(":")
    check_name(name)
    if not version or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise ConfigError(f"{text!r}: a model version is a number from 1 up, e.g. {name}:1.")
    return name, int(version)


def check_name(name: str) -> None:
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"{name!r} is not a model name: use letters, digits, '-', '_' and '.', starting with a letter or digit."
        )


def clean_relpath(path: str) -> str:
    """A path inside a run's files, as ``outputs/model.pt`` (no '..', not absolute)."""
    text = str(path).replace("\\", "/")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts or "\x00" in text:
        raise ConfigError(f"{path!r} is not a path inside the run's files; give one like outputs/model.pt.")
    return "/".join(parts)


class ModelRegistry:
    """Reads and writes models and their versions in one store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    # -- register -------------------------------------------------------------------------------
    def register(
        self,
        record: RunRecord,
        name: str,
        path: str,
        *,
        tags: dict[str, Any] | None = None,
        description: str | None = None,
        at: float | None = None,
        source: str | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` from the run's file or folder ``path`` (e.g. ``outputs/model.pt``)."""
        check_name(name)
        rel = clean_relpath(path)
        files = self._run_files(record, rel)
        is_file = len(files) == 1 and files[0][0] == ""
        pairs = [(Path(rel).name if is_file else sub, local) for sub, local in files]
        kind = "file" if is_file else "folder"
        metrics = self._metrics(record, at)
        env = record.target_state.get("environment") or {}
        env_hash = env.get("hash") if isinstance(env, dict) else None
        with blob_writer(self.store.root):
            manifest_id, entries = put_files(self.store, pairs, kind=kind, name=Path(rel).name)
            with self.store.transaction() as db:
                if source is not None:
                    row = db.execute("SELECT 1 FROM model_versions WHERE source=?", (source,)).fetchone()
                    if row:  # another process registered this journal record first
                        raise _AlreadyDone()
                model = db.execute("SELECT id, next_version FROM models WHERE name=?", (name,)).fetchone()
                if model is None:
                    model_id = db.execute(
                        "INSERT INTO models(name, created, next_version) VALUES (?,?,1)", (name, time.time())
                    ).lastrowid
                    version = 1
                else:
                    model_id, version = model
                db.execute("UPDATE models SET next_version=? WHERE id=?", (version + 1, model_id))
                db.execute(
                    "INSERT INTO model_versions(model_id, version, run_id, experiment, path, kind, manifest, files,"
                    " bytes, tags, description, metrics, environment_hash, snapshot_id, created, source)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        model_id,
                        version,
                        record.run_id,
                        record.experiment,
                        rel,
                        kind,
                        manifest_id,
                        len(entries),
                        sum(e["size"] for e in entries),
                        json.dumps({str(k): str(v) for k, v in (tags or {}).items()}),
                        description,
                        json.dumps(metrics),
                        env_hash,
                        record.snapshot_id,
                        time.time(),
                        source,
                    ),
                )
        return self.get(name, version)

    def _run_files(self, record: RunRecord, rel: str) -> list[tuple[str, Path]]:
        """("", path) for a file, (relative name, path) for each file of a folder."""
        root = self.store.files_dir(record).resolve()
        target = (root / rel).resolve()
        if target.is_relative_to(root) and target.is_file():
            return [("", target)]
        if target.is_relative_to(root) and target.is_dir():
            found = [
                (str(p.relative_to(target)), p)
                for p in sorted(target.rglob("*"))
                if p.is_file() and p.resolve().is_relative_to(root)
            ]
            if found:
                return found
        names = self.store.file_names(record)
        hint = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "") if names else "none"
        raise ModelNotFoundError(
            f"Run {record.run_id} never wrote {rel!r}, so it cannot be registered; its files: {hint}."
        )

    def _metrics(self, record: RunRecord, at: float | None) -> dict[str, float]:
        """Each scalar metric's latest value (as of ``at``, when the run logged it before then)."""
        out: dict[str, float] = {}
        for summary in self.store.metric_summaries(record):
            if at is None:
                out[summary["name"]] = summary["last"]
                continue
            series = self.store.read_series(record, summary["name"])
            before = series.values[series.timestamps <= at]
            if len(before):
                out[summary["name"]] = float(before[-1])
        return out

    # -- read -------------------------------------------------------------------------------------
    def get(self, name: str, version: int | None = None) -> ModelVersion:
        check_name(name)
        sql = f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id=v.model_id WHERE m.name=?"
        if version is None:
            row = self.store.db.execute(sql + " ORDER BY v.version DESC LIMIT 1", (name,)).fetchone()
        else:
            row = self.store.db.execute(sql + " AND v.version=?", (name, version)).fetchone()
        if row is not None:
            return _version(row)
        known = self.versions(name, missing_ok=True)
        if not known:
            raise ModelNotFoundError(f"No model {name!r} in the registry; list models with `launchbay models list`.")
        listed = ", ".join(str(v.version) for v in known)
        raise ModelNotFoundError(f"Model {name!r} has no version {version}; its versions: {listed}.")

    def versions(self, name: str, missing_ok: bool = False) -> list[ModelVersion]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id=v.model_id WHERE m.name=?"
            " ORDER BY v.version",
            (name,),
        ).fetchall()
        if not rows and not missing_ok:
            self.get(name)  # raises the "no model" message
        return [_version(r) for r in rows]

    def all_versions(self) -> list[ModelVersion]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id=v.model_id ORDER BY m.name, v.version"
        )
        return [_version(r) for r in rows]

    def models(self) -> list[dict[str, Any]]:
        """One row per model: its latest version and how many versions it has."""
        latest: dict[str, ModelVersion] = {}
        counts: dict[str, int] = {}
        for v in self.all_versions():
            latest[v.name] = v
            counts[v.name] = counts.get(v.name, 0) + 1
        return [
            {**latest[n].to_dict(), "latest_version": latest[n].version, "versions": counts[n]} for n in sorted(latest)
        ]

    def for_run(self, run_id: str) -> list[ModelVersion]:
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM model_versions v JOIN models m ON m.id=v.model_id WHERE v.run_id=?"
            " ORDER BY m.name, v.version",
            (run_id,),
        )
        return [_version(r) for r in rows]

    def manifests(self) -> list[str]:
        return [str(r[0]) for r in self.store.db.execute("SELECT manifest FROM model_versions")]

    # -- use ----------------------------------------------------------------------------------------
    def download(self, version: ModelVersion, dest: str | Path) -> Path:
        """Write the version's file (or folder) into the folder ``dest``; returns its path there."""
        from .store.manifests import missing_blobs

        missing = missing_blobs(self.store, version.manifest)
        if missing:
            raise LaunchbayError(
                f"Model {version.ref}'s files are gone from the store ({', '.join(missing[:5])}); "
                "it cannot be downloaded."
            )
        manifest = read_manifest(self.store, version.manifest)
        folder = Path(dest)
        if version.kind == "file":
            write_files(self.store, manifest["files"], folder)
            return folder / manifest["files"][0]["path"]
        out = folder / str(manifest.get("name") or version.name)
        write_files(self.store, manifest["files"], out)
        return out

    def local_path(self, version: ModelVersion) -> Path:
        """A read-only copy in the store's cache (made once), for loading without a download."""
        cache = self.store.root / "cache" / "models" / version.name / str(version.version)
        done = cache / ".complete"
        if not done.exists():
            path = self.download(version, cache)
            done.write_text(path.name)
        return cache / done.read_text()

    def users(self, version: ModelVersion) -> list[str]:
        """Runs still in the store that recorded loading this version."""
        rows = self.store.db.execute(
            "SELECT DISTINCT r.run_id FROM records c JOIN runs r ON r.pk=c.run_pk WHERE c.kind=? AND c.name=?",
            (MODEL_USE, version.ref),
        )
        return [str(r[0]) for r in rows]

    def delete(self, name: str, version: int, force: bool = False) -> ModelVersion:
        """Remove one version (its blobs go at the next ``gc`` unless something else needs them)."""
        found = self.get(name, version)
        users = self.users(found)
        if users and not force:
            raise LaunchbayError(
                f"Model {found.ref} is used by run(s) {', '.join(users[:5])}; "
                f"pass --force to delete it anyway (launchbay models delete {found.ref} --force)."
            )
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM model_versions WHERE version=? AND model_id=(SELECT id FROM models WHERE name=?)",
                (version, name),
            )
        import shutil

        shutil.rmtree(self.store.root / "cache" / "models" / name / str(version), ignore_errors=True)
        return found

    # -- in-run registrations ---------------------------------------------------------------------
    def register_pending(self, record: RunRecord) -> list[ModelVersion]:
        """Register what the run asked for with ``Run.register_model`` once its files are kept."""
        if not record.status.is_terminal():
            return []
        rows = self.store.db.execute(
            "SELECT id, name, payload, ts FROM records WHERE run_pk=? AND kind=?"
            " AND 'record:' || id NOT IN (SELECT source FROM model_versions WHERE run_id=? AND source IS NOT NULL)"
            " AND CAST(id AS TEXT) NOT IN (SELECT name FROM records WHERE run_pk=? AND kind=?)",
            (record.pk, MODEL_RECORD, record.run_id, record.pk, MODEL_ERROR),
        ).fetchall()
        done = []
        for rec_id, name, payload, ts in rows:
            data = json.loads(payload) or {}
            try:
                done.append(
                    self.register(
                        record,
                        name,
                        str(data.get("path", "")),
                        tags=data.get("tags"),
                        description=data.get("description"),
                        at=ts,
                        source=f"record:{rec_id}",
                    )
                )
            except _AlreadyDone:
                continue
            except LaunchbayError as exc:
                message = f"model {name!r} was not registered: {exc}"
                with self.store.transaction() as db:
                    db.execute(
                        "INSERT INTO records(run_pk, kind, name, payload, ts) VALUES (?,?,?,?,?)",
                        (record.pk, MODEL_ERROR, str(rec_id), json.dumps(message), time.time()),
                    )
                    self.store.set_tag(record.pk, "launchbay.model_error", message, db=db)  # shown with the run
        return done


class _AlreadyDone(Exception):
    """Another process registered the same journal record first."""


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
