"""``runs/<id>/run.json``: what the index knows about a run when it is created.

The run folders are the truth: together with the journal (statuses, metrics,
tags, files) this file is enough for ``launchbay store repair`` to rebuild the
run's row in a damaged or lost index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import runfolder as rf
from ..models import RunSpec

RUN_FILE = rf.RUN_RECORD


def describe(
    spec: RunSpec,
    run_id: str,
    target_type: str,
    snapshot_id: str | None,
    properties: dict[str, Any],
    target_state: dict[str, Any],
    created: float,
    created_by: str | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "run_id": run_id,
        "experiment": spec.experiment,
        "name": spec.name,
        "target": spec.target,
        "target_type": target_type,
        "script": spec.script or "<cell>",
        "arguments": list(spec.arguments),
        "snapshot_id": snapshot_id,
        "environment": spec.environment,
        "created": created,
        "properties": properties,
        "spec": spec.to_json(),
        "target_state": target_state,
        "parent_run_id": spec.parent_run_id,
        "tags": {k: str(v) for k, v in spec.tags.items()},
        "params": dict(spec.params),
        "created_by": created_by,
    }


def write(run_dir: Path, data: dict[str, Any]) -> None:
    """Atomically (temp file + rename) write ``run.json`` into a new run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{RUN_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
    try:
        tmp.write_text(json.dumps(data, default=str))
        os.replace(tmp, run_dir / RUN_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def update(run_dir: Path, **fields: Any) -> None:
    """Change keys of an existing ``run.json`` (a run folder from before it existed is left alone)."""
    data = read(run_dir)
    if data is not None:
        data.update(fields)
        write(run_dir, data)


def read(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def looks_like_run(path: Path) -> bool:
    """Is this folder a run's (it has run.json, a runner.json or a journal)?"""
    return any((path / name).exists() for name in (RUN_FILE, rf.RUNNER_CONFIG, rf.JOURNAL))
