"""``launchbay runs``, ``show``, ``logs``, ``metrics``, ``cancel``, ``files``, ``download``: one run at a time."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .common import RUN_HELP, duration, print_json, run_handle
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("runs", "show", "logs", "metrics", "cancel", "files", "download")


def cmd_runs(args: argparse.Namespace) -> int:
    from ..models import shown_status

    session = session_for(args)
    if args.parent:
        if session.store.get_run(session.store.resolve_run_id(args.parent)).target_type == "pipeline":
            from .pipelines import print_steps

            return print_steps(session, args.parent, args.json)
        from .sweeps import print_children

        return print_children(session, args.parent, args.json)
    from ..config import user_name

    user = user_name(session.config) if args.mine else args.user
    records = session.runs(experiment=args.experiment, status=args.status, limit=args.limit, user=user)
    queued = session.store.queue_positions([r.run_id for r in records if r.status.value == "Queued"])
    if args.json:
        print_json([{**r.to_dict(), "queue_position": _position(queued, r.run_id)} for r in records])
        return 0
    if not records:
        print("No runs yet. Submit one with `launchbay submit script.py`.")
        return 0
    rows = [("RUN", "NAME", "EXPERIMENT", "USER", "STATUS", "TARGET", "STARTED", "DURATION", "METRIC")]
    for r in records:
        metric = ""
        if r.primary_metric:
            metric = f"{r.primary_metric['name']}={r.primary_metric['value']:.4g}"
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started or r.created))
        status = shown_status(r.status.value, r.tags)
        if r.run_id in queued:
            from ..queueing import queued_text

            status = queued_text(queued[r.run_id])
        if r.status_detail:  # what a full disk kept out of the run
            status += f" — {r.status_detail}"
        who = r.created_by or ""
        rows.append(
            (r.run_id, r.name or "", r.experiment, who, status, r.target, started, duration(r.duration_s), metric)
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _position(queued: dict[str, Any], run_id: str) -> int | None:
    """A waiting run's place in its queue (1 = next), else None."""
    entry = queued.get(run_id)
    return None if entry is None else int(entry.position)


def cmd_show(args: argparse.Namespace) -> int:
    handle = run_handle(args)
    details = handle.get_details()
    if args.json:
        print_json(details)
        return 0
    from .show import show_text

    print(show_text(details))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    handle = run_handle(args)
    if args.rank is not None:
        from ..distributed import read_rank_log

        sys.stdout.write(read_rank_log(handle.session, handle.run_id, args.rank))
        return 0
    if args.follow:
        status = handle.wait(show_output=True)
        return 0 if status == "Completed" else 1
    data, _ = handle.read_log(0, max_bytes=1 << 31)
    sys.stdout.write(data.decode("utf-8", "replace"))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .metrics import cmd_metrics as show_metrics

    return show_metrics(args, session_for(args))


def cmd_cancel(args: argparse.Namespace) -> int:
    session = session_for(args)
    found = session.store.get_run(args.run)
    if not found.status.is_terminal():
        session.store.check_writable()  # a read-only role hears that first
        session.someone_elses(found, args.force, "cancel")
    record = session.cancel(found.run_id)
    print(f"{record.run_id} {record.status.value}")
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    handle = run_handle(args)
    record = handle.record()
    names = handle.get_file_names(record=record)
    if args.json:
        print_json([{"name": n, "size": handle.file_path(n, record=record).stat().st_size} for n in names])
    else:
        print("\n".join(names) if names else f"Run {record.run_id} has no files yet.")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    dest = run_handle(args).download_file(args.path, args.output)
    print(dest)
    return 0


def register(sub: Any, add: Any) -> None:
    p = add("runs", cmd_runs, "list runs, newest first")
    p.add_argument("--experiment", help="only this experiment's runs")
    p.add_argument("--status", help="only runs with this status, e.g. Running or Failed")
    p.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    p.add_argument(
        "--parent",
        metavar="SWEEP|PIPELINE",
        help="a sweep's runs with their parameters, best first; a pipeline's steps, in order, with why each ran",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--mine", action="store_true", help="only the runs I made ([user] name, else my login name)")
    who.add_argument("--user", metavar="NAME", help="only the runs NAME made (a team store's colleague)")
    p = add("show", cmd_show, "details of a run")
    p.add_argument("run", help=RUN_HELP)
    p = add("logs", cmd_logs, "a run's output", json_flag=False)
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    p.add_argument("--rank", type=int, help="a distributed run's rank N (default: rank 0, the run's main log)")
    p = add("metrics", cmd_metrics, "a run's metrics, images, tables, rows and lists")
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("name", nargs="?", help="only this metric")
    p = add("cancel", cmd_cancel, "cancel a run", json_flag=False)
    p.add_argument("--force", action="store_true", help="cancel it even if someone else made it (it records you did)")
    p.add_argument("run", help=RUN_HELP)
    p = add("files", cmd_files, "a run's files")
    p.add_argument("run", help=RUN_HELP)
    p = add("download", cmd_download, "download a run's file", json_flag=False)
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("path", help="the file's name in the run, e.g. outputs/model.pt")
    p.add_argument("-o", "--output", help="where to write it (default: its name, in the current folder)")
