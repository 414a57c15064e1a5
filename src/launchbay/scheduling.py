"""Schedules: a launchbay command line (a submit, a sweep, ...) run by rule, fired by the store's supervisor.

``launchbay schedule add nightly --cron "0 3 * * *" -- submit -t gpu-box train.py`` (or ``--every 15m``,
or ``--on-change dataset:raw``: each new version of that dataset) records the schedule in the store; the
supervisor (supervisor.py) stays while an unpaused schedule exists and runs the command when it is due,
from the folder it was added in, as ``python -m launchbay COMMAND``. The run that command makes carries
the tag ``launchbay.schedule = NAME`` and is the fire's run.

A due time is taken before its command runs (``Store.claim_fire``: compare and set, unique per due
time), so a supervisor killed with SIGKILL, and its heir, never fire it twice. A due time found more
than ``MISSED_AFTER_S`` in the past (nothing ran then: the machine was off) fires once, late
('caught-up'), however many were missed, or with ``--no-catch-up`` is recorded 'skipped'.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LAUNCHBAY_SCHEDULE, LAUNCHBAY_SCHEDULE_FIRE, LAUNCHBAY_SCHEDULE_VERSION
from .errors import ConfigError
from .models import iso

if TYPE_CHECKING:
    from .store import Store
    from .store.records import Schedule

SCHEDULE_TAG = "launchbay.schedule"
MISSED_AFTER_S = 60.0  # a due time this far gone when first seen was missed (no supervisor ran then)
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def every_seconds(text: str) -> float:
    found = _EVERY.match(text)
    if not found or float(found.group(1)) <= 0:
        raise ConfigError(f"--every takes a duration > 0 like 30s, 15m, 2h or 1d, not {text!r}.")
    return float(found.group(1)) * _UNITS[found.group(2)]


def check_cron(expression: str) -> None:
    """A 5-field cron expression, or one line naming the field that is wrong."""
    from cronsim import CronSim, CronSimError

    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(
            f"Invalid cron expression {expression!r}: it needs 5 fields (minute hour day-of-month month day-of-week),"
            f' not {len(fields)}; e.g. --cron "0 3 * * *".'
        )
    try:
        CronSim(expression, datetime.now(timezone.utc))
    except CronSimError as exc:
        said = str(exc).lower().replace("-", " ")
        index = next((i for i, f in enumerate(_CRON_FIELDS) if f in said), None)
        where = "" if index is None else f" field {index + 1} ({_CRON_FIELDS[index]}) {fields[index]!r} is wrong"
        hint = 'e.g. --cron "0 3 * * *"'
        raise ConfigError(f"Invalid cron expression {expression!r}:{where or ' ' + str(exc)}; {hint}.") from None


def next_after(rule: str, after: float, anchor: float) -> float:
    """The first due time of ``rule`` strictly after ``after``; ``every`` rules count from ``anchor``."""
    kind, _, value = rule.partition(" ")
    if kind == "every":
        step = every_seconds(value)
        n = int((after - anchor) // step) + 1
        return anchor + max(n, 1) * step
    from cronsim import CronSim

    start = datetime.fromtimestamp(after, timezone.utc)
    found: datetime = next(CronSim(value, start))
    due = found.timestamp()
    return due if due > after else next(CronSim(value, found)).timestamp()


def add_schedule(
    store: Store,
    name: str,
    command: list[str],
    *,
    every: str | None = None,
    cron: str | None = None,
    on_change: str | None = None,
    catch_up: bool = True,
    cwd: str | os.PathLike[str] | None = None,
    paused: bool = False,
) -> Schedule:
    """Check everything first (one line, nothing written), then record the schedule and make sure the
    supervisor runs."""
    from .store.records import Schedule

    if not _NAME.match(name):
        raise ConfigError(f"A schedule name is letters, digits, '.', '_' or '-' (up to 64), not {name!r}.")
    if sum(x is not None for x in (every, cron, on_change)) != 1:
        raise ConfigError(
            'Say when it runs: --every 15m, --cron "0 3 * * *" or --on-change dataset:NAME (one of them).'
        )
    seen = None
    if on_change is not None:
        dataset = _watched(on_change)
        latest = store.dataset_version(dataset)
        if latest is None:
            known = ", ".join(sorted({v.name for v in store.dataset_versions()})) or "none yet"
            raise ConfigError(
                f"No dataset {dataset!r} to watch (datasets: {known}); add one: `launchbay data add {dataset} PATH`."
            )
        rule, seen = f"on-change dataset:{dataset}", latest.version  # new versions from now on fire it
    elif every is not None:
        every_seconds(every)
        rule = f"every {every.strip()}"
    else:
        assert cron is not None
        check_cron(cron)
        rule = f"cron {' '.join(cron.split())}"
    if not command:
        raise ConfigError("Give the launchbay command line to run after --, e.g. `-- submit -t gpu-box train.py`.")
    if store.schedule(name) is not None:
        raise ConfigError(f"A schedule named {name!r} exists; pick another name or `launchbay schedule rm {name}` it.")
    now = time.time()
    due = None if seen is not None else next_after(rule, now, now)
    schedule = Schedule(name, rule, command, str(Path(cwd or Path.cwd()).resolve()), paused, catch_up, due, now, seen)
    if not store.add_schedule(schedule):
        raise ConfigError(f"A schedule named {name!r} exists; pick another name or `launchbay schedule rm {name}` it.")
    from .queueing import ensure_supervisor

    ensure_supervisor(store)
    return schedule


def _watched(on_change: str) -> str:
    kind, _, name = on_change.partition(":")
    if kind != "dataset" or not name:
        raise ConfigError(f"--on-change takes dataset:NAME (a dataset of `launchbay data list`), not {on_change!r}.")
    return name


def get_schedule(store: Store, name: str) -> Schedule:
    found = store.schedule(name)
    if found is None:
        known = ", ".join(s.name for s in store.schedules()) or "none yet"
        raise ConfigError(f"No schedule named {name!r} (schedules: {known}); see `launchbay schedule list`.")
    return found


def resume(store: Store, name: str) -> None:
    """Unpause: the next due time counts from now (what was due while paused is not caught up)."""
    schedule = get_schedule(store, name)
    now = time.time()
    due = None if schedule.seen is not None else next_after(schedule.rule, now, schedule.created)
    store.update_schedule(name, paused=False, next_fire=due)
    from .queueing import ensure_supervisor

    ensure_supervisor(store)


def schedule_json(store: Store, schedule: Schedule, fires: int = 5) -> dict[str, Any]:
    past = store.schedule_fires(schedule.name, fires)
    return {
        "name": schedule.name,
        "rule": schedule.rule,
        "command": schedule.command,
        "paused": schedule.paused,
        "next_fire": None if schedule.paused else iso(schedule.next_fire),
        "last_runs": [f.run_id for f in past if f.run_id],
        "catch_up": schedule.catch_up,
        "watching": None if schedule.seen is None else {"version_seen": schedule.seen},
        "cwd": schedule.cwd,
    }


class Firer:
    """The supervisor's part for schedules: take what is due, start its command, note the run it made."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.children: list[tuple[subprocess.Popen[bytes], int]] = []

    def active(self) -> bool:
        """Is anything left to do: an unpaused schedule, or a command still running?"""
        self._reap()
        return bool(self.children) or any(not s.paused for s in self.store.schedules())

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for schedule in self.store.schedules():
            if schedule.seen is not None and not schedule.paused:
                self._on_change(schedule)
                continue
            due = schedule.next_fire
            if schedule.paused or due is None or due > now:
                continue
            following = next_after(schedule.rule, now, schedule.created)
            missed = now - due > MISSED_AFTER_S
            message: str | None = None
            if missed and not schedule.catch_up:
                message = f"missed at {iso(due)} (nothing ran then); skipped (--no-catch-up)"
                self.store.claim_fire(schedule.name, due, following, "skipped", message)
                continue
            outcome = "caught-up" if missed else "fired"
            if missed:
                message = f"missed at {iso(due)}, run once at the next start"
            fire = self.store.claim_fire(schedule.name, due, following, outcome, message)
            if fire is not None:
                self._start(schedule, fire)
        self._reap()

    def _on_change(self, schedule: Schedule) -> None:
        """A new version of the watched dataset fires it once (several new at once: once, for the newest)."""
        assert schedule.seen is not None
        dataset = schedule.rule.partition("dataset:")[2]
        latest = self.store.dataset_version(dataset)
        if latest is None or latest.version <= schedule.seen:
            return
        message = f"dataset {dataset} version {latest.version}"
        if latest.version > schedule.seen + 1:
            message += f" (versions {schedule.seen + 1}-{latest.version} came since the last fire)"
        fire = self.store.claim_change(schedule.name, schedule.seen, latest.version, message)
        if fire is not None:
            self._start(schedule, fire, {LAUNCHBAY_SCHEDULE_VERSION.name: f"{dataset}:{latest.version}"})

    def _start(self, schedule: Schedule, fire: int, extra: dict[str, str] | None = None) -> None:
        from .targets.local import with_launchbay_path

        logs = self.store.cache_dir / "schedules"
        logs.mkdir(parents=True, exist_ok=True)
        env = with_launchbay_path({**os.environ, "LAUNCHBAY_STORE": self.store.uri})
        env[LAUNCHBAY_SCHEDULE.name] = str(schedule.name)
        env[LAUNCHBAY_SCHEDULE_FIRE.name] = str(fire)
        env.update(extra or {})
        try:
            with open(logs / f"{schedule.name}.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "launchbay", *schedule.command],
                    cwd=schedule.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
        except OSError as exc:
            self.store.set_fire_run(fire, outcome="failed", message=f"could not start the command: {exc}")
            return
        self.children.append((proc, fire))

    def _reap(self) -> None:
        left = []
        for proc, fire in self.children:
            code = proc.poll()
            if code is None:
                left.append((proc, fire))
            elif code != 0:
                self.store.set_fire_run(fire, outcome="failed", message=f"the command exited with {code}")
        self.children = left
