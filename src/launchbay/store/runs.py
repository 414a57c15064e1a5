"""Reading runs: one run by id or prefix, filtered listings, experiments, a sweep's children, records."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import RunNotFoundError
from ..models import RunStatus
from .records import ChildRow, RunRecord, loads
from .sqlindex import SqlIndex

_RUN_COLUMNS = (
    "r.pk, r.run_id, e.name, r.name, r.status, r.target, r.target_type, r.script, r.arguments, "
    "r.snapshot_id, r.environment, r.created, r.started, r.ended, r.updated, r.exit_code, r.error, "
    "r.heartbeat, r.properties, r.spec, r.target_state, r.parent_run_id, r.created_by"
)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_TERMINAL = tuple(s.value for s in RunStatus if s.is_terminal())
_LOOKUP_BELOW = 2_000  # a filter matching at most this many runs is looked up run by run
_MAX_VARIABLES = 30_000  # bound parameters a statement may have (SQLite's default limit is 32,766)


class RunQueries(SqlIndex):
    """The read side of runs; every query a front end, a sweep or ingest needs has a name here."""

    def resolve_run_id(self, ref: str) -> str:
        """An exact run id, or a unique prefix of one."""
        ref = ref.strip()
        row = self.db.execute("SELECT run_id FROM runs WHERE run_id=?", (ref,)).fetchone()
        if row:
            return str(row[0])
        if ref and _SAFE_ID.match(ref):
            rows = self.db.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? LIMIT 2", (ref, ref + "\U0010ffff")
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0][0])
            if len(rows) > 1:
                raise RunNotFoundError(f"{ref!r} matches several runs; give more of the run id.")
        raise RunNotFoundError(
            f"No run {ref!r} in the store at {self.uri}. List runs with `launchbay runs`"
            " (or pass --store / LAUNCHBAY_STORE for another store)."
        )

    def get_run(self, ref: str) -> RunRecord:
        run_id = self.resolve_run_id(ref)
        row = self.db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id=r.experiment_id WHERE r.run_id=?", (run_id,)
        ).fetchone()
        record = self._record(row)
        self._attach_details([record])
        return record

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        return RunRecord(
            pk=row[0],
            run_id=row[1],
            experiment=row[2],
            name=row[3],
            status=RunStatus(row[4]),
            target=row[5],
            target_type=row[6],
            script=row[7],
            arguments=loads(row[8], []),
            snapshot_id=row[9],
            environment=row[10],
            created=row[11],
            started=row[12],
            ended=row[13],
            updated=row[14],
            exit_code=row[15],
            error=loads(row[16], None),
            heartbeat=row[17],
            properties=loads(row[18], {}),
            spec=loads(row[19], {}),
            target_state=loads(row[20], {}),
            parent_run_id=row[21],
            run_dir=self.runs_dir / row[1],
            created_by=row[22],
        )

    def _attach_details(self, records: list[RunRecord]) -> None:
        if not records:
            return
        by_pk = {r.pk: r for r in records}
        marks = ",".join("?" * len(by_pk))
        keys = list(by_pk)
        for pk, key, value in self.db.execute(f"SELECT run_pk, key, value FROM tags WHERE run_pk IN ({marks})", keys):
            by_pk[pk].tags[key] = value
        for pk, key, value in self.db.execute(f"SELECT run_pk, key, value FROM params WHERE run_pk IN ({marks})", keys):
            by_pk[pk].params[key] = value
        snaps = {r.snapshot_id for r in records if r.snapshot_id}
        if snaps:
            smarks = ",".join("?" * len(snaps))
            info = {
                sid: {"id": sid, "files": files, "bytes": size}
                for sid, files, size in self.db.execute(
                    f"SELECT id, files, bytes FROM snapshots WHERE id IN ({smarks})", list(snaps)
                )
            }
            for r in records:
                r.snapshot = info.get(r.snapshot_id or "")
        for pk, name, last, step in self.db.execute(
            f"SELECT run_pk, name, last, last_step FROM series WHERE run_pk IN ({marks})"
            " AND name NOT LIKE 'system/%' ORDER BY id",  # the runner's samples are never a run's headline
            keys,
        ):
            if by_pk[pk].primary_metric is None:
                by_pk[pk].primary_metric = {"name": name, "value": last, "step": step}

    def list_runs(
        self,
        *,
        experiment: str | None = None,
        status: str | None = None,
        text: str | None = None,
        param: tuple[str, Any] | None = None,
        metric_below: tuple[str, float] | None = None,
        metric_above: tuple[str, float] | None = None,
        updated_since: float | None = None,
        parent: str | None = None,
        user: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        details: bool = True,
    ) -> list[RunRecord]:
        """Runs newest first, filtered in SQL (``user``: those ``created_by`` that name).

        Two steps, so that a page of a 100,000-run store reads only that page's run rows: the
        matching run pks, in order, from indexes alone, then those runs' rows. A filter by a param
        or a metric is planned by how many runs each one matches (``_pk_terms``)."""
        where, args = self._filters(experiment, status, text, None, None, None, updated_since, parent, user)
        if param:
            param = (param[0], self.db.dialect.param_value(param[1]))
        terms, term_args = self._pk_terms(param, metric_below, metric_above, paged=limit is not None)
        where, args = where + terms, args + term_args
        sql = "SELECT r.pk FROM runs r"
        if experiment or text:
            sql += " JOIN experiments e ON e.id=r.experiment_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created DESC, r.pk DESC"
        if limit is not None or offset:
            sql += self.db.dialect.page(limit, offset)
        pks = [row[0] for row in self.db.execute(sql, args)]
        by_pk: dict[int, RunRecord] = {}
        for first in range(0, len(pks), _MAX_VARIABLES):
            part = pks[first : first + _MAX_VARIABLES]
            rows = self.db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id=r.experiment_id"
                f" WHERE r.pk IN ({','.join('?' * len(part))})",
                part,
            )
            by_pk.update((row[0], self._record(row)) for row in rows)
        records = [by_pk[pk] for pk in pks if pk in by_pk]
        if details:
            for first in range(0, len(records), _MAX_VARIABLES):
                self._attach_details(records[first : first + _MAX_VARIABLES])
        return records

    def _pk_terms(
        self,
        param: tuple[str, Any] | None,
        metric_below: tuple[str, float] | None,
        metric_above: tuple[str, float] | None,
        paged: bool,
    ) -> tuple[list[str], list[Any]]:
        """WHERE terms for the param and metric filters, planned by how many runs each matches
        (counted on covering indexes, a few ms): the rarest one, when it matches few, is looked up
        run by run and the others probed for those runs only; otherwise runs are read newest first
        from ``runs_newest`` and each is probed, one by one for a page (it stops at the page's end),
        against whole lists when all are wanted."""
        lists: list[tuple[str, str, list[Any]]] = []  # (pk list, probe of one run, args)
        if param:
            pk_list = "SELECT run_pk FROM params WHERE key = ? AND value = ?"
            lists.append(
                (pk_list, "SELECT 1 FROM params p WHERE p.run_pk = r.pk AND p.key = ? AND p.value = ?", [*param])
            )
        for bound, op in ((metric_below, "<"), (metric_above, ">")):
            if bound:
                pk_list = f"SELECT run_pk FROM series WHERE name = ? AND last {op} ?"
                probe = (  # the covering index, not the table: SQLite would pick UNIQUE(run_pk, name)'s
                    f"SELECT 1 FROM {self.db.dialect.indexed_by('series s', 'series_run_name_last')}"
                    f" WHERE s.run_pk = r.pk AND s.name = ? AND s.last {op} ?"
                )
                lists.append((pk_list, probe, [*bound]))
        if not lists:
            return [], []
        sizes = [  # counted up to the threshold only: a common value is not counted through
            self.db.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT {_LOOKUP_BELOW + 1}) AS found", a).fetchone()[0]
            for sql, _, a in lists
        ]
        rarest = min(range(len(lists)), key=sizes.__getitem__)
        terms, args = [], []
        for i, (pk_list, probe, a) in enumerate(lists):
            if sizes[rarest] <= _LOOKUP_BELOW and i == rarest:
                terms.append(f"r.pk IN ({pk_list})")
            elif paged or sizes[rarest] <= _LOOKUP_BELOW:
                terms.append(f"EXISTS ({probe})")
            else:
                terms.append(f"{self.db.dialect.not_indexed('r.pk')} IN ({pk_list})")
            args.extend(a)
        return terms, args

    def count_runs(self, **filters: Any) -> int:
        where, args = self._filters(**filters)
        sql = "SELECT COUNT(*) FROM runs r"
        if filters.get("experiment") or filters.get("text"):
            sql += " JOIN experiments e ON e.id=r.experiment_id"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return int(self.db.execute(sql, args).fetchone()[0])

    def _filters(
        self,
        experiment: str | None = None,
        status: str | None = None,
        text: str | None = None,
        param: tuple[str, Any] | None = None,
        metric_below: tuple[str, float] | None = None,
        metric_above: tuple[str, float] | None = None,
        updated_since: float | None = None,
        parent: str | None = None,
        user: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if experiment:
            where.append("e.name = ?")
            args.append(experiment)
        if status:
            where.append("r.status = ?")
            args.append(RunStatus.parse(status).value)
        dialect = self.db.dialect
        if text:
            like = dialect.like
            where.append(
                f"(r.run_id {like} ? OR r.name {like} ? OR r.script {like} ? OR e.name {like} ? OR r.target {like} ?"
                f" OR r.pk IN (SELECT run_pk FROM tags WHERE key {like} ? OR value {like} ?)"
                f" OR r.pk IN (SELECT run_pk FROM params WHERE key {like} ? OR {dialect.as_text('value')} {like} ?))"
            )
            args.extend([f"%{text}%"] * 9)
        if param:
            where.append("r.pk IN (SELECT run_pk FROM params WHERE key = ? AND value = ?)")
            args.extend((param[0], dialect.param_value(param[1])))
        if metric_below:
            where.append("r.pk IN (SELECT run_pk FROM series WHERE name = ? AND last < ?)")
            args.extend(metric_below)
        if metric_above:
            where.append("r.pk IN (SELECT run_pk FROM series WHERE name = ? AND last > ?)")
            args.extend(metric_above)
        if updated_since is not None:
            where.append("r.updated > ?")
            args.append(updated_since)
        if parent is not None:  # a sweep's trials
            where.append("r.parent_run_id = ?")
            args.append(parent)
        if user is not None:
            where.append("r.created_by = ?")
            args.append(user)
        return where, args

    def statuses(self, run_ids: list[str]) -> dict[str, RunStatus]:
        """The recorded status of each of these runs, in one query (a sweep controller asks often)."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        return {
            run_id: RunStatus(status)
            for run_id, status in self.db.execute(f"SELECT run_id, status FROM runs WHERE run_id IN ({marks})", run_ids)
        }

    def experiments(self) -> list[tuple[str, int]]:
        return [
            (name, count)
            for name, count, _ in self.db.execute(
                # per experiment, each from the runs_experiment index (a join and GROUP BY took 4x longer)
                "SELECT e.name, (SELECT COUNT(*) FROM runs WHERE experiment_id=e.id),"
                " (SELECT MAX(created) FROM runs WHERE experiment_id=e.id) AS newest"
                " FROM experiments e ORDER BY newest DESC"
            )
        ]

    def users(self) -> list[tuple[str, int]]:
        return [
            (str(name), int(count))
            for name, count in self.db.execute(
                "SELECT created_by, COUNT(*) AS n FROM runs WHERE created_by IS NOT NULL"
                " GROUP BY created_by ORDER BY n DESC, created_by"
            )
        ]

    def children(self, parent_run_id: str, *, unfinished: bool = False, newest_first: bool = False) -> list[str]:
        """The ids of a run's child runs (a sweep's trials): oldest first, or newest first.

        ``unfinished``: only those not in a terminal status yet."""
        sql, args = "SELECT run_id FROM runs WHERE parent_run_id=?", [parent_run_id]
        if unfinished:
            sql += f" AND status NOT IN ({','.join('?' * len(_TERMINAL))})"
            args.extend(_TERMINAL)
        sql += " ORDER BY created DESC, pk DESC" if newest_first else " ORDER BY pk"
        return [str(row[0]) for row in self.db.execute(sql, args)]

    def child_rows(self, parent_run_id: str) -> list[ChildRow]:
        """A sweep's children for its table, oldest first: status, params and tags only (a
        1,000-trial table reads in a few ms, not the ~80 ms of 1,000 whole records)."""
        rows = self.db.execute(
            f"SELECT pk, run_id, status, {self.db.dialect.json_field('spec', 'params')} FROM runs"
            " WHERE parent_run_id=? ORDER BY pk",
            (parent_run_id,),
        ).fetchall()
        children = {
            pk: ChildRow(pk, run_id, RunStatus(status), loads(params, {}), {}) for pk, run_id, status, params in rows
        }
        for pk, key, value in self.db.execute(
            "SELECT run_pk, key, value FROM tags WHERE run_pk IN (SELECT pk FROM runs WHERE parent_run_id=?)",
            (parent_run_id,),
        ):
            children[pk].tags[key] = value
        missing = [pk for pk, child in children.items() if not child.params]  # older children: the params table
        for first in range(0, len(missing), 900):
            part = missing[first : first + 900]
            for pk, key, value in self.db.execute(
                f"SELECT run_pk, key, value FROM params WHERE run_pk IN ({','.join('?' * len(part))})", part
            ):
                children[pk].params[key] = value
        return list(children.values())

    def journal_position(self, pk: int) -> tuple[dict[str, int], float | None, RunStatus]:
        """How far ingest has read the run's journal files, its last heartbeat and its status."""
        offsets = dict(self.db.execute("SELECT file, pos FROM offsets WHERE run_pk=?", (pk,)).fetchall())
        row = self.db.execute("SELECT heartbeat, status FROM runs WHERE pk=?", (pk,)).fetchone()
        if row is None:
            raise RunNotFoundError(f"No run with key {pk} in the store (was it removed?).")
        return offsets, row[0], RunStatus(row[1])

    # -- records (what the run logged besides metric points) --------------------------
    def read_records(self, run: RunRecord, kind: str | None = None) -> list[tuple[str, str, Any, float]]:
        sql = "SELECT kind, name, payload, ts FROM records WHERE run_pk=?"
        args: list[Any] = [run.pk]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        return [(k, n, json.loads(p), ts) for k, n, p, ts in self.db.execute(sql + " ORDER BY id", args)]

    def has_records(self, run_id: str, kind: str) -> bool:
        """Whether the run logged any record of ``kind`` (cheap: one indexed lookup)."""
        return (
            self.db.execute(
                "SELECT 1 FROM records WHERE run_pk=(SELECT pk FROM runs WHERE run_id=?) AND kind=? LIMIT 1",
                (run_id, kind),
            ).fetchone()
            is not None
        )

    def last_record_id(self, run: RunRecord) -> int:
        """The id of the run's newest record (0 when none): changes whenever the run logs one."""
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM records WHERE run_pk=?", (run.pk,)).fetchone()
        return int(row[0])

    # -- snapshots --------------------------------------------------------------------
    def used_snapshot_ids(self) -> list[str]:
        """Every snapshot a run in the index refers to."""
        return [
            str(sid)
            for (sid,) in self.db.execute("SELECT DISTINCT snapshot_id FROM runs WHERE snapshot_id IS NOT NULL")
        ]

    def unused_snapshot_ids(self) -> list[str]:
        """Snapshots recorded in the index that no run refers to any more."""
        return [
            str(sid)
            for (sid,) in self.db.execute(
                "SELECT id FROM snapshots WHERE id NOT IN (SELECT snapshot_id FROM runs WHERE snapshot_id IS NOT NULL)"
            )
        ]
