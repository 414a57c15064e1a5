"""The rows of schedules: a named launchbay command line, its rule, its next due time, and its fires.

A fire is claimed before its command runs: ``claim_fire`` moves ``next_fire`` on only if it still
holds the due time the caller saw (compare and set) and records the fire, unique per due time, in the
same transaction. So two supervisors, or one killed and its heir, never fire the same due time twice.
"""

from __future__ import annotations

import json
import time

from .records import Schedule, ScheduleFire
from .sqlindex import SqlIndex

_SCHEDULE = "name, rule, command, cwd, paused, catch_up, next_fire, created, seen"
_FIRE = "id, name, due, fired, outcome, run_id, message"


class ScheduleRows(SqlIndex):
    """Adding, changing and firing schedules; each decision one transaction."""

    def add_schedule(self, schedule: Schedule) -> bool:
        """Record a new schedule; False (nothing written) when one has that name."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM schedules WHERE name=?", (schedule.name,)).fetchone() is not None:
                return False
            db.execute(
                f"INSERT INTO schedules({_SCHEDULE}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    schedule.name,
                    schedule.rule,
                    json.dumps(schedule.command),
                    schedule.cwd,
                    int(schedule.paused),
                    int(schedule.catch_up),
                    schedule.next_fire,
                    schedule.created or time.time(),
                    schedule.seen,
                ),
            )
            return True

    def schedules(self) -> list[Schedule]:
        return [_schedule(r) for r in self.db.execute(f"SELECT {_SCHEDULE} FROM schedules ORDER BY name")]

    def schedule(self, name: str) -> Schedule | None:
        row = self.db.execute(f"SELECT {_SCHEDULE} FROM schedules WHERE name=?", (name,)).fetchone()
        return None if row is None else _schedule(row)

    def update_schedule(self, name: str, *, paused: bool | None = None, next_fire: float | None = None) -> bool:
        """Pause or resume a schedule, or set when it is next due; False when there is none of that name."""
        sets: list[str] = []
        args: list[float] = []
        if paused is not None:
            sets, args = [*sets, "paused=?"], [*args, int(paused)]
        if next_fire is not None:
            sets, args = [*sets, "next_fire=?"], [*args, float(next_fire)]
        if not sets:
            return self.schedule(name) is not None
        with self.transaction() as db:
            return bool(db.execute(f"UPDATE schedules SET {', '.join(sets)} WHERE name=?", (*args, name)).rowcount)

    def remove_schedule(self, name: str) -> bool:
        """Forget a schedule (its fires stay, with the runs they made); False when there is none."""
        with self.transaction() as db:
            return bool(db.execute("DELETE FROM schedules WHERE name=?", (name,)).rowcount)

    def claim_fire(
        self, name: str, due: float, next_fire: float, outcome: str, message: str | None = None
    ) -> int | None:
        """Take the fire of ``name`` due at ``due`` (if ``next_fire`` in the store is still ``due``): move it
        on to ``next_fire`` and record the fire with ``outcome``; its id, or None when another took it."""
        with self.transaction() as db:
            moved = db.execute(
                "UPDATE schedules SET next_fire=? WHERE name=? AND next_fire=? AND paused=0", (next_fire, name, due)
            ).rowcount
            if not moved:
                return None
            return db.dialect.insert_id(
                db,
                "INSERT INTO schedule_fires(name, due, fired, outcome, message) VALUES (?,?,?,?,?)",
                (name, due, time.time(), outcome, message),
            )

    def claim_change(self, name: str, seen: int, version: int, message: str | None = None) -> int | None:
        """Take the fire of an --on-change schedule for ``version`` (if it still last saw ``seen``); its id,
        or None when another took it."""
        with self.transaction() as db:
            moved = db.execute(
                "UPDATE schedules SET seen=? WHERE name=? AND seen=? AND paused=0", (version, name, seen)
            ).rowcount
            if not moved:
                return None
            return db.dialect.insert_id(
                db,
                "INSERT INTO schedule_fires(name, due, fired, outcome, message) VALUES (?,?,?,?,?)",
                (name, float(version), time.time(), "fired", message),
            )

    def set_fire_run(
        self, fire_id: int, run_id: str | None = None, outcome: str | None = None, message: str | None = None
    ) -> None:
        """What a fire made: its run, or why it made none."""
        with self.transaction() as db:
            if run_id is not None:
                db.execute("UPDATE schedule_fires SET run_id=? WHERE id=? AND run_id IS NULL", (run_id, fire_id))
            if outcome is not None:
                db.execute("UPDATE schedule_fires SET outcome=?, message=? WHERE id=?", (outcome, message, fire_id))

    def schedule_fires(self, name: str, limit: int = 10) -> list[ScheduleFire]:
        """A schedule's last fires, newest first."""
        rows = self.db.execute(
            f"SELECT {_FIRE} FROM schedule_fires WHERE name=? ORDER BY due DESC, id DESC LIMIT ?", (name, int(limit))
        )
        return [ScheduleFire(int(r[0]), str(r[1]), float(r[2]), float(r[3]), str(r[4]), r[5], r[6]) for r in rows]


def _schedule(row: tuple[object, ...]) -> Schedule:
    name, rule, command, cwd, paused, catch_up, next_fire, created, seen = row
    return Schedule(
        str(name),
        str(rule),
        list(json.loads(str(command))),
        str(cwd),
        bool(paused),
        bool(catch_up),
        None if next_fire is None else float(next_fire),  # type: ignore[arg-type]
        float(created),  # type: ignore[arg-type]
        None if seen is None else int(seen),  # type: ignore[call-overload]
    )
