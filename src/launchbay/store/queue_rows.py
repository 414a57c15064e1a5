"""The rows of run queues: which runs wait for a slot of their target or experiment, and in what order.

A run of a target (or experiment) with ``max_concurrent_runs`` gets one ``queue`` row when it is
recorded. The row is 'waiting' while the run is Queued behind others, 'claimed' once a process took a
slot for it and is starting it, 'started' once its target has it. A claimed or started row of an
unfinished run holds a slot, so a slot frees the moment the run's end is recorded (or its row goes
with a launch that failed). Every method that changes the queue first updates the one ``queue_lock``
row inside its transaction: on SQLite the write lock already orders writers, on PostgreSQL that row's
lock does, so two claims never both see the same free slot.
"""

from __future__ import annotations

import time
from typing import Any

from ..models import RunStatus
from .dialect import Db
from .records import QueueEntry
from .sqlindex import SqlIndex

_TERMINAL = tuple(s.value for s in RunStatus if s.is_terminal())
_UNFINISHED = f"r.status NOT IN ({', '.join('?' * len(_TERMINAL))})"
_FIELDS = (
    "run_id", "target", "experiment", "target_limit", "experiment_limit", "priority", "seq", "submitted", "state",
)  # fmt: skip
_COLUMNS = "r.run_id, " + ", ".join(f"q.{f}" for f in _FIELDS[1:])


