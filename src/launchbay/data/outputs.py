"""Outputs as data: what a run wrote becomes a new version of a named dataset once it has completed.

Asked for with ``--output NAME=PATH`` (``outputs=`` in the API; PATH inside the run's ``outputs/``)
or from inside the run with ``run.register_dataset(NAME, PATH)``. The version refers to the files the
store keeps of the run (``runs/<id>/files/...``), and is recorded as the run's ``output`` lineage, so
``launchbay data lineage NAME`` names the run that made it. Registered once, whoever ingests the end.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import DataInputError, LaunchbayError
from ..models import RunStatus
from ..store import RunRecord, Store
from ..store.records import RunInput
from .spec import check_name

OUTPUT_RECORD = "dataset_output"  # journal record kind written by Run.register_dataset
OUTPUT_ERROR = "dataset_output_error"


def outputs_argument(values: list[str] | None) -> dict[str, str]:
    """``--output NAME=PATH`` (repeatable): PATH relative to the run's working folder, inside outputs/."""
    out: dict[str, str] = {}
    for text in values or []:
        name, eq, path = text.partition("=")
        if not eq or not path:
            raise DataInputError(f"--output {text!r}: write NAME=PATH, e.g. --output features=outputs/features.")
        check_name(name, "--output")
        parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or parts[0] != "outputs" or ".." in parts:
            raise DataInputError(
                f"--output {text!r}: the path must be inside outputs/ (what a run keeps), e.g. outputs/features."
            )
        if name in out:
            raise DataInputError(f"Two outputs are named {name!r}; give each output its own name.")
        out[name] = "/".join(parts)
    return out


def register_outputs(store: Store, record: RunRecord) -> list[str]:
    """The dataset versions a completed run made, registered once; the refs made now."""
    if record.status is not RunStatus.COMPLETED:
        return []
    wanted: dict[str, tuple[str, str | None]] = {
        name: (path, None) for name, path in dict((record.spec or {}).get("outputs") or {}).items()
    }
    for _kind, name, payload, _ts in (
        store.read_records(record, OUTPUT_RECORD) if store.has_records(record.run_id, OUTPUT_RECORD) else []
    ):
        data: dict[str, Any] = payload if isinstance(payload, dict) else json.loads(payload or "{}")
        wanted[name] = (str(data.get("path", "")), data.get("description"))
    if not wanted:
        return []
    done = {i.name for i in store.run_inputs(record.run_id, "output")}
    made = []
    for name, (path, description) in sorted(wanted.items()):
        if name in done:
            continue
        made.extend(_register(store, record, name, path, description))
    return made


def _register(store: Store, record: RunRecord, name: str, path: str, description: str | None) -> list[str]:
    from . import datasets

    location = record.run_dir / "files" / path
    try:
        if not location.exists():
            raise DataInputError(f"the run wrote no {path}")
        version, _new = datasets.add(
            store, name, str(location), description=description, run_id=record.run_id, base=record.run_dir
        )
        item = RunInput(
            name, f"run:{record.run_id}/{path}", version.hash, version.kind, "output", version.files, version.bytes
        )
        item.location, item.dataset, item.dataset_version, item.direction = (
            str(location),
            name,
            version.version,
            "output",
        )
        store.add_run_inputs(record.run_id, [item])
        from .runs import keep_in_run_file

        keep_in_run_file(store, record, [item])
    except LaunchbayError as exc:
        message = f"dataset {name!r} was not made from {path}: {exc}"
        store.set_tag(record.pk, "launchbay.dataset_error", message)
        return []
    return [version.ref]
