"""``launchbay snapshot`` and ``targets``: what a run would take, and where it can go."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import LaunchbayError
from .common import print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("snapshot", "targets")


def cmd_snapshot(args: argparse.Namespace) -> int:
    from ..project import locate
    from ..snapshot import human_bytes, take_snapshot

    root = Path(args.dir) if args.dir else locate().root  # what a submit from here would take
    if args.dry_run:
        from ..snapshot_report import print_dry_run

        return print_dry_run(root, args.json, args.store)
    from ..snapshot_budget import Budget

    session = session_for(args, str(root))
    budget = Budget.from_config(session.config.snapshot)
    snap = take_snapshot(session.store, root, max_bytes=budget.max_bytes, max_files=budget.max_files)
    data = {"id": snap.id, "files": snap.files, "bytes": snap.bytes, "new_blobs": snap.new_blobs}
    print_json(data) if args.json else print(f"snapshot {snap.id}: {snap.files} files, {human_bytes(snap.bytes)}")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    session = session_for(args)
    rows = []
    for name in session.config.target_names():
        try:
            target = session.target(name)
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
        print_json(rows)
        return 0
    for info in rows:
        state = "reachable" if info.get("reachable") else f"UNREACHABLE: {info.get('error', '')}"
        extra = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("name", "type", "reachable", "error"))
        print(f"{info['name']:16} {info['type'] or '?':8} {state}{'  ' + extra if extra else ''}")
    return 0


def register(sub: Any, add: Any) -> None:
    p = add("snapshot", cmd_snapshot, "snapshot a folder (or --dry-run to see what would be taken)")
    p.add_argument("dir", nargs="?", help="folder to snapshot (default: the project root a submit from here takes)")
    p.add_argument("--dry-run", action="store_true", help="list what would be taken and why; exit 1 if over the budget")
    add("targets", cmd_targets, "list targets and whether they are reachable")