class QueueRows(SqlIndex):
    """Entering, leaving and ordering run queues; one transaction per decision."""

    def _lock_queue(self, db: Db) -> None:
        db.execute("UPDATE queue_lock SET n=n+1 WHERE id=1")

    def enqueue(
        self,
        pk: int,
        *,
        target: str,
        experiment: str,
        target_limit: int | None,
        experiment_limit: int | None,
        priority: int = 0,
        claimer: str,
    ) -> bool:
        """Put run ``pk`` in its queue; True when it took a free slot at once (its row is then 'claimed'
        by ``claimer``, which starts it), False when it waits behind others or for a slot."""
        now = time.time()
        with self.transaction() as db:
            self._lock_queue(db)
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM queue").fetchone()
            db.execute(
                "INSERT INTO queue(run_pk, target, experiment, target_limit, experiment_limit, priority, seq,"
                " submitted, state) VALUES (?,?,?,?,?,?,?,?,'waiting')",
                (pk, target, experiment, target_limit, experiment_limit, int(priority), int(seq), now),
            )
            return pk in self._claim(db, claimer, only=pk)

    def claim_queued(self, claimer: str) -> list[str]:
        """Take every free slot for the runs next in line (in order: priority, then submit order); the
        runs whose rows are now 'claimed' by ``claimer``, which must start them (or fail them)."""
        with self.transaction() as db:
            self._lock_queue(db)
            pks = self._claim(db, claimer)
            if not pks:
                return []
            marks = ", ".join("?" * len(pks))
            rows = db.execute(f"SELECT run_id FROM runs WHERE pk IN ({marks}) ORDER BY pk", pks).fetchall()
            return [str(r[0]) for r in rows]

    def _claim(self, db: Db, claimer: str, only: int | None = None) -> list[int]:
        # rows of runs that ended or are gone (a failed launch deletes its run) hold nothing any more
        db.execute(
            "DELETE FROM queue WHERE run_pk NOT IN (SELECT r.pk FROM runs r JOIN queue q ON q.run_pk=r.pk"
            f" WHERE {_UNFINISHED})",
            _TERMINAL,
        )
        held_t: dict[str, int] = {}
        held_e: dict[str, int] = {}
        for target, experiment in db.execute("SELECT target, experiment FROM queue WHERE state!='waiting'"):
            held_t[target] = held_t.get(target, 0) + 1
            held_e[experiment] = held_e.get(experiment, 0) + 1
        waiting = db.execute(
            "SELECT run_pk, target, experiment, target_limit, experiment_limit FROM queue WHERE state='waiting'"
            " ORDER BY priority DESC, seq"
        ).fetchall()
        claimed: list[int] = []
        blocked_t: set[str] = set()
        blocked_e: set[str] = set()
        for pk, target, experiment, t_limit, e_limit in waiting:
            fits_t = t_limit is None or (target not in blocked_t and held_t.get(target, 0) < t_limit)
            fits_e = e_limit is None or (experiment not in blocked_e and held_e.get(experiment, 0) < e_limit)
            if not (fits_t and fits_e):
                if t_limit is not None:
                    blocked_t.add(target)  # nobody behind it in its queue goes first
                if e_limit is not None:
                    blocked_e.add(experiment)
                if only == pk:
                    break
                continue
            if only is not None and pk != only:
                # someone ahead could start but this submit is not theirs to start: the supervisor does
                blocked_t.add(target)
                blocked_e.add(experiment)
                continue
            held_t[target] = held_t.get(target, 0) + 1
            held_e[experiment] = held_e.get(experiment, 0) + 1
            claimed.append(int(pk))
        if claimed:
            marks = ", ".join("?" * len(claimed))
            db.execute(
                f"UPDATE queue SET state='claimed', claimer=?, claimed=? WHERE run_pk IN ({marks})",
                (claimer, time.time(), *claimed),
            )
        return claimed

    def queue_started(self, pk: int) -> None:
        """Run ``pk``'s target has it: its row holds the slot until the run ends."""
        with self.transaction() as db:
            db.execute("UPDATE queue SET state='started' WHERE run_pk=?", (pk,))

    def dequeue(self, pk: int) -> bool:
        """Take a waiting run out of its queue (a cancel); False when it is not waiting (it is starting or started)."""
        with self.transaction() as db:
            self._lock_queue(db)
            return bool(db.execute("DELETE FROM queue WHERE run_pk=? AND state='waiting'", (pk,)).rowcount)

    def release_claims(self, claimers: list[str]) -> int:
        """Put runs these (dead) claimers had claimed but not started back in line, at their old place."""
        if not claimers:
            return 0
        with self.transaction() as db:
            self._lock_queue(db)
            marks = ", ".join("?" * len(claimers))
            return int(
                db.execute(
                    f"UPDATE queue SET state='waiting', claimer=NULL, claimed=NULL WHERE state='claimed'"
                    f" AND claimer IN ({marks})",
                    claimers,
                ).rowcount
            )

    def queue_claimers(self) -> list[str]:
        """Who holds claims that are not started yet."""
        rows = self.db.execute("SELECT DISTINCT claimer FROM queue WHERE state='claimed'").fetchall()
        return [str(r[0]) for r in rows if r[0]]

    def move_to_top(self, pk: int) -> bool:
        """Run ``pk`` goes first in its queue (highest priority there, earliest place); False if not waiting."""
        with self.transaction() as db:
            self._lock_queue(db)
            sql = "SELECT target, experiment FROM queue WHERE run_pk=? AND state='waiting'"
            row = db.execute(sql, (pk,)).fetchone()
            if row is None:
                return False
            top = db.execute(
                "SELECT COALESCE(MAX(priority), 0), COALESCE(MIN(seq), 1) FROM queue WHERE state='waiting'"
                " AND (target=? OR experiment=?)",
                (row[0], row[1]),
            ).fetchone()
            db.execute("UPDATE queue SET priority=?, seq=? WHERE run_pk=?", (int(top[0]), int(top[1]) - 1, pk))
            return True

    def queue_entries(self, target: str | None = None, *, waiting_only: bool = True) -> list[QueueEntry]:
        """The queue in the order its runs will start (positions counted per queue, 1 = next)."""
        sql = f"SELECT {_COLUMNS} FROM queue q JOIN runs r ON r.pk=q.run_pk WHERE {_UNFINISHED}"
        args: list[Any] = list(_TERMINAL)
        if waiting_only:
            sql += " AND q.state='waiting'"
        rows = self.db.execute(sql + " ORDER BY q.priority DESC, q.seq", args).fetchall()
        counts: dict[str, int] = {}
        entries = []
        for row in rows:
            run_id, pool_target, experiment, t_limit, e_limit, priority, seq, submitted, state = row
            pool = pool_target if t_limit is not None else f"experiment {experiment}"
            place = 0
            if state == "waiting":
                place = counts[pool] = counts.get(pool, 0) + 1
            entries.append(
                QueueEntry(
                    str(run_id), pool_target, experiment, t_limit, e_limit, priority, seq, submitted, state, place
                ),
            )
        if target is not None:
            entries = [e for e in entries if e.target == target]
        return entries

    def queue_positions(self, run_ids: list[str] | None = None) -> dict[str, QueueEntry]:
        """Each waiting run's entry (with its position), by run id; ``run_ids`` narrows what is returned."""
        entries = {e.run_id: e for e in self.queue_entries()}
        if run_ids is not None:
            entries = {r: entries[r] for r in run_ids if r in entries}
        return entries

    def queue_state(self, pk: int) -> str | None:
        """Run ``pk``'s place in a queue: 'waiting', 'claimed', 'started', or None (in none)."""
        row = self.db.execute("SELECT state FROM queue WHERE run_pk=?", (pk,)).fetchone()
        return None if row is None else str(row[0])

    def queue_waiting(self) -> int:
        """How many runs wait in any queue."""
        (n,) = self.db.execute("SELECT COUNT(*) FROM queue WHERE state!='started'").fetchone()
        return int(n)
