"""``launchbay tensorboard RUN...``: TensorBoard over runs' ./logs, live while they run (see launchbay.tboard)."""

from __future__ import annotations

import argparse
from typing import Any

#: the subcommands this module registers (``main`` builds only the group a command line needs)
COMMANDS = ("tensorboard",)


def register(sub: Any, add: Any) -> None:
    p = add("tensorboard", cmd_tensorboard, "start TensorBoard over runs' ./logs (live while they run)", False)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids (unique prefixes work)")
    p.add_argument("--port", type=int, help="port on 127.0.0.1 (default 6006, else a free one)")


def cmd_tensorboard(args: argparse.Namespace) -> int:
    import signal
    import time

    from .. import runfolder as rf
    from ..tboard import RELOAD_S, start
    from .common import session as session_for

    session = session_for(args)
    records = [session.refresh(session.store.resolve_run_id(ref)) for ref in args.runs]
    logdirs = {r.run_id: session.store.files_dir(r) / rf.LOGS for r in records}
    board = start(logdirs, port=args.port, die_with_caller=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops TensorBoard too, as Ctrl-C does
    print(f"TensorBoard on {board.url} over {len(records)} run(s); Ctrl-C stops it.", flush=True)
    try:
        while board.alive():
            live = [r for r in records if not r.status.is_terminal()]
            records = [session.refresh(r) if r in live else r for r in records]  # brings ./logs back
            time.sleep(RELOAD_S)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
    return 0
