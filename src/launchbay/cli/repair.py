"""``launchbay store repair|verify|aside``: rebuild a damaged or lost index from the run folders,
check a store's index and every series' checksums, list (and delete) what repair kept aside."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("store",)
EXIT_LOST = 1  # the store was rebuilt, but some points could not be recovered


def cmd_store_repair(args: argparse.Namespace) -> int:
    from ..ingest import ingest_run
    from ..store.repair import repair

    report = repair(_embedded(args.store), replay=ingest_run)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_LOST if report.points_lost else 0
    print(f"old index: {report.old_index}" + (f" (kept as {report.moved_to})" if report.moved_to else ""))
    lost = f" ({report.points_lost:,} could not be recovered: see below)" if report.points_lost else ""
    print(
        f"rebuilt from the run folders: {report.runs} runs, {report.points} metric points{lost},"
        f" {report.snapshots} snapshots"
    )
    if report.blobs_missing:
        print(
            f"{report.blobs_missing} snapshot files were gone from the store; "
            f"{report.blobs_restored} restored from their source folders"
        )
    for problem in report.problems:
        print(f"! {problem}")
    return EXIT_LOST if report.points_lost else 0


def cmd_store_verify(args: argparse.Namespace) -> int:
    from ..store import open_store
    from ..store.verify import verify

    with open_store(_embedded(getattr(args, "store", None))) as store:
        report = verify(store)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        counts = f"{report.runs} runs, {report.series} series, {report.points} points"
        print(f"checked: the index ({report.index}), {counts}")
        for line in report.damaged:
            print(f"! {line}")
        if report.damaged:
            print("`launchbay store repair` keeps every chunk that verifies and sets the damaged files aside")
    return EXIT_LOST if report.damaged else 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """A team store is migrated on purpose, by one person (older clients are then refused with one
    line telling them to upgrade); the embedded store migrates itself when it is opened."""
    from ..config import LAUNCHBAY_STORE
    from ..store import open_store
    from ..store.postgres import PostgresBackend
    from ..store.registry import backend_for, configured_store

    location = getattr(args, "store", None) or LAUNCHBAY_STORE.get() or configured_store(None)
    if not isinstance(backend_for(location), PostgresBackend):
        with open_store(location):
            print("the embedded store is up to date (it migrates itself when it is opened)")
        return 0
    assert location is not None
    with PostgresBackend().open(location, migrate=True) as store:
        before, after = store.migrated_from, store.schema_version()
    print(f"{store.url.where}: schema {before} -> {after}" if before != after else f"{store.url.where}: up to date")
    return 0


def cmd_store_aside(args: argparse.Namespace) -> int:
    from ..store.verify import kept_aside

    files = kept_aside(_embedded(getattr(args, "store", None)))
    if args.delete:
        for path in files:
            path.unlink(missing_ok=True)
    if args.json:
        json.dump({"files": [str(p) for p in files], "deleted": bool(args.delete)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    verb = "deleted" if args.delete else "kept aside by store repair"
    for path in files:
        print(f"{verb}: {path}")
    if not files:
        print("store repair kept nothing aside")
    elif not args.delete:
        print("once you have checked the store: launchbay store aside --delete")
    return 0


def _embedded(store: str | None) -> Any:
    """The embedded store's folder these commands work on; a team store's URL is one line saying why not."""
    from ..config import LAUNCHBAY_STORE, find_store_dir
    from ..errors import ConfigError
    from ..store.registry import configured_store, scheme_of

    location = store or LAUNCHBAY_STORE.get() or configured_store(None)
    if location and scheme_of(location) not in ("", "file") and "://" in location:
        raise ConfigError(
            f"{location.split('?')[0]} is a team store: repair, verify and aside work on an embedded store's"
            " folder (a team store's index is PostgreSQL's: check and keep it with PostgreSQL's own tools)."
        )
    return find_store_dir(location)


def register(sub: Any, add: Any) -> None:
    store = sub.add_parser("store", help="look after the store itself")
    store_sub = store.add_subparsers(dest="store_command", required=True)
    p = store_sub.add_parser("repair", help="rebuild a damaged or missing index from the run folders")
    p.set_defaults(func=cmd_store_repair)
    p.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = store_sub.add_parser("verify", help="check the index and every metric chunk's checksum (writes nothing)")
    p.set_defaults(func=cmd_store_verify)
    p.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = store_sub.add_parser("migrate", help="bring a team store's schema up to this launchbay's (once, for everyone)")
    p.set_defaults(func=cmd_store_migrate)
    p.add_argument(
        "--store", default=argparse.SUPPRESS, help="the team store's URL (default: LAUNCHBAY_STORE, [store] url)"
    )
    p = store_sub.add_parser("aside", help="the old indexes and damaged files store repair kept; --delete them")
    p.set_defaults(func=cmd_store_aside)
    p.add_argument("--delete", action="store_true", help="delete them (once you have checked the store)")
    p.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
