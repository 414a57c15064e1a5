"""SweepHandle: a sweep run plus its children, from any process."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ..handle import RunHandle
from ..models import RunStatus
from ..store import RunRecord
from .controller import SWEEP_FILE, TERMINATION_TAG

if TYPE_CHECKING:
    from ..session import Session


class SweepHandle(RunHandle):
    """A sweep by run id. ``wait``/``cancel``/``status`` act on the sweep (cancel stops its children)."""

    def __repr__(self) -> str:
        return f"SweepHandle(run_id={self.run_id!r}, status={self.status!r})"

    def _ipython_display_(self) -> None:
        """In a notebook: the live sweep widget (runs table, best so far, parallel coordinates)."""
        from IPython.display import display

        from ..ipython.display import widget_frontend_likely

        if widget_frontend_likely():
            from ..ipython.sweep_widget import SweepWidget

            display(SweepWidget(self))
            return
        for row in self.table():
            print(row)

    def config(self) -> dict[str, Any]:
        """What the sweep was started with (space, metric, goal, limits, policy)."""
        record = self._session.store.get_run(self.run_id)
        data: dict[str, Any] = json.loads((record.run_dir / SWEEP_FILE).read_text())
        return data

    def children(self) -> list[RunRecord]:
        """The child runs, newest first, caught up with their journals."""
        session = self._session
        rows = session.store.db.execute(
            "SELECT run_id FROM runs WHERE parent_run_id=? ORDER BY created DESC, pk DESC", (self.run_id,)
        ).fetchall()
        return [session.refresh(row[0]) for row in rows]

    def _metric(self, record: RunRecord, name: str) -> float | None:
        for summary in self._session.store.metric_summaries(record):
            if summary["name"] == name:
                return float(summary["last"])
        return None

    def best_run(self) -> RunHandle | None:
        """The completed child with the best LAST value of the primary metric (None if none has one)."""
        config = self.config()
        name, maximize = config["primary_metric"], config["goal"] == "maximize"
        scored = []
        for record in self.children():
            if record.status is not RunStatus.COMPLETED:
                continue
            value = self._metric(record, name)
            if value is not None and value == value:  # NaN never wins
                scored.append((value, record.run_id))
        if not scored:
            return None
        value, run_id = (max if maximize else min)(scored)
        return RunHandle(run_id, self._session)

    get_best_run_by_primary_metric = best_run

    def table(self) -> list[dict[str, Any]]:
        """One row per child: run_id, status, params, metric (last value), early_termination reason."""
        name = self.config()["primary_metric"]
        return [
            {
                "run_id": r.run_id,
                "status": r.status.value,
                "params": r.spec.get("params") or r.params,
                "metric": self._metric(r, name),
                "early_termination": r.tags.get(TERMINATION_TAG),
            }
            for r in self.children()
        ]


def get_sweep(run_id: str, *, store: str | os.PathLike[str] | None = None) -> SweepHandle:
    """Re-attach to a sweep by id (or a unique prefix of it)."""
    from ..api import _session
    from ..errors import LaunchbayError

    session: Session = _session(store)
    record = session.store.get_run(run_id)
    if record.target_type != "sweep":
        raise LaunchbayError(f"Run {record.run_id} is not a sweep; open it with launchbay.get_run().")
    return SweepHandle(record.run_id, session)
