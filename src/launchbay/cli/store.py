"""CLI commands over what the store keeps: ``models``, ``rerun``, ``restore``, ``diff``,
``rm``, ``gc`` and ``du`` (the logic lives in registry.py,
reproduce.py, diffing.py and housekeeping.py, shared with Python and the notebook)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import ConfigError
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("models", "rerun", "resume", "restore", "diff", "rm", "gc", "du")


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def human(n: float) -> str:
    from ..snapshot import human_bytes

    return human_bytes(n)


# -- models ---------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from ..registry import ModelRegistry, parse_ref

    store = session_for(args).store
    registry = ModelRegistry(store)
    action = args.models_command
    if action == "list":
        rows = registry.models()
        if args.json:
            _print_json(rows)
        elif not rows:
            print("No models yet. Register one with run.register_model(NAME, path=...) or `launchbay.get_run(...)`.")
        else:
            print(models_table(rows))
        return 0
    name, version = parse_ref(args.model)
    if action == "show":
        versions = [registry.get(name, version)] if version else registry.versions(name)
        data = {v.ref: store.run_inputs(v.run_id) if v.run_id else [] for v in versions}  # the data behind each
        if args.json:
            shown = [{**v.to_dict(), "inputs": [i.to_dict() for i in data[v.ref]]} for v in versions]
            _print_json(shown[0] if version else shown)
            return 0
        for v in versions:
            print(f"{v.name}:{v.version}  {v.kind} {v.path} from run {v.run_id}  ({v.files} files, {human(v.bytes)})")
            for i in data[v.ref]:
                named = f"dataset {i.dataset}:{i.dataset_version}, " if i.dataset else ""
                print(f"    {'data':12} {i.name}: {i.source} ({named}version {i.hash[:12]})")
            metrics = ", ".join(f"{k}={val:.6g}" for k, val in v.metrics.items())
            for label, value in (
                ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created))),
                ("metrics", metrics),
                ("tags", ", ".join(f"{k}={val}" for k, val in v.tags.items())),
                ("description", v.description),
                ("environment", v.environment_hash),
                ("snapshot", v.snapshot_id),
            ):
                if value:
                    print(f"    {label:12} {value}")
        return 0
    if action == "download":
        found = registry.get(name, version)
        path = registry.download(found, args.output)
        if args.json:
            _print_json({"name": found.name, "version": found.version, "path": str(path)})
        else:
            print(path)
        return 0
    if version is None:
        raise ConfigError(f"Say which version to delete: launchbay models delete {name}:VERSION.")
    gone = registry.delete(name, version, force=args.force)
    if args.json:
        _print_json({"deleted": gone.ref})
    else:
        print(f"Deleted {gone.ref} (its files go at the next `launchbay gc` unless something else needs them).")
    return 0


def models_table(rows: list[dict[str, Any]]) -> str:
    table = [("MODEL", "LATEST", "VERSIONS", "RUN", "PATH", "SIZE")]
    for r in rows:
        table.append(
            (r["name"], str(r["latest_version"]), str(r["versions"]), r["run_id"] or "-", r["path"], human(r["bytes"]))
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


# -- rerun, restore, diff -------------------------------------------------------------------------
def cmd_rerun(args: argparse.Namespace) -> int:
    session = session_for(args)
    handle = session.rerun(args.run, target=args.target, arguments=args.arguments)
    return _follow(args, handle, "rerun_of", session.store.resolve_run_id(args.run), f"re-runs {args.run}")


def cmd_resume(args: argparse.Namespace) -> int:
    session = session_for(args)
    handle = session.resume(args.run, target=args.target)
    old = session.store.resolve_run_id(args.run)
    return _follow(args, handle, "resume_of", old, f"resumes {old}")


def _follow(args: argparse.Namespace, handle: Any, link: str, old: str, what: str) -> int:
    """What ``rerun`` and ``resume`` print: the new run at once (``--detach``), else its log and end."""
    if args.json and args.detach:
        _print_json({"run_id": handle.run_id, link: old})
        return 0
    if args.detach:
        print(handle.run_id)
        return 0
    if not args.json:
        print(f"launchbay: run {handle.run_id} {what} on {handle.record().target}", file=sys.stderr)
    status = handle.wait(show_output=not args.json)
    if args.json:
        _print_json({"run_id": handle.run_id, "status": status})
    else:
        print(f"launchbay: run {handle.run_id} {status}", file=sys.stderr)
    return 0 if status == "Completed" else 1


def _rerun_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--target", help="another target (default: the run's own)")
    parser.add_argument("--detach", action="store_true", help="return at once")


class _RunThenOptions(argparse.Action):
    """``rerun``'s words from the run id on: the id, rerun's own options (they mean there what they mean
    before the id), then ``--`` and the script's new arguments. One REMAINDER positional takes them all,
    the ``--`` included (argparse hands a positional before it the ``--``, and every word after the id
    to a REMAINDER after it: ``rerun RUN -t gpu`` re-ran on the old target with ``-t gpu`` as arguments)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        words = list(values)
        if not words or words[0] == "--":
            parser.error("name the run to re-run: launchbay rerun RUN [-t TARGET] [--detach] [-- NEW ARGS]")
        run, words = words[0], words[1:]
        cut = words.index("--") if "--" in words else len(words)
        options = argparse.ArgumentParser(  # SUPPRESS: what was given before the id stands unless repeated
            prog=parser.prog,
            usage=parser.format_usage()[7:].strip(),
            add_help=False,
            argument_default=argparse.SUPPRESS,
        )
        _rerun_options(options)
        options.add_argument("--json", action="store_true")
        options.add_argument("--store")
        options.add_argument("-h", "--help", action="store_true")
        found, loose = options.parse_known_args(words[:cut], namespace)
        if getattr(found, "help", False):
            parser.print_help()
            parser.exit()
        if loose:
            parser.error(
                f"{' '.join(loose)}: new arguments for the script go after --, "
                f"e.g. launchbay rerun {run} -- {' '.join(loose)}"
            )
        namespace.run = run
        namespace.arguments = words[cut + 1 :] if cut < len(words) else None


