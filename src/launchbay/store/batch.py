"""The unit of work: ``RunWriter`` (one run's writes in one transaction) and ``Batch`` (several runs').

Every change to a run (ingest's journal pieces, a tag, target state, the failure check's end, a
cancel, a model registration's record) goes through one of these, inside a backend's ``batch()``.
The status rule lives here, in the base class, so every backend keeps it: a status changes only
through ``transition``, which never leaves a terminal status (Completed, Failed, Canceled); a run
canceled by the user stays Canceled whatever its runner writes afterwards. ``reopen`` is the one way
out, for a Failed run only.

A backend fills the hooks: what the run logged (points, records, tags), the journal offsets it
claims, and ``_write_row``, which writes the run's changed columns once, as the batch ends.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ..models import RunStatus


class RunWriter(ABC):
    """The writes of one transaction to one run (get one from ``store.write(pk)`` or ``Batch.run``)."""

    def __init__(
        self,
        pk: int,
        run_id: str,
        status: RunStatus,
        heartbeat: float | None,
        target_state: str | None,
        properties: str | None,
    ) -> None:
        """``target_state`` and ``properties`` as stored (JSON text): decoded only when asked for."""
        self.pk, self.run_id = pk, run_id
        self.status = status  # as of this transaction, transitions included
        self.heartbeat = heartbeat
        self._target_state, self._properties = target_state, properties
        self._fields: dict[str, Any] = {}
        self._wrote = False

    # -- the run's row ---------------------------------------------------------------------
    @property
    def target_state(self) -> dict[str, Any]:
        """A copy of the run's target state (as this batch has set it so far)."""
        return dict(self._fields["target_state"]) if "target_state" in self._fields else _dict(self._target_state)

    @property
    def properties(self) -> dict[str, Any]:
        """A copy of the run's properties (as this batch has set it so far)."""
        return dict(self._fields["properties"]) if "properties" in self._fields else _dict(self._properties)

    def set(self, **fields: Any) -> None:
        """Set columns of the run (not its status: that is ``transition``)."""
        if "status" in fields:
            raise ValueError("a run's status changes only through RunWriter.transition")
        self._fields.update(fields)
        self._wrote = True

    def transition(self, status: RunStatus, **fields: Any) -> bool:
        """Move the run to ``status`` and set ``fields`` with it, unless the run is terminal already.

        Returns whether it moved; a terminal status is never left (nor are its fields touched)."""
        if self.status.is_terminal():
            return False
        self.set(**fields)
        self._fields["status"] = status.value
        self.status = status
        return True

    def reopen(self, **fields: Any) -> bool:
        """Queue a Failed run again: the one way out of a terminal status (``sweep resume`` of a sweep whose
        controller died). Returns False, changing nothing, when the run did not fail."""
        if self.status is not RunStatus.FAILED:
            return False
        self.set(ended=None, error=None, exit_code=None, **fields)
        self._fields["status"] = RunStatus.QUEUED.value
        self.status = RunStatus.QUEUED
        return True

    def flush(self) -> None:
        """Write the run's changed columns (and ``updated``) once; called by the batch as it commits."""
        if self._wrote:
            self._write_row({**self._fields, "updated": time.time()})

    @abstractmethod
    def _write_row(self, fields: dict[str, Any]) -> None:
        """Set these columns of the run's row (dict and list values are JSON)."""

    # -- what the run logged ---------------------------------------------------------------
    @abstractmethod
    def append_points(self, name: str, points: list[Any]) -> int:
        """Add metric points (``(name, value, step or None, ts)``, the value an int64 or a float); how many
        could not be kept."""

    @abstractmethod
    def mark_rounded(self, names: Sequence[str]) -> None:
        """Mark metrics rounded: a value of theirs was stored as a float64 other than what was logged."""

    @abstractmethod
    def add_record(self, kind: str, name: str, payload: str | None, ts: float | None) -> None:
        """Keep one record (a table, an image, a model, a warning...) with its JSON payload."""

    @abstractmethod
    def set_tag(self, key: str, value: str) -> None: ...

    # -- the journal's read positions ------------------------------------------------------
    @abstractmethod
    def claim_offsets(self, read: dict[str, tuple[int, int]]) -> bool:
        """Move journal files' offsets from the start to the end of what was read, if nobody moved them
        meanwhile; False (nothing written) when another reader ingested those bytes first. Checked and
        written inside this batch's transaction, so two ingesting processes never both claim a piece."""


def _dict(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


class Batch(ABC):
    """Writes to several runs in one transaction (a bulk import); ``store.write(pk)`` is the one-run case."""

    def __init__(self) -> None:
        self._runs: dict[int, RunWriter] = {}

    def run(self, pk: int) -> RunWriter:
        """The writer of run ``pk`` in this batch."""
        if pk not in self._runs:
            self._runs[pk] = self._writer(pk)
        return self._runs[pk]

    @abstractmethod
    def _writer(self, pk: int) -> RunWriter:
        """A writer for run ``pk`` in this transaction (``RunNotFoundError`` when there is no such run)."""

    def flush(self) -> None:
        """Every run's row updated once; the backend calls it just before it commits."""
        for writer in self._runs.values():
            writer.flush()
