"""``launchbay snapshot`` and ``targets``: what a run would take, and where it can go."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import LaunchbayError
from .common import print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("init", "snapshot", "targets")


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


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter launchbay.toml (and a .launchbayignore with notes, when there is none) here."""
    from ..config import CONFIG_FILE
    from ..scaffold import IGNORE_FILE, IGNORE_TEXT, launchbay_toml

    folder = Path(args.dir or ".").resolve()
    path = folder / CONFIG_FILE
    if path.exists() and not args.force:
        raise LaunchbayError(f"{path} exists; `launchbay init --force` replaces it (its settings are lost).")
    options = {k: getattr(args, k) for k in ("host", "user", "port", "identity_file", "image", "address", "partition")}
    text = launchbay_toml(args.target, options, args.name)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    written = [str(path)]
    ignore = folder / IGNORE_FILE
    if not ignore.exists():
        ignore.write_text(IGNORE_TEXT)
        written.append(str(ignore))
    from ..config import load_config

    default = load_config(folder).defaults.get("target")
    if args.json:
        print_json({"written": written, "target": default})
    else:
        print(f"launchbay: wrote {' and '.join(written)}; runs go to {default!r} unless they name a target.")
    return 0


def register(sub: Any, add: Any) -> None:
    p = add("init", cmd_init, "write a starter launchbay.toml: the local target, examples of every other")
    p.add_argument("dir", nargs="?", help="the project folder (default: here)")
    p.add_argument(
        "--target",
        default="local",
        choices=["local", "docker", "ssh", "ray", "slurm"],
        help="the target to write active and make the default (default: local)",
    )
    p.add_argument("--name", help="the target's name (default: the host's first label, else the example's)")
    p.add_argument("--host", help="ssh: the machine; slurm: a login node to submit through")
    p.add_argument("--user", help="ssh: the login name (default: ssh's)")
    p.add_argument("--port", type=int, help="ssh: the port (default 22)")
    p.add_argument("--identity-file", dest="identity_file", help="ssh: the private key (default: the SSH agent's)")
    p.add_argument("--image", help="docker: the image runs start in")
    p.add_argument("--address", help="ray: the Jobs API address")
    p.add_argument("--partition", help="slurm: the partition")
    p.add_argument("--force", action="store_true", help="replace an existing launchbay.toml")
    p = add("snapshot", cmd_snapshot, "snapshot a folder (or --dry-run to see what would be taken)")
    p.add_argument("dir", nargs="?", help="folder to snapshot (default: the project root a submit from here takes)")
    p.add_argument("--dry-run", action="store_true", help="list what would be taken and why; exit 1 if over the budget")
    add("targets", cmd_targets, "list targets and whether they are reachable")
