"""SweepHandle: a sweep run plus its children, from any process."""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import LaunchbayError
from ..handle import RunHandle
from ..models import RunStatus, stopped_early
from ..store import RunRecord
from ..store.records import ChildRow
from .names import INDEX_TAG, RETRY_TAG, SWEEP_FILE, TERMINATION_TAG

if TYPE_CHECKING:
    pass


def readable(value: Any) -> str:
    """A parameter or metric for reading: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


class SweepTable(list):  # type: ignore[type-arg]
    """``sweep.table()``: a list of row dicts, best first, that renders as an HTML table in a notebook."""

    def __init__(self, rows: list[dict[str, Any]], metric: str, params: list[str]) -> None:
        super().__init__(rows)
        self.metric, self.params = metric, params

    def _repr_html_(self) -> str:
        heads = ["run", "status", *self.params, self.metric, "reason"]
        out = ['<table class="lb-table lb-sweep-table"><tr>']
        out += [f"<th>{html.escape(h)}</th>" for h in heads]
        out.append("</tr>")
        for r in self:
            cells = [r["run_id"], shown(r), *(readable(r["params"].get(p)) for p in self.params)]
            cells += [readable(r["metric"]), r["early_termination"] or ""]
            out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</table>")
        return "".join(out)

    def __str__(self) -> str:
        heads = ["run", "status", *self.params, self.metric]
        rows = [heads] + [
            [r["run_id"], shown(r), *(readable(r["params"].get(p)) for p in self.params), readable(r["metric"])]
            for r in self
        ]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(heads))]
        return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def shown(row: dict[str, Any]) -> str:
    """A table row's status as a person reads it: "stopped early" for a child its policy stopped."""
    return "stopped early" if row.get("stopped_early") else str(row["status"])


class SweepHandle(RunHandle):
    """A sweep by run id. ``wait``/``cancel``/``status`` act on the sweep (cancel stops its children)."""

    def __repr__(self) -> str:
        return f"SweepHandle(run_id={self.run_id!r}, status={self.status!r})"

    def config(self) -> dict[str, Any]:
        """What the sweep was started with (space, metric, goal, limits, policy)."""
        record = self._session.store.get_run(self.run_id)
        data: dict[str, Any] = json.loads((record.run_dir / SWEEP_FILE).read_text())
        return data

    def total_runs(self) -> int:
        """N in "k of N": max_total_runs, or fewer when a grid has fewer combinations."""
        from .sampling import sampling_from_json

        config = self.config()
        size = sampling_from_json(config["sampling"]).size()
        total = int(config["max_total_runs"])
        return total if size is None else min(total, size)

    def children(
        self, sort_by_primary_metric: bool = False, include_retried: bool = False, updated_since: float | None = None
    ) -> list[RunRecord]:
        """The child runs, newest first (or best primary metric first), caught up with their journals.

        A trial run again after ``resume`` replaces the cut-off child unless ``include_retried``.
        ``updated_since``: only those whose record changed after that time (a widget's next poll)."""
        session = self._session
        # one query for all of them; only unfinished ones are caught up with their journals
        found = session.store.list_runs(parent=self.run_id, updated_since=updated_since, limit=None)
        records = [session.refresh(r) for r in found]
        if not include_retried:
            replaced = {r.tags[RETRY_TAG] for r in records if RETRY_TAG in r.tags}
            records = [r for r in records if r.run_id not in replaced]
        if sort_by_primary_metric:
            config = self.config()
            last = self.last_values(records, config["primary_metric"])
            records.sort(key=best_first(last, config["goal"]))
        return records

    def last_values(self, records: Sequence[RunRecord | ChildRow], name: str) -> dict[int, float | None]:
        """Each run's last value of metric ``name`` (by run pk), in one query."""
        return self._session.store.last_values(records, name)

    def best_run(self) -> RunHandle | None:
        """The completed child with the best LAST value of the primary metric (None if none has one)."""
        children = self.children(sort_by_primary_metric=True)
        last = self.last_values(children, self.config()["primary_metric"])
        for record in children:
            value = last.get(record.pk)
            if record.status is RunStatus.COMPLETED and value is not None and value == value:
                return RunHandle(record.run_id, self._session)
        return None

    get_best_run_by_primary_metric = best_run

    def get_children_sorted_by_primary_metric(self) -> list[dict[str, Any]]:
        """Azure v1's name: rows best first."""
        return list(self.table())

    def table(self) -> SweepTable:
        """One row per child, best primary metric first: run_id, status (one of ``RunStatus``; run_status
        is the same), stopped_early (a policy or the time limit stopped it: Canceled), params, metric
        (last value), early_termination (the reason), index. Only its text and HTML say "stopped early".

        Reads each child's status, params and tags only (``RunStore.child_rows``); unfinished
        children are caught up with their journals first, as ``children()`` does."""
        session, config = self._session, self.config()
        name = config["primary_metric"]
        children = session.store.child_rows(self.run_id)
        for child in children:
            if not child.status.is_terminal():
                record = session.refresh(child.run_id)
                child.status, child.tags = record.status, record.tags
        replaced = {c.tags[RETRY_TAG] for c in children if RETRY_TAG in c.tags}
        children = [c for c in children if c.run_id not in replaced]
        last = self.last_values(children, name)
        children.sort(key=best_first(last, config["goal"]))
        rows, params = [], []
        for r in children:
            values = dict(r.params)
            params += [p for p in values if p not in params]
            rows.append(
                {
                    "run_id": r.run_id,
                    "status": r.status.value,
                    "run_status": r.status.value,
                    "stopped_early": stopped_early(r.status.value, r.tags),
                    "params": values,
                    "metric": last.get(r.pk),
                    "early_termination": r.tags.get(TERMINATION_TAG),
                    "index": int(r.tags.get(INDEX_TAG, -1)),
                }
            )
        return SweepTable(rows, name, params)


