"""``launchbay queue``, ``queue move``, ``supervise``: runs waiting for a slot, and what starts them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import LaunchbayError
from .common import RUN_HELP, print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("queue", "supervise")


def cmd_queue(args: argparse.Namespace) -> int:
    session = session_for(args)
    if args.target == "move":
        return _move(session, args)
    from ..queueing import queue_json, queued_text

    entries = session.store.queue_entries(args.target)
    if args.json:
        print_json([queue_json(e) for e in entries])
        return 0
    if not entries:
        where = f" for {args.target}" if args.target else ""
        print(f"No runs queued{where}.")
        return 0
    rows = [("POS", "RUN", "PRIORITY", "SUBMITTED", "QUEUE")]
    import time

    for e in entries:
        submitted = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.submitted))
        rows.append((str(e.position), e.run_id, str(e.priority), submitted, queued_text(e).split(" for ", 1)[1]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _move(session: Any, args: argparse.Namespace) -> int:
    if not args.run or not args.top:
        raise LaunchbayError("Say which run goes first: `launchbay queue move RUN --top`.")
    run_id = session.store.resolve_run_id(args.run)
    record = session.store.get_run(run_id)
    if not session.store.move_to_top(record.pk):
        raise LaunchbayError(f"Run {run_id} is not waiting in a queue ({record.status.value}); nothing moved.")
    entry = session.store.queue_positions([run_id])[run_id]
    from ..queueing import queued_text

    print(f"{run_id} {queued_text(entry)}")
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    session = session_for(args)
    if args.install:
        from ..queueing import systemd_unit

        sys.stdout.write(systemd_unit(session.store.uri))
        return 0
    from ..queueing import SUPERVISOR_LOCK, supervisor_running
    from ..supervisor import supervise

    if supervisor_running(session.store):
        pid = (session.store.cache_dir / SUPERVISOR_LOCK).read_text().strip()
        print(f"A supervisor already runs for this store (pid {pid}); it starts queued runs and fires schedules.")
        return 0
    uri = session.store.uri
    session.close()
    code = supervise(uri, stay=args.stay)
    if code == 0:
        print("Nothing left to do: no run waits and no schedule is active.")
    return code


def register(sub: Any, add: Any) -> None:
    p = add("queue", cmd_queue, "runs waiting for a slot of a target with max_concurrent_runs, next first")
    p.add_argument("target", nargs="?", help="only this target's queue (or `move` to reorder: queue move RUN --top)")
    p.add_argument("run", nargs="?", help=f"with `move`: the {RUN_HELP}")
    p.add_argument("--top", action="store_true", help="with `move`: the run goes first in its queue")
    p = add("supervise", cmd_supervise, "start queued runs (and fire schedules) here until nothing is left", False)
    p.add_argument("--stay", action="store_true", help="keep running when nothing waits (what a service does)")
    p.add_argument("--install", action="store_true", help="print a systemd user unit that runs this for good")
