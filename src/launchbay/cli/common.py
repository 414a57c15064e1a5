"""What every command group shares: the session a command works on, JSON output, durations.

Kept free of heavy imports: ``launchbay runs`` must start about as fast as Python itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..handle import RunHandle
    from ..session import Session

EXIT_ERROR = 2
RUN_HELP = "run id, or a unique prefix of one"


#: commands that only read what the store keeps: a launchbay.toml they cannot use is a warning, not an error
READ_ONLY = frozenset({"runs", "show", "logs", "metrics", "files", "download", "diff", "restore", "models", "du"})


def session(args: argparse.Namespace, source_dir: str | None = None) -> Session:
    """The session of ``--store`` (else LAUNCHBAY_STORE, else the nearest .launchbay/) and the project config."""
    from ..session import open_session

    def warn(exc: Exception) -> None:
        print(
            f"launchbay: warning: {exc} (`launchbay {args.command}` only reads the store: it goes on without it.)",
            file=sys.stderr,
        )

    read_only = getattr(args, "command", None) in READ_ONLY
    opened = open_session(getattr(args, "store", None), project=source_dir, on_config_error=warn if read_only else None)
    OPENED.append(opened)  # closed by main() when the command is done
    return opened


#: the sessions a command opened, which ``main`` closes once it returns
OPENED: list[Session] = []


def run_handle(args: argparse.Namespace) -> RunHandle:
    """The run ``args.run`` names (an id or a unique prefix of one)."""
    from ..handle import RunHandle

    found = session(args)
    return RunHandle(found.store.resolve_run_id(args.run), found)


def print_json(data: Any) -> None:
    """Strict JSON on stdout: NaN and infinities as strings."""
    from ..logged import dumps

    sys.stdout.write(dumps(data) + "\n")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