def cmd_restore(args: argparse.Namespace) -> int:
    from ..reproduce import restore

    store = session_for(args).store
    written = restore(store, args.run, args.output)
    if args.json:
        _print_json({"run_id": store.resolve_run_id(args.run), "files": [str(p) for p in written]})
    else:
        print(f"Wrote {len(written)} files of run {store.resolve_run_id(args.run)}'s snapshot to {args.output}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from ..diffing import diff_runs, render_text

    session = session_for(args)
    first, second = session.refresh(args.run_a), session.refresh(args.run_b)
    diff = diff_runs(session.store, first, second)
    if args.json:
        _print_json(diff)
    else:
        sys.stdout.write(render_text(diff))
    return 0


# -- rm, gc, du -----------------------------------------------------------------------------------
def cmd_rm(args: argparse.Namespace) -> int:
    from ..housekeeping import remove_run, select_runs

    session = session_for(args)
    chosen, skipped = select_runs(
        session, args.runs, experiment=args.experiment, older_than=args.older_than, status=args.status
    )
    session.store.check_writable()  # a read-only role hears that first
    if args.runs:  # named runs: another person's asks for --force
        for record in chosen:
            if not args.dry_run:
                session.someone_elses(record, args.force, "remove")
    elif not args.force:  # a whole experiment or age: only my own runs, unless --force
        others = [r for r in chosen if session.someone_elses_quietly(r)]
        chosen = [r for r in chosen if r not in others]
        skipped = [*skipped, *others]
    removed = [] if args.dry_run else [r.run_id for r in chosen if remove_run(session.store, r)]
    if args.json:
        _print_json(
            {
                "removed": removed,
                "would_remove": [r.run_id for r in chosen] if args.dry_run else [],
                "left_running": [r.run_id for r in skipped],
            }
        )
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    names = [r.run_id for r in chosen] if args.dry_run else removed
    print(f"{verb} {len(names)} run(s)" + (": " + ", ".join(names) if names else "."))
    if skipped:
        print(
            f"Left {len(skipped)} unfinished or other people's run(s) alone (--force removes the finished ones"
            f" of others): {', '.join(r.run_id for r in skipped)}"
        )
    if names and not args.dry_run:
        print("Their files that nothing else needs are freed by `launchbay gc`.")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from ..housekeeping import collect_garbage

    report = collect_garbage(session_for(args).store, dry_run=args.dry_run)
    if args.json:
        _print_json(report)
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    print(f"{verb} {report['blobs']} blob(s), {human(report['bytes'])}; kept {report['kept_blobs']}.")
    if args.dry_run:
        for item in report["details"][:50]:
            print(f"  {item['sha256'][:12]}  {human(item['bytes']):>10}  {item['what']}")
        if len(report["details"]) > 50:
            print(f"  ... and {len(report['details']) - 50} more (--json lists them all)")
    return 0


def cmd_du(args: argparse.Namespace) -> int:
    from ..housekeeping import disk_usage

    usage = disk_usage(session_for(args).store)
    if args.json:
        _print_json(usage)
        return 0
    print(f"Store {usage['store']}")
    print(f"  runs          {usage['runs']['count']:>6}  {human(usage['runs']['bytes']):>10}")
    print(f"  snapshots     {usage['snapshots']['count']:>6}  {human(usage['snapshots']['bytes']):>10}")
    envs = usage["environments"]
    print(f"  environments  {envs['count']:>6}  {human(envs['bytes']):>10}")
    print(f"  models        {usage['models']['versions']:>6}  {human(usage['models']['bytes']):>10}  (versions)")
    blobs = usage["blobs"]
    free = human(blobs["unreferenced_bytes"])
    print(f"  blobs         {blobs['count']:>6}  {human(blobs['bytes']):>10}  ({free} gc can free)")
    data = usage["data"]
    print(
        f"  data cache    {data['cached_downloads']:>6}  {human(data['cache_bytes']):>10}  (downloads; `data gc` frees)"
    )
    print(f"  index                 {human(usage['index_bytes']):>10}")
    if usage["experiments"]:
        print("By experiment:")
        for e in usage["experiments"]:
            print(f"  {e['name']:24} {e['runs']:>6} runs  {human(e['bytes']):>10}")
    return 0


def register(sub: Any, add: Any) -> None:
    """Add the commands to the ``launchbay`` parser."""
    p = add("models", cmd_models, "registered models: list, show, download, delete")
    msub = p.add_subparsers(dest="models_command", required=True)
    for name, help_text in (
        ("list", "every model and its latest version"),
        ("show", "a model's versions (NAME) or one version (NAME:VERSION)"),
        ("download", "write a model version's file or folder into a folder"),
        ("delete", "delete one version (NAME:VERSION)"),
    ):
        q = msub.add_parser(name, help=help_text)
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        if name != "list":
            q.add_argument("model", metavar="NAME[:VERSION]", help="the model, and a version (default: the latest)")
        if name == "download":
            q.add_argument("-o", "--output", default=".", help="folder to write into (default: here)")
        if name == "delete":
            q.add_argument("--force", action="store_true", help="delete even if a run used it")

    p = add("rerun", cmd_rerun, "submit a run's exact snapshot again (-- NEW ARGS to change arguments)")
    _rerun_options(p)
    p.add_argument(
        "run",
        nargs=argparse.REMAINDER,
        action=_RunThenOptions,
        metavar="RUN",
        help="the run (id or unique prefix); rerun's options may follow it, the script's new arguments after --",
    )
    p.usage = "%(prog)s RUN [-t TARGET] [--detach] [--json] [--store STORE] [-- NEW ARGS]"
    p = add("resume", cmd_resume, "go on from a stopped run: its outputs/ become the input checkpoint")
    _rerun_options(p)
    p.add_argument("run", help="the run (id or unique prefix); it must have ended")
    p = add("restore", cmd_restore, "write a run's snapshot out as files")
    p.add_argument("run", help="the run (id or unique prefix)")
    p.add_argument("-o", "--output", required=True, help="a new (or empty) folder")
    p = add("diff", cmd_diff, "what differs between two runs: params, environment, metrics, code")
    p.add_argument("run_a", help="the first run (id or unique prefix)")
    p.add_argument("run_b", help="the second run")

    p = add("rm", cmd_rm, "remove finished runs (their folders and records)")
    p.add_argument("runs", nargs="*", metavar="RUN", help="runs to remove (finished ones only)")
    p.add_argument("--experiment", help="remove the finished runs of this experiment")
    p.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h")
    p.add_argument("--status", help="e.g. Failed")
    p.add_argument("--dry-run", action="store_true", help="only say which runs")
    p.add_argument("--force", action="store_true", help="also other people's runs (a team store)")
    p = add("gc", cmd_gc, "remove blobs no kept run or model version needs")
    p.add_argument("--dry-run", action="store_true", help="only say what and how much")
    add("du", cmd_du, "store sizes by experiment, runs, snapshots, environments, models")
