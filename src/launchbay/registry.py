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
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ConfigError, LaunchbayError, ModelNotFoundError
from .store import RunRecord, Store
from .store.manifests import put_files, read_manifest, write_files
from .store.model_rows import ModelVersion

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MODEL_RECORD = "model"  # journal record kind written by Run.register_model
MODEL_USE = "model_use"  # journal record kind: a run loaded NAME:VERSION
MODEL_ERROR = "model_error"  # why an in-run registration could not be done


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

    def __init__(self, store: Store) -> None:
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
        with self.store.writing_blobs():
            manifest_id, entries = put_files(self.store, pairs, kind=kind, name=Path(rel).name)
            number = self.store.add_model_version(
                record,
                ModelVersion(
                    name=name,
                    version=0,  # the store gives the model's next number
                    run_id=record.run_id,
                    experiment=record.experiment,
                    path=rel,
                    kind=kind,
                    manifest=manifest_id,
                    files=len(entries),
                    bytes=sum(e["size"] for e in entries),
                    tags={str(k): str(v) for k, v in (tags or {}).items()},
                    description=description,
                    metrics=metrics,
                    environment_hash=env_hash,
                ),
                source,
            )
        if number is None:  # another process registered this journal record first
            raise _AlreadyDone()
        return self.get(name, number)

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
        found = self.store.model_version(name, version)
        if found is not None:
            return found
        known = self.versions(name, missing_ok=True)
        if not known:
            raise ModelNotFoundError(f"No model {name!r} in the registry; list models with `launchbay models list`.")
        listed = ", ".join(str(v.version) for v in known)
        raise ModelNotFoundError(f"Model {name!r} has no version {version}; its versions: {listed}.")

    def versions(self, name: str, missing_ok: bool = False) -> list[ModelVersion]:
        rows = self.store.model_versions(name=name)
        if not rows and not missing_ok:
            self.get(name)  # raises the "no model" message
        return rows

    def all_versions(self) -> list[ModelVersion]:
        return self.store.model_versions()

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
        return self.store.model_versions(run_id=run_id)

    def manifests(self) -> list[str]:
        return self.store.model_manifests()

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
        cache = self.store.cache_dir / "cache" / "models" / version.name / str(version.version)
        done = cache / ".complete"
        if not done.exists():
            path = self.download(version, cache)
            done.write_text(path.name)
        return cache / done.read_text()

    def users(self, version: ModelVersion) -> list[str]:
        """Runs still in the store that recorded loading this version."""
        return self.store.runs_with_record(MODEL_USE, version.ref)

    def delete(self, name: str, version: int, force: bool = False) -> ModelVersion:
        """Remove one version (its blobs go at the next ``gc`` unless something else needs them)."""
        found = self.get(name, version)
        users = self.users(found)
        if users and not force:
            raise LaunchbayError(
                f"Model {found.ref} is used by run(s) {', '.join(users[:5])}; "
                f"pass --force to delete it anyway (launchbay models delete {found.ref} --force)."
            )
        self.store.delete_model_version(name, version)
        import shutil

        shutil.rmtree(self.store.cache_dir / "cache" / "models" / name / str(version), ignore_errors=True)
        return found

    # -- in-run registrations ---------------------------------------------------------------------
    def register_pending(self, record: RunRecord, ending: bool = False) -> list[ModelVersion]:
        """Register what the run asked for with ``Run.register_model`` once its files are kept
        (the run has ended, or is ``ending``: its final event is read, not yet applied)."""
        if not (ending or record.status.is_terminal()):
            return []
        rows = self.store.pending_model_records(record, MODEL_RECORD, MODEL_ERROR)
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
                with self.store.write(record.pk) as run:
                    run.add_record(MODEL_ERROR, str(rec_id), json.dumps(message), time.time())
                    run.set_tag("launchbay.model_error", message)  # shown with the run
        return done


class _AlreadyDone(Exception):
    """Another process registered the same journal record first."""
