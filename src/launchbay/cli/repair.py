"""``launchbay store repair|verify|migrate|aside|copy``: rebuild a damaged or lost index from the run
folders, check a store's index and every series' checksums, migrate a team store, list (and delete)
what repair kept aside, copy every run into another store (store/copy.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigError

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


def cmd_store_copy(args: argparse.Namespace) -> int:
    """Every run of this store (or ``--from``) into ``--to``: one line for bad input, before anything is written."""
    import time

    from ..store import open_store
    from ..store.copy import copy_store, identity, open_destination, store_identity

    _team_blobs_named(args.to, args.blobs)
    with open_store(args.source or getattr(args, "store", None)) as source:
        if identity(args.to) == store_identity(source):
            raise ConfigError(
                f"--to names the store being copied ({args.to.split('?')[0]}); give another store's URL or folder"
                " (--from names the source: default, this project's store)."
            )
        shown = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - shown[0] >= 1.0 or done == total:
                shown[0] = now
                print(f"copied {done:,}/{total:,} runs", file=sys.stderr, flush=True)

        with open_destination(args.to, args.blobs) as dest:
            report = copy_store(source, dest, progress)
    if args.json:
        json.dump(
            {k: v for k, v in report.to_dict().items() if k in ("copied", "skipped", "running", "seconds", "problems")},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 1 if report.to_dict()["problems"] else 0
    rate = f" ({report.copied / report.seconds:,.0f} runs/s)" if report.copied and report.seconds else ""
    print(f"copied {report.copied:,} runs in {report.seconds:.1f} s{rate}; {report.skipped:,} were there already")
    print(f"{report.blobs:,} blobs stored; models, datasets, schedules: {report.catalog.added} added")
    if report.running:
        print(f"copied while running (as they were then): {', '.join(report.running)}")
    for problem in report.to_dict()["problems"]:
        print(f"! {problem}")
    return 1 if report.to_dict()["problems"] else 0


def _team_blobs_named(to: str, blobs: str | None) -> None:
    """A team store copied into needs blobs everyone reads: refuse one that would keep them in this machine's cache."""
    from ..config import LAUNCHBAY_BLOBS, load_config
    from ..store.registry import scheme_of

    if scheme_of(to) not in ("postgresql", "postgres") or blobs or LAUNCHBAY_BLOBS.get():
        return
    from ..store.postgres import TeamUrl

    try:
        configured = load_config(None).store.get("blobs")
    except ConfigError:
        configured = None
    if not (TeamUrl(to).own.get("blobs") or configured):
        raise ConfigError(
            "The team store named by --to has no blobs named: pass --blobs s3://BUCKET/PREFIX (or a folder every"
            " machine reads), as its users' [store] blobs; nothing was copied."
        )


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
    p = store_sub.add_parser(
        "copy", help="copy every run (and models, datasets, schedules) into another store; again: only what is new"
    )
    p.set_defaults(func=cmd_store_copy)
    p.add_argument("--to", required=True, metavar="URL", help="the store to copy into: a postgresql:// URL or a folder")
    p.add_argument("--blobs", metavar="URL", help="where --to keeps blobs: s3://BUCKET/PREFIX or a folder")
    p.add_argument(
        "--from", dest="source", metavar="URL", help="the store to copy from (default: this project's store)"
    )
    p.add_argument("--store", default=argparse.SUPPRESS, help="store folder (the same as --from)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
