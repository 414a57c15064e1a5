"""The ``launchbay`` command line. Every listing/detail command takes ``--json``."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from .errors import LaunchbayError
from .models import shown_status

EXIT_ERROR = 2
RUN_HELP = "run id, or a unique prefix of one"


def _session(args: argparse.Namespace, source_dir: str | None = None) -> Any:
    from .config import load_config
    from .session import Session
    from .store import open_store

    return Session(open_store(args.store), load_config(Path(source_dir).resolve() if source_dir else None))


def _print_json(data: Any) -> None:
    from .logged import dumps  # strict JSON: NaN and infinities as strings

    sys.stdout.write(dumps(data) + "\n")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def cmd_submit(args: argparse.Namespace) -> int:
    from .handle import RunHandle
    from .models import RunSpec
    from .project import locate

    if args.runconfig:
        from .compat.azureml.cli import submit_runconfig

        return follow_submitted(args, submit_runconfig(args))
    if not args.script:
        raise LaunchbayError("Name the script to run, e.g. `launchbay submit train.py -- --lr 0.1`.")
    place = locate(args.source_dir)
    session = _session(args, str(place.root))
    arguments = list(args.arguments)
    if arguments and arguments[0] == "--":
        arguments = arguments[1:]
    spec = RunSpec(
        script=args.script,
        arguments=tuple(arguments),
        target=args.target or session.config.defaults.get("target", "local"),
        experiment=args.experiment or place.experiment,
        name=args.name,
        working_dir=place.working_dir,
        environment=args.env,
        max_duration_s=args.max_duration,
        system_metrics_interval_s=args.system_metrics_interval,
        tags=dict(t.split("=", 1) if "=" in t else (t, "") for t in args.tag or []),
        distributed=_distributed(args.distributed),
    )
    progress = None if args.json else (lambda msg: print(f"launchbay: {msg}", file=sys.stderr))
    handle: RunHandle = session.submit(spec, place.root, on_progress=progress)
    return follow_submitted(args, handle)


def follow_submitted(args: argparse.Namespace, handle: Any) -> int:
    """After a submit: print the id (``--detach``) or stream the log; exit with the run's status."""
    if args.json and args.detach:
        _print_json({"run_id": handle.run_id})
        return 0
    if not args.json:
        print(f"launchbay: run {handle.run_id} submitted to {handle.record().target}", file=sys.stderr)
    if args.detach:
        print(handle.run_id)
        return 0
    try:
        status = handle.wait(show_output=not args.json)
    except KeyboardInterrupt:
        print(
            f"\nlaunchbay: stopped watching; run {handle.run_id} goes on (launchbay cancel {handle.run_id} stops it).",
            file=sys.stderr,
        )
        return 130
    if args.json:
        _print_json({"run_id": handle.run_id, "status": status})
    else:
        print(f"launchbay: run {handle.run_id} {status}", file=sys.stderr)
    return 0 if status == "Completed" else 1


def _distributed(text: str | None) -> dict[str, Any] | None:
    from .distributed import parse

    parsed = parse(text)
    return parsed.to_dict() if parsed else None


def cmd_runs(args: argparse.Namespace) -> int:
    session = _session(args)
    if args.parent:
        from .sweeps.cli import print_children

        return print_children(session, args.parent, args.json)
    records = session.runs(experiment=args.experiment, status=args.status, limit=args.limit)
    if args.json:
        _print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print("No runs yet. Submit one with `launchbay submit script.py`.")
        return 0
    rows = [("RUN", "NAME", "EXPERIMENT", "STATUS", "TARGET", "STARTED", "DURATION", "METRIC")]
    for r in records:
        metric = ""
        if r.primary_metric:
            metric = f"{r.primary_metric['name']}={r.primary_metric['value']:.4g}"
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started or r.created))
        status = shown_status(r.status.value, r.tags)
        rows.append((r.run_id, r.name or "", r.experiment, status, r.target, started, _duration(r.duration_s), metric))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .handle import RunHandle

    session = _session(args)
    handle = RunHandle(session.store.resolve_run_id(args.run), session)
    details = handle.get_details()
    if args.json:
        _print_json(details)
        return 0
    from .cli_show import show_text

    print(show_text(details))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from .handle import RunHandle

    session = _session(args)
    run_id = session.store.resolve_run_id(args.run)
    if args.rank is not None:
        from .distributed import read_rank_log

        sys.stdout.write(read_rank_log(session, run_id, args.rank))
        return 0
    if args.follow:
        status = RunHandle(run_id, session).wait(show_output=True)
        return 0 if status == "Completed" else 1
    record = session.refresh(run_id)
    data, _ = session.store.read_log(record, 0, max_bytes=1 << 31)
    sys.stdout.write(data.decode("utf-8", "replace"))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .metrics_cli import cmd_metrics as show_metrics

    return show_metrics(args, _session(args))


