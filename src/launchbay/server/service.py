"""What the REST API answers, as plain functions over the store: no HTTP in here.

The Jupyter handlers (handlers.py) are a thin layer over ``LaunchbayService``;
everything reads through the same ``RunStore`` and ``Session`` as the CLI, so a
run looks the same in the sidebar, the notebook and ``launchbay show``.

Runs that are not finished are caught up with their journal (``Session.refresh``)
before they are shown, at most once a second per run, so status is live without
every poll re-reading every journal.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

from .. import runfolder as rf
from ..diffing import param_differences, snapshot_diff
from ..errors import ConfigError, RunNotFoundError
from ..models import RunStatus
from ..plots_data import downsample_minmax
from ..session import Session, open_session
from ..store import RunRecord

LOG_CHUNK_BYTES = 256 * 1024
REFRESH_EVERY_S = 1.0
MAX_ACTIVE_REFRESH = 200
MAX_CHANGES = 1000
_ACTIVE = [s for s in RunStatus if not s.is_terminal()]
_GIT_PREFIX = "launchbay.git."
log = logging.getLogger(__name__)
_GIT_NAMES = {"commit": "commit", "branch": "branch", "dirty": "dirty", "repository_uri": "remote"}


class LaunchbayService:
    """One per Jupyter server: the store, the project config and the refresh throttle."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.store = session.store
        self._refreshed: dict[str, float] = {}
        self._active_refreshed = 0.0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, store: str | None = None, root_dir: str | Path | None = None) -> LaunchbayService:
        """The store named by ``store``, LAUNCHBAY_STORE, or discovered from ``root_dir``."""
        return cls(open_session(store, start=root_dir))

    # -- keeping unfinished runs live ----------------------------------------------------------
    def _live(self, record: RunRecord) -> RunRecord:
        """``record`` caught up with its journal, unless that happened less than a second ago."""
        if record.status.is_terminal():
            return record
        now = time.time()
        with self._lock:
            if now - self._refreshed.get(record.run_id, 0.0) < REFRESH_EVERY_S:
                return record
            self._refreshed[record.run_id] = now
        try:
            fresh = self.session.refresh(record)
        except Exception as exc:  # a broken target must not take the whole listing down
            log.warning("launchbay: could not refresh run %s: %s", record.run_id, exc)
            return record  # show what the store has
        if fresh.status.is_terminal():
            with self._lock:
                self._refreshed.pop(record.run_id, None)
        return fresh

    def refresh_active(self) -> None:
        """Catch up every unfinished run (newest first, bounded), at most once a second."""
        now = time.time()
        with self._lock:
            if now - self._active_refreshed < REFRESH_EVERY_S:
                return
            self._active_refreshed = now
        for status in _ACTIVE:
            for record in self.store.list_runs(status=status.value, limit=MAX_ACTIVE_REFRESH, details=False):
                self._live(record)

    def _run(self, run_id: str) -> RunRecord:
        return self._live(self.store.get_run(run_id))

    # -- runs ---------------------------------------------------------------------------------
    def list_runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
        user: str | None = None,
    ) -> dict[str, Any]:
        """One page of runs, newest first, and how many match the filters in all (``user``: one person's)."""
        self.refresh_active()
        filters: dict[str, Any] = {
            "experiment": experiment or None,
            "status": status or None,
            "text": q or None,
            "user": user or None,
        }
        records = self.store.list_runs(**filters, limit=limit, offset=offset)
        queued = self.store.queue_positions([r.run_id for r in records if r.status is RunStatus.QUEUED])
        rows = [{**run_dict(r), **_queue_fields(queued.get(r.run_id))} for r in records]
        return {"runs": rows, "total": self.store.count_runs(**filters)}

    def experiments(self) -> dict[str, Any]:
        return {"experiments": [{"name": name, "runs": count} for name, count in self.store.experiments()]}

    def users(self) -> dict[str, Any]:
        """Who made runs and how many each; ``me``: the name this server's runs are made as."""
        from ..config import user_name

        rows = [{"name": name, "runs": count} for name, count in self.store.users()]
        return {"users": rows, "me": user_name(self.session.config)}

    def run(self, run_id: str) -> dict[str, Any]:
        record = self._run(run_id)
        data = run_dict(record, detail=True)
        lineage = self.store.run_inputs(record.run_id, None)  # what it read and made, with their versions
        data["inputs"] = [i.to_dict() for i in lineage if i.direction == "input"]
        data["outputs"] = [i.to_dict() for i in lineage if i.direction == "output"]
        entry = self.store.queue_positions([record.run_id]).get(record.run_id)
        return {**data, **_queue_fields(entry)}

    def pipeline(self, run_id: str) -> dict[str, Any]:
        """A pipeline run's steps (as ``launchbay pipeline show --json``), its data edges and its DAG as SVG."""
        from ..errors import ConfigError
        from ..pipelines.handle import PipelineHandle

        record = self._run(run_id)
        if record.target_type != "pipeline":
            raise ConfigError(f"Run {record.run_id} is not a pipeline; its target is {record.target!r}.")
        handle = PipelineHandle(record.run_id, self.session)
        graph = handle.graph()
        steps = [{k: s[k] for k in ("name", "status", "run_id", "reused_from", "reason")} for s in graph["steps"]]
        return {"run_id": record.run_id, "status": record.status.value, **graph, "steps": steps}

    def log(self, run_id: str, offset: int = 0, rank: int = 0) -> dict[str, Any]:
        """Log text after byte ``offset`` (a distributed run's ``rank``: its own log); a chunk never
        ends inside a UTF-8 character."""
        record = self._run(run_id)
        if rank:
            from ..distributed import check_rank, read_rank_chunk

            check_rank(record, rank)
            data, _ = read_rank_chunk(record, rank, offset, LOG_CHUNK_BYTES)
        else:
            data, _ = self.store.read_log(record, offset, max_bytes=LOG_CHUNK_BYTES)
        at_end = len(data) < LOG_CHUNK_BYTES and record.status.is_terminal()
        keep = len(data) if at_end else _complete_utf8(data)
        return {
            "text": data[:keep].decode("utf-8", "replace"),
            "offset": offset + keep,
            "status": record.status.value,
        }

    # -- metrics ------------------------------------------------------------------------------
    def metrics(self, run_id: str) -> dict[str, Any]:
        record = self._run(run_id)
        return {"metrics": [_finite(s) for s in self.store.metric_summaries(record)]}

    def logged(self, run_id: str, since: int | None = None, max_rows: int = 1000) -> dict[str, Any]:
        """Images, tables, rows and lists (see ``launchbay.logged``); image files come from ``files``."""
        from ..logged import logged_payload

        return logged_payload(self.store, self._run(run_id), since, max_rows)

    def metric(
        self, run_id: str, name: str, after_step: float | None = None, buckets: int | None = None
    ) -> dict[str, Any]:
        """A series (points after ``after_step`` only), min/max-downsampled to ``buckets``."""
        record = self._run(run_id)
        if self.store.series_id(record, name) is None:
            raise RunNotFoundError(
                f"Run {record.run_id} has no metric {name!r}; "
                f"list its metrics with `launchbay metrics {record.run_id}`."
            )
        if after_step is not None and float(after_step).is_integer():
            after_step = int(after_step)
        series = self.store.read_series(record, name, after_step=after_step)  # type: ignore[arg-type]
        steps, values = series.steps, series.values
        if buckets:
            steps, values = downsample_minmax(steps, values, buckets)
        return {"name": name, "steps": steps.tolist(), "values": _finite_list(values)}

    # -- files --------------------------------------------------------------------------------
    def files(self, run_id: str) -> dict[str, Any]:
        """The run's files (outputs/, logs/, user_logs/), only those inside its folder."""
        record = self._run(run_id)
        out = []
        for name in self.store.file_names(record):
            try:
                path = self.store.file_path(record, name)
            except RunNotFoundError:
                continue  # a symlink pointing out of the run: never listed, never served
            out.append({"name": name, "size": path.stat().st_size})
        return {"files": out}

    def file_path(self, run_id: str, name: str) -> Path:
        """The local path of one of the run's files; anything outside them is refused."""
        record = self.store.get_run(run_id)
        parts = PurePosixPath(name).parts
        if not name or name.startswith(("/", "\\")) or "\x00" in name or ".." in parts or "\\" in name:
            raise ConfigError(
                f"{name!r} is not a path inside run {record.run_id}'s files; "
                f"list them with `launchbay files {record.run_id}`."
            )
        return self.store.file_path(record, name)

    # -- actions ------------------------------------------------------------------------------
    def cancel(self, run_id: str) -> dict[str, Any]:
        """Stop the run; returns once it is terminal (Canceled, or what it reached first)."""
        record = self.session.cancel(run_id)
        with self._lock:
            self._refreshed.pop(record.run_id, None)
        return {"status": record.status.value}

    def tensorboard(self, run_id: str) -> dict[str, Any]:
        """TensorBoard over the run's ./logs, started by this server once and reused."""
        from ..tboard import ensure

        record = self._run(run_id)
        return {"url": ensure({record.run_id: self.store.files_dir(record) / rf.LOGS})}

    def rerun(self, run_id: str, target: str | None = None) -> dict[str, Any]:
        if target is not None and not isinstance(target, str):
            raise ConfigError("'target' must be a target name (a string) or null for the run's own target.")
        handle = self.session.rerun(run_id, (target or "").strip() or None)
        return {"run_id": handle.run_id}

    def targets(self) -> dict[str, Any]:
        config = self.session.config
        return {
            "targets": [
                {"name": name, "type": str(config.targets.get(name, {}).get("type", "local"))}
                for name in config.target_names()
            ]
        }

    # -- compare and changes ------------------------------------------------------------------
    def compare(self, run_ids: list[str]) -> dict[str, Any]:
        """Runs side by side: the union of param keys, those that differ, and the snapshot diff."""
        if len(run_ids) < 2:
            raise ConfigError("Compare needs at least two run ids, e.g. ?runs=ID1,ID2.")
        records = [self._run(run_id) for run_id in run_ids]
        keys, differing = param_differences(records)
        return {
            "runs": [run_dict(r) for r in records],
            "params": {"keys": keys, "differing": differing},
            "diff": {"files": self.snapshot_diff(records[0], records[1])},
        }

    def snapshot_diff(self, first: RunRecord, second: RunRecord) -> list[dict[str, Any]]:
        """File-by-file diff of two runs' snapshots (shared with ``launchbay diff``)."""
        return snapshot_diff(self.store, first, second)

    # -- models -----------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        """Every registered model with its latest version (the sidebar's Models view)."""
        from ..registry import ModelRegistry

        return {"models": [_finite_dict(m) for m in ModelRegistry(self.store).models()]}

    def model(self, name: str) -> dict[str, Any]:
        """One model's versions, newest first, each linked to the run that produced it."""
        from ..registry import ModelRegistry, check_name

        check_name(name)
        versions = ModelRegistry(self.store).versions(name)
        return {"name": name, "versions": [_finite_dict(v.to_dict()) for v in reversed(versions)]}

    def changes(self, since: float) -> dict[str, Any]:
        """Runs created or updated after ``since`` (cheap: ids and statuses only)."""
        now = time.time()
        self.refresh_active()
        records = self.store.list_runs(updated_since=since, limit=MAX_CHANGES, details=False)
        return {
            "now": now,
            "runs": [{"run_id": r.run_id, "status": r.status.value, "updated": r.updated} for r in records],
        }


