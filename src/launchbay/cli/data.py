"""``launchbay data add|list|show|rm|lineage|gc``: named, versioned datasets and their caches."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import print_json
from .common import session as session_for

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("data",)


def register(sub: Any, add: Any) -> None:
    p = add("data", cmd_data, "datasets: add, list, show, rm, lineage, gc")
    data_sub = p.add_subparsers(dest="data_command", required=True)

    def sub_add(name: str, help: str) -> argparse.ArgumentParser:
        q: argparse.ArgumentParser = data_sub.add_parser(name, help=help)
        q.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
        return q

    q = sub_add("add", "make a folder, file or http(s) URL a new version of a named dataset")
    q.add_argument("name", help="the dataset's name (runs use it as --input x=dataset:NAME[:VERSION])")
    q.add_argument("source", help="a local folder or file, or an http(s) URL")
    q.add_argument("--description", help="what the data is, shown by `data list` and `data show`")
    sub_add("list", "every dataset with its latest version")
    q = sub_add("show", "one dataset's versions (files, bytes, hash, created, the runs that read it)")
    q.add_argument("name", help="NAME, or NAME:VERSION")
    q.add_argument("--version", type=int, help="one version only")
    q = sub_add("rm", "forget a version (refused while a run or model's lineage points at it)")
    q.add_argument("name", help="NAME, or NAME:VERSION")
    q.add_argument("--version", type=int, help="the version to forget")
    q = sub_add("lineage", "the runs that read a dataset version and the models registered from them")
    q.add_argument("name", help="NAME (its latest version) or NAME:VERSION")
    q = sub_add("gc", "free cached downloads no recent run used (never one a queued or running run needs)")
    q.add_argument("--keep-days", type=float, default=7.0, help="keep what a run used this recently (default 7)")
    q.add_argument("-t", "--target", help="free the data cache of this target (an SSH host, a Slurm shared folder)")
    q.add_argument("--dry-run", action="store_true", help="only say what would be freed")


def cmd_data(args: argparse.Namespace) -> int:
    session = session_for(args)
    handler = {"add": _add, "list": _list, "show": _show, "rm": _rm, "lineage": _lineage, "gc": _gc}
    return int(handler[args.data_command](session, args))


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _ref(args: argparse.Namespace) -> tuple[str, int | None]:
    name, _, number = args.name.partition(":")
    version = getattr(args, "version", None)
    if number:
        if not number.isdigit():
            from ..errors import DataInputError

            raise DataInputError(f"{args.name!r}: a dataset version is a number, e.g. {name}:2.")
        version = int(number)
    return name, version


def _add(session: Any, args: argparse.Namespace) -> int:
    from ..data import datasets

    say = None if _json(args) else (lambda msg: print(f"launchbay: {msg}", file=sys.stderr))
    version, new = datasets.add(
        session.store, args.name, args.source, description=args.description, say=say, s3=session.config.s3
    )
    if _json(args):
        print_json({**version.to_dict(), "new": new})
    else:
        what = "new version" if new else "unchanged: same content as version"
        print(f"{version.ref}  ({what} {version.version}; {version.files:,} files, {human(version.bytes)})")
    return 0


def _list(session: Any, args: argparse.Namespace) -> int:
    from ..data import datasets

    rows = datasets.listing(session.store)
    if _json(args):
        print_json(rows)
        return 0
    if not rows:
        print("No datasets yet. Add one with `launchbay data add NAME PATH_OR_URL`.")
        return 0
    table: list[tuple[str, ...]] = [("DATASET", "LATEST", "VERSIONS", "FILES", "SIZE", "SOURCE")]
    for r in rows:
        table.append(
            (r["name"], str(r["latest_version"]), str(r["versions"]), f"{r['files']:,}", human(r["bytes"]), r["source"])
        )
    print(_table(table))
    return 0


def _show(session: Any, args: argparse.Namespace) -> int:
    from ..data import datasets
    from ..errors import DatasetNotFoundError

    name, number = _ref(args)
    if number is not None:
        versions = [datasets.get(session.store, f"dataset:{name}:{number}")]
    else:
        versions = session.store.dataset_versions(name)
        if not versions:
            datasets.get(session.store, f"dataset:{name}")  # the one-line "no such dataset"
            raise DatasetNotFoundError(f"No dataset named {name!r}.")
    described = [datasets.describe(session.store, v) for v in versions]
    if _json(args):
        print_json(described[0] if number is not None else described)
        return 0
    for d in described:
        print(f"{d['name']}:{d['version']}  {d['kind']} {d['source']}  ({d['files']:,} files, {human(d['bytes'])})")
        for label, value in (
            ("version", d["hash"]),
            ("created", d["created"]),
            ("description", d["description"]),
            ("from run", d["run_id"]),
            ("read by", ", ".join(d["runs"])),
        ):
            if value:
                print(f"    {label:12} {value}")
    return 0


def _rm(session: Any, args: argparse.Namespace) -> int:
    from ..data import datasets
    from ..errors import DataInputError

    name, number = _ref(args)
    if number is None:
        raise DataInputError(f"Say which version to forget: launchbay data rm {name} --version N.")
    gone = datasets.remove(session.store, name, number)
    if _json(args):
        print_json({"removed": gone.ref, "hash": gone.hash})
    else:
        print(f"Removed {gone.ref} (its files were never copied: they stay where they are).")
    return 0


def _lineage(session: Any, args: argparse.Namespace) -> int:
    from ..data import datasets

    name, number = _ref(args)
    version = datasets.get(session.store, f"dataset:{name}" + (f":{number}" if number is not None else ""))
    found = datasets.lineage(session.store, version)
    if _json(args):
        print_json(found)
        return 0
    print(f"{version.ref} ({version.hash[:12]})")
    print("  runs:   " + (", ".join(found["runs"]) or "none"))
    print("  models: " + (", ".join(found["models"]) or "none"))
    return 0


def _gc(session: Any, args: argparse.Namespace) -> int:
    from ..data.caches import collect, collect_target

    verb = "Would free" if args.dry_run else "Freed"
    if args.target:
        done = collect_target(
            session.store, session.target(args.target), keep_days=args.keep_days, dry_run=args.dry_run
        )
        if _json(args):
            print_json(done)
        else:
            print(
                f"{verb} {len(done['versions'])} versions, {done['objects']:,} files, {human(done['bytes'])} "
                f"in {done['cache']} ({args.target}); kept {done['kept']} versions recent or live runs use."
            )
        return 0
    freed = collect(session.store, keep_days=args.keep_days, dry_run=args.dry_run)
    if _json(args):
        print_json(freed)
        return 0
    print(f"{verb} {freed['entries']} cached downloads, {human(freed['bytes'])}.")
    return 0


def human(n: float) -> str:
    from ..snapshot_budget import human_bytes

    return human_bytes(n)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