def cmd_cancel(args: argparse.Namespace) -> int:
    session = _session(args)
    record = session.cancel(session.store.resolve_run_id(args.run))
    print(f"{record.run_id} {record.status.value}")
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    session = _session(args)
    record = session.refresh(session.store.resolve_run_id(args.run))
    names = session.store.file_names(record)
    if args.json:
        _print_json([{"name": n, "size": session.store.file_path(record, n).stat().st_size} for n in names])
    else:
        print("\n".join(names) if names else f"Run {record.run_id} has no files yet.")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .handle import RunHandle

    session = _session(args)
    handle = RunHandle(session.store.resolve_run_id(args.run), session)
    dest = handle.download_file(args.path, args.output)
    print(dest)
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from .project import locate
    from .snapshot import human_bytes, take_snapshot

    root = Path(args.dir) if args.dir else locate().root  # what a submit from here would take
    if args.dry_run:
        from .snapshot_report import print_dry_run

        return print_dry_run(root, args.json, args.store)
    from .snapshot_budget import Budget

    session = _session(args, str(root))
    budget = Budget.from_config(session.config.snapshot)
    snap = take_snapshot(session.store, root, max_bytes=budget.max_bytes, max_files=budget.max_files)
    data = {"id": snap.id, "files": snap.files, "bytes": snap.bytes, "new_blobs": snap.new_blobs}
    _print_json(data) if args.json else print(f"snapshot {snap.id}: {snap.files} files, {human_bytes(snap.bytes)}")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    from .targets import make_target

    session = _session(args)
    rows = []
    for name in session.config.target_names():
        try:
            target = make_target(name, session.config, session.store)
            info = {"name": name, "type": target.type_name, **target.check()}
        except LaunchbayError as exc:
            info = {
                "name": name,
                "type": session.config.targets.get(name, {}).get("type"),
                "reachable": False,
                "error": str(exc),
            }
        rows.append(info)
    if args.json:
        _print_json(rows)
        return 0
    for info in rows:
        state = "reachable" if info.get("reachable") else f"UNREACHABLE: {info.get('error', '')}"
        extra = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("name", "type", "reachable", "error"))
        print(f"{info['name']:16} {info['type'] or '?':8} {state}{'  ' + extra if extra else ''}")
    return 0


def build_parser(parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = parser_class(prog="launchbay", description="Run code on compute targets; keep every run.")
    parser.add_argument("--store", help="store folder (default: nearest .launchbay/ or LAUNCHBAY_STORE)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        p.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = add("submit", cmd_submit, "submit a script as a run")
    p.add_argument("script", nargs="?", help="the script to run, relative to the current folder")
    p.add_argument("arguments", nargs=argparse.REMAINDER, help="arguments for the script (after --)")
    p.add_argument("--runconfig", metavar="FILE", help="submit what an Azure ML v1 .runconfig YAML file describes")
    p.add_argument("-t", "--target", help="compute target: a [targets.NAME] of launchbay.toml, or local (default)")
    p.add_argument("-e", "--experiment", help="experiment to file the run under (default: the project folder's name)")
    p.add_argument("--name", help="display name of the run, shown wherever runs are listed")
    p.add_argument("--env", help="environment name from launchbay.toml")
    p.add_argument(
        "--source-dir",
        help="folder to snapshot (default: the project root: launchbay.toml's folder, else the git root, else here)",
    )
    p.add_argument("--max-duration", type=float, metavar="SECONDS", help="cancel the run after this many seconds")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="tag the run (repeatable)")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    p.add_argument(
        "--system-metrics-interval", type=float, metavar="SECONDS", help="seconds between CPU/GPU samples; 0 = off"
    )
    p.add_argument("--distributed", metavar="KIND:N", help="several ranks: pytorch:2, pytorch:2x2, mpi:4, tf:2+1")

    p = add("runs", cmd_runs, "list runs, newest first")
    p.add_argument("--experiment", help="only this experiment's runs")
    p.add_argument("--status", help="only runs with this status, e.g. Running or Failed")
    p.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    p.add_argument("--parent", metavar="SWEEP", help="a sweep's runs with their parameters, best first")
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
    p.add_argument("run", help=RUN_HELP)
    p = add("files", cmd_files, "a run's files")
    p.add_argument("run", help=RUN_HELP)
    p = add("download", cmd_download, "download a run's file", json_flag=False)
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("path", help="the file's name in the run, e.g. outputs/model.pt")
    p.add_argument("-o", "--output", help="where to write it (default: its name, in the current folder)")
    p = add("snapshot", cmd_snapshot, "snapshot a folder (or --dry-run to see what would be taken)")
    p.add_argument("dir", nargs="?", help="folder to snapshot (default: the project root a submit from here takes)")
    p.add_argument("--dry-run", action="store_true", help="list what would be taken and why; exit 1 if over the budget")
    add("targets", cmd_targets, "list targets and whether they are reachable")
    from .cli_extra import add_extra_commands

    add_extra_commands(sub, add)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LaunchbayError as exc:
        print(f"launchbay: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0
    except (OSError, sqlite3.Error) as exc:  # the store's disk is full or its index damaged: one line
        from .config import find_store_dir
        from .store.guard import store_error

        if isinstance(exc, OSError) and exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"launchbay: error: {store_error(exc, find_store_dir(getattr(args, 'store', None)))}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