def _queue_fields(entry: Any) -> dict[str, Any]:
    """A waiting run's place (1 = next) and what it waits for, as ``show --json`` carries them; else nulls."""
    if entry is None:
        return {"queue_position": None, "queue": None}
    return {"queue_position": entry.position, "queue": entry.pool}


def run_dict(record: RunRecord, detail: bool = False) -> dict[str, Any]:
    """A run as the REST API shows it (``RunRecord.to_dict`` plus ``properties.git``)."""
    data = record.to_dict()
    properties = {k: v for k, v in record.properties.items() if not k.startswith(_GIT_PREFIX)}
    git = {
        _GIT_NAMES.get(k[len(_GIT_PREFIX) :], k[len(_GIT_PREFIX) :]): v
        for k, v in record.properties.items()
        if k.startswith(_GIT_PREFIX)
    }
    if git:
        if "dirty" in git:
            git["dirty"] = str(git["dirty"]).lower() == "true"
        properties["git"] = git
    data["properties"] = properties
    if data.get("primary_metric"):
        data["primary_metric"] = _finite(data["primary_metric"])
    # targets record the environment they resolved (name, hash, built) in target_state
    env = record.target_state.get("environment") or record.properties.get("environment")
    data["environment"] = (
        env if isinstance(env, dict) else ({"name": record.environment} if record.environment else None)
    )
    if detail:
        data["spec"] = record.spec
    else:
        data.pop("target_state", None)
    return data


def _complete_utf8(data: bytes) -> int:
    """Length of ``data`` without a UTF-8 character cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue  # continuation byte: look further back for the lead byte
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
        return len(data) - back if back < need else len(data)
    return len(data)


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def _finite_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A model row with NaN/inf metrics as None (JSON has no such numbers)."""
    return {**row, "metrics": _finite(row.get("metrics") or {})}


def _finite_list(values: Any) -> list[float | None]:
    import numpy as np

    if np.isfinite(values).all():
        return list(values.tolist())
    return [v if math.isfinite(v) else None for v in values.tolist()]
