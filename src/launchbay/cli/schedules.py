"""``launchbay schedule add|list|show|pause|resume|rm``: command lines the store's supervisor runs by rule."""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any, NoReturn

from ..errors import ConfigError
from .common import print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("schedule",)
ACTIONS = ("add", "list", "show", "pause", "resume", "rm")


def check_command(command: list[str], build_parser: Any) -> list[str]:
    """The launchbay command line after ``--``, parsed as the CLI would parse it, or one line."""
    if command and command[0] == "--":
        command = command[1:]
    if command and command[0] == "launchbay":
        command = command[1:]
    if not command:
        raise ConfigError("Give the launchbay command line to run after --, e.g. `-- submit -t gpu-box train.py`.")
    if command[0] == "schedule":
        raise ConfigError("A schedule runs a submit, sweep or other command line, not `schedule`.")
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            build_parser().parse_args(command)
    except SystemExit:
        last = said.getvalue().strip().splitlines()[-1:] or ["it does not parse"]
        last = [last[0].removeprefix("launchbay: error: ").split(" (choose from")[0]]
        raise ConfigError(f"`launchbay {' '.join(command)}` is not a command launchbay runs: {last[0]}") from None
    return command


class _OneLine(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(
            f"launchbay schedule add: {message} (e.g. --every 15m, or --every=-5m for a value with a dash)."
        )


def _add_options(args: argparse.Namespace, rest: list[str], adding: bool) -> list[str]:
    """``NAME --every 15m [--no-catch-up] -- COMMAND...``: argparse leaves what follows NAME to us."""
    head, tail = (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    options = _OneLine(prog="launchbay schedule add NAME", add_help=False)
    options.add_argument("--every")
    options.add_argument("--cron")
    options.add_argument("--on-change")
    options.add_argument("--no-catch-up", action="store_true")
    options.add_argument("--json", action="store_true")
    found, unknown = options.parse_known_args(head)
    if unknown:
        raise ConfigError(f"`launchbay schedule add` does not take {' '.join(unknown)}; put the command after --.")
    args.every = found.every or args.every
    args.cron = found.cron or args.cron
    args.on_change = found.on_change or args.on_change
    args.no_catch_up = found.no_catch_up or args.no_catch_up
    args.json = found.json or args.json
    if not adding:
        if tail or found.every or found.cron or found.on_change or found.no_catch_up:
            raise ConfigError(f"`launchbay schedule {args.action}` takes a NAME and --json only.")
        return []
    return check_command(tail, args.full_parser)


def cmd_schedule(args: argparse.Namespace) -> int:
    from .. import scheduling as schedules

    if args.action not in ACTIONS:
        raise ConfigError(f"Unknown schedule action {args.action!r}; use one of {', '.join(ACTIONS)}.")
    if args.action != "list" and not args.name:
        raise ConfigError(f"Name the schedule: `launchbay schedule {args.action} NAME`.")
    command = _add_options(args, list(args.argv), adding=args.action == "add")
    session = session_for(args)
    store = session.store
    if args.action != "add" and any(not s.paused for s in store.schedules()):
        from ..queueing import ensure_supervisor

        ensure_supervisor(store)  # a killed (or rebooted-away) supervisor's heir: schedules keep firing
    if args.action == "add":
        made = schedules.add_schedule(
            store,
            args.name,
            command,
            every=args.every,
            cron=args.cron,
            on_change=args.on_change,
            catch_up=not args.no_catch_up,
        )
        if args.json:
            print_json(schedules.schedule_json(store, made))
        else:
            when = (
                f"after dataset version {made.seen}" if made.seen is not None else f"at {schedules.iso(made.next_fire)}"
            )
            print(f"schedule {made.name}: {made.rule}, next {when}")
        return 0
    if args.action == "list":
        rows = [schedules.schedule_json(store, s) for s in store.schedules()]
        if args.json:
            print_json(rows)
            return 0
        if not rows:
            print('No schedules. Add one: launchbay schedule add nightly --cron "0 3 * * *" -- submit train.py')
        for row in rows:
            state = "paused" if row["paused"] else f"next {row['next_fire'] or 'on a new version'}"
            print(f"{row['name']}  {row['rule']}  {state}  launchbay {' '.join(row['command'])}")
        return 0
    schedule = schedules.get_schedule(store, args.name)
    if args.action == "show":
        shown: dict[str, Any] = schedules.schedule_json(store, schedule)
        shown["fires"] = [f.to_dict() for f in store.schedule_fires(schedule.name, 20)]
        if args.json:
            print_json(shown)
            return 0
        print(f"schedule {shown['name']}: {shown['rule']}; launchbay {' '.join(shown['command'])}")
        print(f"  {'paused' if shown['paused'] else 'next ' + str(shown['next_fire'])}; runs in {shown['cwd']}")
        for fire in shown["fires"]:
            print(f"  {fire['due']}  {fire['outcome']:9}  {fire['run_id'] or ''}  {fire['message'] or ''}".rstrip())
        return 0
    if args.action == "pause":
        store.update_schedule(schedule.name, paused=True)
    elif args.action == "resume":
        schedules.resume(store, schedule.name)
    else:
        store.remove_schedule(schedule.name)
    print(f"schedule {schedule.name} {dict(pause='paused', resume='resumed', rm='removed')[args.action]}")
    return 0


def register(sub: Any, add: Any) -> None:
    p = add("schedule", cmd_schedule, "run a launchbay command line by rule (add|list|show|pause|resume|rm)")
    p.add_argument("action", help="add, list, show, pause, resume or rm")
    p.add_argument("name", nargs="?", help="the schedule's name")
    p.add_argument("--every", metavar="DURATION", help="with add: every 30s, 15m, 2h, 1d")
    p.add_argument("--cron", metavar="EXPR", help='with add: a 5-field cron expression (UTC), e.g. "0 3 * * *"')
    p.add_argument("--on-change", metavar="dataset:NAME", help="with add: each new version of that dataset")
    p.add_argument(
        "--no-catch-up", action="store_true", help="with add: a fire missed while nothing ran is skipped, not run late"
    )
    p.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="with add: -- the launchbay command line to run"
    )