def best_first(last: dict[int, float | None], goal: str) -> Callable[[RunRecord | ChildRow], tuple[int, float]]:
    """A sort key: the best last value of the primary metric first, runs without one last."""
    sign = -1.0 if goal == "maximize" else 1.0

    def key(run: RunRecord | ChildRow) -> tuple[int, float]:
        value = last.get(run.pk)
        return (1, 0.0) if value is None or value != value else (0, sign * value)

    return key


def get_sweep(run_id: str, *, store: str | os.PathLike[str] | None = None) -> SweepHandle:
    """Re-attach to a sweep by id (or a unique prefix of it)."""
    from ..session import open_session

    session = open_session(store)
    record = session.store.get_run(run_id)
    if record.target_type != "sweep":
        raise LaunchbayError(f"Run {record.run_id} is not a sweep; open it with launchbay.get_run().")
    return SweepHandle(record.run_id, session)


def resume_sweep(run_id: str, *, store: str | os.PathLike[str] | None = None) -> SweepHandle:
    """Continue a sweep whose controller died: finished trials stay, running ones are adopted
    (their progress and side effects are not repeated), only those whose runner died run again."""
    from .controller import start_controller

    handle = get_sweep(run_id, store=store)
    session = handle.session
    record = session.refresh(handle.run_id)
    if not record.status.is_terminal():
        raise LaunchbayError(f"Sweep {record.run_id} is still {record.status.value}; nothing to resume.")
    message = str((record.error or {}).get("message") or "")
    died = any(m in message for m in ("died", "No heartbeat", "The sweep controller stopped"))
    if record.status is not RunStatus.FAILED or not died:
        raise LaunchbayError(
            f"Sweep {record.run_id} ended {record.status.value} ({message or 'normally'}); only a sweep whose"
            " controller died can be resumed. Start a new sweep instead."
        )
    config_file = record.run_dir / SWEEP_FILE  # the time already spent counts against max_duration
    config = json.loads(config_file.read_text())
    ran = (record.heartbeat or record.ended or time.time()) - (record.started or record.created)
    config["elapsed_s"] = float(config.get("elapsed_s") or 0) + max(0.0, ran)
    config_file.write_text(json.dumps(config, indent=1))
    state = {k: v for k, v in record.target_state.items() if k not in ("runner_pid", "runner_pgid")}
    # the new controller records its own pid and heartbeats
    if not session.store.reopen_run(record.pk, heartbeat=time.time(), target_state=state):
        raise LaunchbayError(f"Sweep {record.run_id} changed meanwhile; nothing to resume.")
    start_controller(session.store.uri, session.store.get_run(record.run_id), resume=True)
    return handle
