"""The ``launchbay`` command line: one module per command group, each with ``register(sub, add)``.

Every listing/detail command takes ``--json``. Group modules import only argparse at the top and
everything else inside their commands, so ``launchbay runs`` starts about as fast as Python does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from ..errors import LaunchbayError
from . import (
    automl,
    data,
    environments,
    pipelines,
    project,
    queues,
    repair,
    runs,
    schedules,
    store,
    submit,
    sweeps,
    tensorboard,
)
from .common import EXIT_ERROR, OPENED

#: the command groups, in the order ``launchbay --help`` lists them
GROUPS = (
    submit,
    runs,
    queues,
    schedules,
    project,
    environments,
    sweeps,
    pipelines,
    automl,
    store,
    data,
    tensorboard,
    repair,
)


def build_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser, command: str | None = None
) -> argparse.ArgumentParser:
    """The parser of every command; with ``command``, of the one group that owns it (what ``main``
    builds: argparse takes longer to set up every subcommand than ``launchbay runs`` takes to run)."""
    parser = parser_class(prog="launchbay", description="Run code on compute targets; keep every run.")
    parser.add_argument("--store", help="store folder (default: nearest .launchbay/ or LAUNCHBAY_STORE)")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.set_defaults(full_parser=build_parser)  # what `schedule add` checks its command line with

    def add(name: str, func: Any, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func)
        p.add_argument("--store", default=argparse.SUPPRESS, help="store folder")
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    owners = [group for group in GROUPS if command in group.COMMANDS]
    for group in owners or GROUPS:
        group.register(sub, add)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The subcommand a command line names (past the top-level ``--store DIR``), or None."""
    words = iter(argv)
    for word in words:
        if word == "--store":
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif not word.startswith("--store="):
            return None
    return None


class _Misread(Exception):
    """The one-group parser could not read a command line: the full parser says why, as ever."""


class _OneGroupParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Misread(message)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(_OneGroupParser, command=command_of(argv)).parse_args(argv)
    except _Misread:
        args = build_parser().parse_args(argv)  # exits with argparse's message, every command in its usage
    args.typed_argv = list(argv)  # the words as typed: argparse drops a `--` that a command may need to see
    try:
        return _run(args)
    except LaunchbayError as exc:
        print(f"launchbay: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the store's disk is full or its index damaged: one line, said by the store
        from ..store import escaped_error

        error = escaped_error(exc, getattr(args, "store", None))
        if error is None:
            raise
        print(f"launchbay: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    finally:
        while OPENED:
            OPENED.pop().close()
